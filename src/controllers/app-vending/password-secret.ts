// The database owner's password, kept by the operator in a Secret of its own next to the Role (the
// provider reads a Role's passwordSecretRef in the Role's namespace only). Without it provider-sql
// v0.16.0 resets the password of an adopted (retained) role and at times never publishes the new one,
// leaving the app's connection Secret empty (e2e/provider-sql/README.md). With it the provider sets the
// role's password to this Secret's value and publishes it whenever the connection Secret lacks it, so a
// re-vended database gets the password it had.
//
// The Secret is created once and is immutable. Under deletionPolicy Retain it has no owner (and is made
// before the Role): deleting the AppVending keeps it, and vending the same name again finds and re-uses
// it. Under Delete it is created right after the Role, owned by it, so the garbage collector removes it
// only after provider-sql dropped the role (the provider's Observe needs it until then). The operator
// may create Secrets, never update or delete them outside its own namespace, so the owner is decided at
// creation: after a change of deletionPolicy the Secret keeps the owner it was made with. Either way nothing is lost: a Secret left
// behind is re-used, and one collected with its Role is generated anew, which provider-sql sets on the
// kept role. Its value is never logged, put in status or in an event.
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

/** Why the password Secret's name is taken by a Secret that is not this database's, if it is. */
export async function foreignPasswordSecret(
  ctx: ReconcileContext,
  av: AppVending,
): Promise<PasswordProblem | undefined> {
  const namespace = av.metadata.namespace as string;
  const name = passwordSecretName(av.metadata.name);
  const existing = await ctx.client.getOrUndefined<SecretObj>(SECRET, { namespace, name });
  return existing ? foreign(existing, externalNames(namespace, av.metadata.name).postgres, name) : undefined;
}

/**
 * Creates the password Secret when absent: before the Role under Retain (`role` is then the live one, if
 * any), right after it under Delete (its owner). A hand-deleted
 * Secret is restored from the Role's own connection Secret when that still holds the password (the role
 * keeps its password, the app keeps working); only when nothing holds it is a new one generated, which
 * provider-sql then sets on the role: the data is never touched either way.
 */
export async function ensurePasswordSecret(
  ctx: ReconcileContext,
  av: AppVending,
  role: KubeObject | undefined,
): Promise<PasswordProblem | undefined> {
  const namespace = av.metadata.namespace as string;
  const name = passwordSecretName(av.metadata.name);
  const external = externalNames(namespace, av.metadata.name).postgres;
  const existing = await ctx.client.getOrUndefined<SecretObj>(SECRET, { namespace, name });
  if (existing) return foreign(existing, external, name);
  const password = (await passwordInUse(ctx, av, role)) ?? randomBytes(32).toString("base64url");
  const owner =
    av.spec.deletionPolicy === "Delete" && role?.metadata?.uid
      ? [
          {
            apiVersion: role.apiVersion as string,
            kind: role.kind as string,
            name: role.metadata.name as string,
            uid: role.metadata.uid,
          },
        ]
      : undefined;
  try {
    await ctx.client.create({
      ...SECRET,
      metadata: {
        name,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [APP_VENDING_LABEL]: managedName(av.metadata.name) },
        annotations: { [ROLE_ANNOTATION]: external },
        ...(owner ? { ownerReferences: owner } : {}),
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
    return foreign(raced, external, name);
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
async function passwordInUse(
  ctx: ReconcileContext,
  av: AppVending,
  role: KubeObject | undefined,
): Promise<string | undefined> {
  const conn = await ctx.client.getOrUndefined<SecretObj>(SECRET, {
    namespace: av.metadata.namespace as string,
    name: connectionSecretNames(av).database,
  });
  const controller = conn?.metadata?.ownerReferences?.find((r) => r.controller);
  const value = conn?.data?.[PASSWORD_KEY];
  if (!value || !role?.metadata?.uid || controller?.uid !== role.metadata.uid) return undefined;
  return Buffer.from(value, "base64").toString("utf8");
}
