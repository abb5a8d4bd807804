// The stand-in CNI every workload-cluster suite installs: a DaemonSet shaped as Cilium's agent (label
// k8s-app=cilium in kube-system, tolerating every taint, on the host network). A Running pod of it on a
// node is the mark src/local/cni-readiness.ts looks for, as installing Cilium's chart gives it.
import type { KubeObject } from "../../src/runtime/index.ts";

export function ciliumAgentDaemonSet(): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "cilium", namespace: "kube-system" },
    spec: {
      selector: { matchLabels: { "k8s-app": "cilium" } },
      template: {
        metadata: { labels: { "k8s-app": "cilium" } },
        spec: {
          hostNetwork: true,
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "cilium-agent", image: "quay.io/cilium/cilium:v1.18.1" }],
        },
      },
    },
  } as KubeObject;
}
