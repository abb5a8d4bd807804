// Phase 3: the Talos secrets bundle and the admin talosconfig, each in a Secret in the operator's
// namespace. Generated once and never regenerated: a Secret that exists is read, never overwritten (a
// lost race on create reads the winner's). The Secrets carry the cluster label, not an ownerReference,
// so deleting the HomelabCluster with deletionPolicy Retain keeps the keys to the VMs it leaves running.
import { isAlreadyExists, type KubeObject } from "../../runtime/index.ts";
import {
  bundleFromSecretData,
  bundleToSecretData,
  ensureSecretsBundle,
  type SecretsBundle,
} from "../../talos/config/secrets.ts";
import {
  generateAdminTalosconfig,
  talosconfigFromYaml,
  talosconfigToYaml,
} from "../../talos/config/talosconfig.ts";
import { CLUSTER_LABEL, controlPlanes, MANAGED_BY, MANAGED_BY_LABEL, secretNames } from "./names.ts";
import { done, type Outcome } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";

export const SECRET_GVK = { apiVersion: "v1", kind: "Secret" };
type Secret = KubeObject & { data?: Record<string, string>; stringData?: Record<string, string> };

export function decodeData(secret: Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

/** Reads the Secret, or creates it from `make()` if absent; an existing one always wins. */
export async function readOrCreateSecret(
  scope: Scope,
  name: string,
  make: () => Record<string, string> | Promise<Record<string, string>>,
): Promise<{ data: Record<string, string>; created: boolean }> {
  const key = { namespace: scope.opts.namespace, name };
  const existing = await scope.ctx.client.getOrUndefined<Secret>(SECRET_GVK, key);
  if (existing) return { data: decodeData(existing), created: false };
  const data = await make();
  try {
    await scope.ctx.client.create<Secret>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...key,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [CLUSTER_LABEL]: scope.name },
      },
      type: "Opaque",
      stringData: data,
    });
    return { data, created: true };
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    return { data: decodeData(await scope.ctx.client.get<Secret>(SECRET_GVK, key)), created: false };
  }
}

export async function ensureSecrets(scope: Scope): Promise<Outcome> {
  const names = secretNames(scope.name);
  const ref = (name: string) => ({ name, namespace: scope.opts.namespace });

  const bundleSecret = await readOrCreateSecret(scope, names.talosSecrets, () =>
    bundleToSecretData(ensureSecretsBundle()),
  );
  // A bundle missing a part (edited by hand) is completed in memory only: the Secret is never rewritten.
  const secrets: SecretsBundle = ensureSecretsBundle(bundleFromSecretData(bundleSecret.data));
  scope.secrets = secrets;

  // talosctl reaches the cluster through any control plane: list them all, not just the first.
  const endpoints = controlPlanes(scope.spec).map((n) => n.ip);
  const talosconfigSecret = await readOrCreateSecret(scope, names.talosconfig, () => ({
    talosconfig: talosconfigToYaml(
      generateAdminTalosconfig(secrets, { contextName: scope.spec.kubernetes.clusterName, endpoints }),
    ),
  }));
  scope.talosconfig = talosconfigFromYaml(talosconfigSecret.data["talosconfig"] ?? "");

  scope.status.secretRefs = {
    ...(scope.previous.secretRefs ?? {}),
    talosSecrets: ref(names.talosSecrets),
    talosconfig: ref(names.talosconfig),
  };
  if (bundleSecret.created || talosconfigSecret.created)
    milestone(
      scope,
      "SecretsCreated",
      "Generate",
      `Talos secrets and talosconfig stored in ${scope.opts.namespace}`,
    );
  return done("SecretsStored", `${names.talosSecrets} and ${names.talosconfig} in ${scope.opts.namespace}`);
}
