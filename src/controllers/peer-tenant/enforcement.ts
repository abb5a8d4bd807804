// NetworkPolicies are only objects until a CNI implements them; a cluster with flannel alone (or no CNI)
// accepts them and enforces nothing. This looks for a ready DaemonSet of a CNI known to enforce them.
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";

export interface PolicyEnforcement {
  /** The CNI found, e.g. `cilium (kube-system/cilium)`; undefined when none was found. */
  by?: string;
  message: string;
}

/** DaemonSet names in kube-system of CNIs that implement NetworkPolicy, as their manifests name them. */
export const ENFORCING_CNI_DAEMONSETS: Record<string, string> = {
  cilium: "Cilium",
  "calico-node": "Calico",
  "kube-router": "kube-router",
  "antrea-agent": "Antrea",
  "weave-net": "Weave Net",
  "kube-ovn-cni": "Kube-OVN",
};

export async function detectPolicyEnforcement(ctx: ReconcileContext): Promise<PolicyEnforcement> {
  let daemonSets: KubeObject[];
  try {
    daemonSets = (
      await ctx.client.list({ apiVersion: "apps/v1", kind: "DaemonSet" }, { namespace: "kube-system" })
    ).items;
  } catch (err) {
    return { message: `could not list DaemonSets in kube-system to find the CNI: ${(err as Error).message}` };
  }
  return enforcementFrom(daemonSets);
}

export function enforcementFrom(daemonSets: KubeObject[]): PolicyEnforcement {
  for (const ds of daemonSets) {
    const name = ds.metadata?.name ?? "";
    const cni = ENFORCING_CNI_DAEMONSETS[name];
    const ready = (ds.status as { numberReady?: number } | undefined)?.numberReady ?? 0;
    if (cni && ready > 0) {
      return {
        by: cni,
        message: `${cni} (DaemonSet kube-system/${name}, ${ready} ready) implements NetworkPolicy`,
      };
    }
  }
  return {
    message: `no ready DaemonSet of a CNI that implements NetworkPolicy in kube-system (looked for ${Object.keys(
      ENFORCING_CNI_DAEMONSETS,
    ).join(", ")}): the tenant's network policies may be enforced by nothing`,
  };
}
