// The last step of the Kubernetes upgrade, after every kubelet (talosctl upgrade-k8s: "sync bootstrap
// manifests", pkg/cluster/kubernetes/patch.go): Talos renders its bootstrap manifests (kubelet
// bootstrapping RBAC, kube-proxy …) on each control plane from its config; we read them from a Ready
// control plane over COSI and server-side apply them into the workload cluster under a field manager of
// their own, then wait for the kube-proxy DaemonSet to roll out. Applying the same objects again changes
// nothing (SSA), and a field edited by hand is put back on the next pass (forced apply).
import type { KubeObject } from "../../runtime/index.ts";
import { controlPlanes } from "./names.ts";
import type { Scope } from "./scope.ts";
import { adminClient, withClient } from "./talos.ts";

/** Our field manager for Talos' manifests, apart from the operator's own objects (talosctl's is "talos"). */
export const MANIFESTS_FIELD_MANAGER = "talos";

type DaemonSet = KubeObject & {
  metadata?: { generation?: number };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
};

export type ManifestsResult =
  | { kind: "synced"; objects: number; changed: number }
  | { kind: "rolling"; message: string }
  | { kind: "unavailable"; message: string };

/** Whether a DaemonSet's current generation runs on every node it should (kubectl rollout status). */
export function daemonSetRolledOut(ds: DaemonSet): boolean {
  const s = ds.status ?? {};
  const desired = s.desiredNumberScheduled ?? 0;
  return (
    (s.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1) &&
    (s.updatedNumberScheduled ?? 0) >= desired &&
    (s.numberAvailable ?? 0) >= desired
  );
}

export async function syncBootstrapManifests(
  scope: Scope,
  readyNodes: Set<string>,
): Promise<ManifestsResult> {
  // A control plane whose Node is Ready: its config is the one every control plane now has.
  const source = controlPlanes(scope.spec).find((cp) => readyNodes.has(cp.name));
  if (!source)
    return { kind: "unavailable", message: "no Ready control plane to read the bootstrap manifests from" };
  const manifests = await withClient(adminClient(scope, source.ip), (c) => c.bootstrapManifests());
  const client = scope.workload(scope.kubeconfig ?? "");
  let objects = 0;
  let changed = 0;
  let kubeProxy: DaemonSet | undefined;
  for (const m of manifests)
    for (const obj of m.objects as KubeObject[]) {
      objects++;
      const before = obj.metadata?.name
        ? await client
            .get<KubeObject>(
              { apiVersion: String(obj.apiVersion), kind: String(obj.kind) },
              { name: obj.metadata.name, namespace: obj.metadata.namespace },
            )
            .catch(() => undefined)
        : undefined;
      const after = await client.apply(obj, { fieldManager: MANIFESTS_FIELD_MANAGER, force: true });
      if (before?.metadata?.resourceVersion !== after.metadata?.resourceVersion) changed++;
      if (obj.kind === "DaemonSet" && obj.metadata?.name === "kube-proxy") kubeProxy = after as DaemonSet;
    }
  if (kubeProxy && !daemonSetRolledOut(kubeProxy)) {
    const s = kubeProxy.status ?? {};
    return {
      kind: "rolling",
      message: `kube-proxy DaemonSet: ${s.updatedNumberScheduled ?? 0}/${s.desiredNumberScheduled ?? "?"} updated, ${s.numberAvailable ?? 0} available`,
    };
  }
  return { kind: "synced", objects, changed };
}
