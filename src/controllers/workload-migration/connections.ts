// Where a migration reaches: the Proxmox API (its own spec.proxmox, else its HomelabCluster's) and the
// cluster the targets run in (the management cluster, or the HomelabCluster's workload cluster through
// the <cluster>-kubeconfig Secret, key value).
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import { ProxmoxClient, type TlsTrust } from "../../proxmox/index.ts";
import type { Dial } from "../../proxmox/transport.ts";
import {
  KubeClient as Client,
  type KubeClient,
  type KubeObject,
  parseKubeconfig,
  TerminalError,
} from "../../runtime/index.ts";

const SECRET = { apiVersion: "v1", kind: "Secret" } as const;
export const HOMELAB_CLUSTER = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" } as const;

interface SecretObject {
  data?: Record<string, string>;
}

async function secretValue(kube: KubeClient, ref: { name: string; namespace: string }, key: string) {
  const secret = await kube.getOrUndefined<SecretObject & KubeObject>(SECRET, ref);
  const b64 = secret?.data?.[key];
  if (b64 === undefined) throw new Error(`Secret ${ref.namespace}/${ref.name} has no key ${key}`);
  return Buffer.from(b64, "base64").toString("utf8");
}

interface ProxmoxSource {
  endpoint: string;
  credentialsRef: { name: string; namespace: string };
  tls: TlsTrust | { caBundleRef: { name: string; namespace: string; key: string } };
}

function proxmoxSource(wm: WorkloadMigration, cluster: HomelabCluster | undefined): ProxmoxSource {
  const own = wm.spec.proxmox;
  if (own)
    return {
      endpoint: own.endpoint,
      credentialsRef: own.credentialsRef,
      tls: own.fingerprint
        ? { fingerprint: own.fingerprint }
        : { caBundleRef: { ...own.caBundleRef!, key: "ca.crt" } },
    };
  if (!cluster) throw new TerminalError(`HomelabCluster ${wm.spec.clusterRef?.name} not found`);
  const p = cluster.spec.proxmox;
  return {
    endpoint: p.endpoint,
    credentialsRef: p.credentialsRef,
    tls: p.tls.fingerprint ? { fingerprint: p.tls.fingerprint } : { caBundleRef: p.tls.caBundleRef! },
  };
}

export async function proxmoxFor(
  kube: KubeClient,
  wm: WorkloadMigration,
  cluster: HomelabCluster | undefined,
  signal: AbortSignal,
  dial?: Dial,
): Promise<ProxmoxClient> {
  const src = proxmoxSource(wm, cluster);
  const tls: TlsTrust =
    "caBundleRef" in src.tls
      ? { caPem: await secretValue(kube, src.tls.caBundleRef, src.tls.caBundleRef.key) }
      : src.tls;
  return new ProxmoxClient({
    url: src.endpoint,
    tokenId: await secretValue(kube, src.credentialsRef, "tokenID"),
    tokenSecret: await secretValue(kube, src.credentialsRef, "secret"),
    tls,
    ...(dial ? { dial } : {}),
  }).withSignal(signal);
}

/**
 * The cluster the targets run in. A workload cluster's client is built from its kubeconfig Secret on each
 * reconcile (small, and never stale after a rotation); the Secret lives in the operator's namespace.
 */
export async function targetClusterFor(
  kube: KubeClient,
  wm: WorkloadMigration,
  operatorNamespace: string,
  signal: AbortSignal,
): Promise<{ client: KubeClient; local: boolean; kubeconfig?: string }> {
  const ref = wm.spec.clusterRef;
  if (!ref) return { client: kube, local: true };
  const kubeconfig = await secretValue(
    kube,
    { name: `${ref.name}-kubeconfig`, namespace: operatorNamespace },
    "value",
  );
  return { client: new Client(parseKubeconfig(kubeconfig)).withSignal(signal), local: false, kubeconfig };
}
