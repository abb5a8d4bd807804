// The part of a kubelet that KWOK does not simulate: noticing that a CNI is installed on its node. A
// real kubelet reports the network ready once the CNI agent (Cilium's DaemonSet pod on that node) has
// written its CNI config; here a node is marked (CNI_READY_ANNOTATION) while a Running pod labelled
// k8s-app=cilium in kube-system - the label of Cilium's agent DaemonSet - is bound to it, and unmarked
// when no such pod runs there any more. KWOK's node Stages turn the mark into the Ready condition.
import type { KubeClient, KubeObject } from "../runtime/index.ts";
import { CNI_READY_ANNOTATION } from "./kwok-stages.ts";
import { runRounds } from "./rounds.ts";

export const CNI_AGENT_NAMESPACE = "kube-system";
export const CNI_AGENT_SELECTOR = "k8s-app=cilium";

interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string };
}

/** Which CNI agent pod (namespace/name) runs on each node, from a list of candidate pods. */
export function cniPodsByNode(pods: readonly Pod[]): Map<string, string> {
  const byNode = new Map<string, string>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (!node || pod.status?.phase !== "Running" || pod.metadata?.deletionTimestamp) continue;
    const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const current = byNode.get(node);
    if (!current || name < current) byNode.set(node, name);
  }
  return byNode;
}

/** One pass: marks and unmarks every node so the mark matches the CNI agent pods. */
export async function syncCniReadiness(client: KubeClient): Promise<void> {
  const [pods, nodes] = await Promise.all([
    client.list<Pod>(
      { apiVersion: "v1", kind: "Pod" },
      { namespace: CNI_AGENT_NAMESPACE, labelSelector: CNI_AGENT_SELECTOR },
    ),
    client.list<KubeObject>({ apiVersion: "v1", kind: "Node" }),
  ]);
  const wanted = cniPodsByNode(pods.items);
  for (const node of nodes.items) {
    const name = node.metadata?.name ?? "";
    const has = node.metadata?.annotations?.[CNI_READY_ANNOTATION];
    const want = wanted.get(name);
    if (has === want) continue;
    await client.patch(
      { apiVersion: "v1", kind: "Node" },
      { name },
      { metadata: { annotations: { [CNI_READY_ANNOTATION]: want ?? null } } },
      "merge",
    );
  }
}

/** Keeps the marks in sync every `intervalMs` until stopped. */
export function watchCniReadiness(
  client: KubeClient,
  onError: (err: unknown) => void,
  intervalMs = 1_000,
): { stop(): Promise<void> } {
  return runRounds(() => syncCniReadiness(client), onError, intervalMs);
}
