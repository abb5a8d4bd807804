// What the Talos simulator's machines do with their cluster's Kubernetes in local mode: hand out the
// workload control plane's kubeconfig, and register each joined machine as a Node the way Talos'
// kubelet does (hostname, InternalIP, role label, kubelet version, the control-plane taint unless the
// cluster allows scheduling there), and publish the mirror pods of the static pods its config runs
// (a control plane's API server, controller manager and scheduler). KWOK then plays the kubelet.
import type { WorkloadClusterHook } from "../talos/simulator/simulator.ts";
import type { WorkloadCluster } from "./workload-cluster.ts";

export function talosWorkloadHook(
  workload: Pick<WorkloadCluster, "kubeconfig" | "registerNode">,
): WorkloadClusterHook {
  return {
    kubeconfig: () => workload.kubeconfig(),
    nodeJoined: (node) =>
      workload.registerNode({
        name: node.hostname,
        address: node.address,
        roles: node.role === "controlplane" ? ["control-plane"] : [],
        kubeletVersion: node.kubeletVersion,
        taints: node.schedulable
          ? []
          : [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
        staticPods: node.staticPods,
      }),
  };
}
