// The database owner's password, kept by the operator in a Secret of its own next to the Role (the
// provider reads a Role's passwordSecretRef in the Role's namespace only). Without it provider-sql
// v0.16.0 resets the password of an adopted (retained) role and at times never publishes the new one,
// leaving the app's connection Secret empty (e2e/provider-sql/README.md). With it the provider sets the
// role's password to this Secret's value and publishes it whenever the connection Secret lacks it, so a
// re-vended database gets the password it had.
//
// The Secret is created once, immutable, and has no owner while the database is retained: deleting the
// AppVending keeps it, and vending the same name again finds and re-uses it. Under deletionPolicy Delete
// the Role owns it, so the garbage collector removes it only after provider-sql dropped the role (the
// provider's Observe needs it until then). Its value is never logged, put in status or in an event.
import { randomBytes } from "node:crypto";
import type { AppVending } from "../../crds/app-vending.ts";
import { isAlreadyExists, type KubeObject, type ReconcileContext } from "../../runtime/index.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "../peer-tenant/labels.ts";
import { APP_VENDING_LABEL, connectionSecretNames } from "./desired.ts";
import { externalNames, managedName, passwordSecretName } from "./names.ts";

const SECRET = { apiVersion: "v1", kind: "Secret" };
export const PASSWORD_KEY = "password";
/** Which PostgreSQL role a password Secret is for: a Secret of another role is never taken. */
export const ROLE_ANNOTATION = "homelab.shdr.ch/postgres-role";

type SecretObj = KubeObject & { data?: Record<string, string>; immutable?: boolean; type?: string };

export interface PasswordProblem {
  status: "False";
  reason: "PasswordSecretConflict";
  message: string;
}

/**
 * Makes sure the password Secret exists and is this database's; creates it when absent. A hand-deleted
 * Secret is restored from the Role's own connection Secret when that still holds the password (the role
 * keeps its password, the app keeps working); only when nothing holds it is a new one generated, which
 * provider-sql then sets on the role: the data is never touched either way.
 */
export async function ensurePasswordSecret(
  ctx: ReconcileContext,
  av: AppVending,
): Promise<PasswordProblem | undefined> {
  const namespace = av.metadata.namespace as string;
  const name = passwordSecretName(av.metadata.name);
  const role = externalNames(namespace, av.metadata.name).postgres;
  const existing = await ctx.client.getOrUndefined<SecretObj>(SECRET, { namespace, name });
  if (existing) return foreign(existing, role, name);
  const password = (await passwordInUse(ctx, av)) ?? randomBytes(32).toString("base64url");
  try {
    await ctx.client.create({
      ...SECRET,
      metadata: {
        name,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [APP_VENDING_LABEL]: managedName(av.metadata.name) },
        annotations: { [ROLE_ANNOTATION]: role },
      },
      type: "Opaque",
      // Immutable: the value is set once; replacing it takes a delete, which the restore above undoes.
      immutable: true,
      data: { [PASSWORD_KEY]: Buffer.from(password).toString("base64") },
    } as KubeObject);
  } catch (err) {
    // A concurrent reconcile created it first: judge that one like any existing Secret.
    if (!isAlreadyExists(err)) throw err;
    const raced = await ctx.client.get<SecretObj>(SECRET, { namespace, name });
    return foreign(raced, role, name);
  }
  return undefined;
}

function foreign(secret: SecretObj, role: string, name: string): PasswordProblem | undefined {
  const ours =
    secret.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY &&
    secret.metadata?.annotations?.[ROLE_ANNOTATION] === role &&
    !!secret.data?.[PASSWORD_KEY];
  if (ours) return undefined;
  return {
    status: "False",
    reason: "PasswordSecretConflict",
    message: `Secret ${name} exists and is not the operator's password Secret for this database; it was left untouched`,
  };
}

/** The password the Role's own connection Secret holds (it is the role's current one), if any. */
async function passwordInUse(ctx: ReconcileContext, av: AppVending): Promise<string | undefined> {
  const namespace = av.metadata.namespace as string;
  const mr = await ctx.client.getOrUndefined(
    { apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1", kind: "Role" },
    { namespace, name: managedName(av.metadata.name) },
  );
  if (!mr) return undefined;
  const conn = await ctx.client.getOrUndefined<SecretObj>(SECRET, {
    namespace,
    name: connectionSecretNames(av).database,
  });
  const controller = conn?.metadata?.ownerReferences?.find((r) => r.controller);
  const value = conn?.data?.[PASSWORD_KEY];
  if (!value || controller?.uid !== mr.metadata?.uid) return undefined;
  return Buffer.from(value, "base64").toString("utf8");
}

/**
 * Under Delete the password goes with the Role (garbage collected once the Role MR is gone, i.e. after
 * the provider dropped the role); under Retain it has no owner and outlives the AppVending.
 */
export async function settlePasswordOwner(
  ctx: ReconcileContext,
  av: AppVending,
  role: KubeObject,
): Promise<void> {
  const namespace = av.metadata.namespace as string;
  const name = passwordSecretName(av.metadata.name);
  const secret = await ctx.client.getOrUndefined<SecretObj>(SECRET, { namespace, name });
  if (!secret || !role.metadata?.uid) return;
  const wanted =
    av.spec.deletionPolicy === "Delete"
      ? [
          {
            apiVersion: role.apiVersion as string,
            kind: role.kind as string,
            name: role.metadata.name as string,
            uid: role.metadata.uid,
          },
        ]
      : [];
  const current = (secret.metadata?.ownerReferences ?? []).map((r) => r.uid);
  if (JSON.stringify(current) === JSON.stringify(wanted.map((r) => r.uid))) return;
  // A merge patch replaces the whole list; only metadata changes (the data is immutable).
  await ctx.client.patch(SECRET, { namespace, name }, { metadata: { ownerReferences: wanted } }, "merge");
}
