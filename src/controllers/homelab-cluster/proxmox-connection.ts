// The Proxmox client of one HomelabCluster, built from its credentials Secret and TLS trust, and kept
// while they stay the same (one connection pool per cluster, not one per reconcile).
import { createHash } from "node:crypto";
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import { ProxmoxClient } from "../../proxmox/index.ts";
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";
import type { Connections } from "./connections.ts";
import { CredentialsError } from "./outcome.ts";
import { decodeData, SECRET_GVK } from "./secrets.ts";

async function secretData(ctx: ReconcileContext, ref: { name: string; namespace: string }, what: string) {
  const secret = await ctx.client.getOrUndefined<KubeObject & { data?: Record<string, string> }>(
    SECRET_GVK,
    ref,
  );
  if (!secret) throw new CredentialsError(`${what} Secret ${ref.namespace}/${ref.name} does not exist`);
  return decodeData(secret);
}

/** Per controller instance: the clients of each cluster, replaced when its credentials change. */
export class ProxmoxClients {
  private readonly clients = new Map<string, { hash: string; client: ProxmoxClient }>();

  get(ctx: ReconcileContext, hc: HomelabCluster, connections: Connections): Promise<ProxmoxClient> {
    return proxmoxClientFor(this.clients, ctx, hc, connections);
  }

  forget(name: string): void {
    const cached = this.clients.get(name);
    this.clients.delete(name);
    if (cached) void cached.client.close();
  }
}

async function proxmoxClientFor(
  clients: Map<string, { hash: string; client: ProxmoxClient }>,
  ctx: ReconcileContext,
  hc: HomelabCluster,
  connections: Connections,
): Promise<ProxmoxClient> {
  const { proxmox } = hc.spec;
  const creds = await secretData(ctx, proxmox.credentialsRef, "credentials");
  const tokenId = creds["tokenID"];
  const tokenSecret = creds["secret"];
  if (!tokenId || !tokenSecret)
    throw new CredentialsError(
      `credentials Secret ${proxmox.credentialsRef.namespace}/${proxmox.credentialsRef.name} needs keys tokenID and secret`,
    );
  let tls: { caPem: string } | { fingerprint: string };
  const ca = proxmox.tls.caBundleRef;
  if (ca) {
    const caPem = (await secretData(ctx, ca, "CA bundle"))[ca.key];
    if (!caPem)
      throw new CredentialsError(`CA bundle Secret ${ca.namespace}/${ca.name} has no key ${ca.key}`);
    tls = { caPem };
  } else tls = { fingerprint: proxmox.tls.fingerprint ?? "" };
  const url = connections.proxmoxUrl(proxmox.endpoint);
  const hash = createHash("sha256")
    .update(JSON.stringify([url, tokenId, tokenSecret, tls]))
    .digest("hex");
  const name = hc.metadata.name ?? "";
  const cached = clients.get(name);
  if (cached?.hash === hash) return cached.client;
  if (cached) void cached.client.close();
  const client = new ProxmoxClient({ url, tokenId, tokenSecret, tls, dial: connections.dial });
  clients.set(name, { hash, client });
  return client;
}
