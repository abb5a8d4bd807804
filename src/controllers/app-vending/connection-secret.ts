// A part is ready for its app only once the app can log in with what its connection Secret holds. The
// provider's Ready says the external resource exists, not that the Secret carries its credentials: in
// e2e/provider-sql the real provider-sql at times reported a re-vended (adopted) Role Synced and Ready
// while its Secret stayed empty (before the Role named the operator's password Secret,
// password-secret.ts), and once reported the AppVending Ready while PostgreSQL refused the Secret's
// password (the previous Role's Secret lingers until kube-controller-manager's garbage collector deletes
// it; the Role's password is reset only when the Secret it looks at is absent or empty). So the part
// waits until the Secret is controlled by the managed resource that publishes it and holds every key the
// app reads. Only key names are looked at, never values.
import type { AppVending } from "../../crds/app-vending.ts";
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";
import { connectionSecretNames } from "./desired.ts";

const SECRET = { apiVersion: "v1", kind: "Secret" };

export interface SecretWait {
  status: "False";
  reason: "ConnectionSecretPending";
  message: string;
}

/** Keys of the Role's Secret (provider-sql) and the Client's (provider-keycloak) that the app reads. */
export function requiredKeys(av: AppVending, part: "Database" | "OIDCClient"): string[] {
  if (part === "Database") return ["username", "password", "endpoint", "port"];
  return av.spec.oidcClient?.publicClient === false ? ["clientID", "clientSecret"] : ["clientID"];
}

/** The Secret name a part's publisher writes. */
export function secretNameOf(av: AppVending, part: "Database" | "OIDCClient"): string {
  const names = connectionSecretNames(av);
  return part === "Database" ? names.database : names.oidcClient;
}

/** Undefined when `publisher`'s connection Secret is its own and complete; otherwise what is missing. */
export async function connectionSecretWait(
  ctx: ReconcileContext,
  publisher: KubeObject,
  name: string,
  keys: string[],
): Promise<SecretWait | undefined> {
  const namespace = publisher.metadata?.namespace as string;
  const what = `${publisher.kind} ${publisher.metadata?.name}`;
  const secret = await ctx.client.getOrUndefined<KubeObject & { data?: Record<string, string> }>(SECRET, {
    namespace,
    name,
  });
  const wait = (message: string): SecretWait => ({
    status: "False",
    reason: "ConnectionSecretPending",
    message,
  });
  if (!secret) return wait(`waiting for ${what} to write its connection Secret ${name}`);
  const controller = secret.metadata?.ownerReferences?.find((r) => r.controller);
  if (controller?.uid !== publisher.metadata?.uid)
    return wait(`Secret ${name} is not (yet) the one ${what} writes`);
  const missing = keys.filter((k) => !secret.data?.[k]);
  if (missing.length > 0) return wait(`Secret ${name} does not hold ${missing.join(", ")} yet`);
  return undefined;
}
