// Cordon and drain a Kubernetes Node the way `kubectl drain --ignore-daemonsets` does: mark it
// unschedulable, then ask the Eviction API to evict every pod on it, so PodDisruptionBudgets are honoured
// (a 429 means a budget forbids it now: try again later, never delete instead). Mirror pods (static pods
// the kubelet runs from its config) and DaemonSet pods are left: evicting them achieves nothing, they
// come back at once. One pass per call; the caller decides how long to keep trying.
import { ApiError, type KubeClient, type KubeObject } from "../../runtime/index.ts";

const NODE = { apiVersion: "v1", kind: "Node" };
const POD = { apiVersion: "v1", kind: "Pod" };
const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";

interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string };
}

export interface DrainPass {
  /** Pods still on the node that must go before it is drained (terminating ones included). */
  remaining: string[];
  /** Evictions refused by a disruption budget in this pass: namespace/name and the API's message. */
  blocked: { pod: string; message: string }[];
}

export async function setUnschedulable(client: KubeClient, node: string, unschedulable: boolean) {
  await client.patch(NODE, { name: node }, { spec: { unschedulable: unschedulable ? true : null } }, "merge");
}

function mustGo(pod: Pod): boolean {
  if (pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined) return false;
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === "DaemonSet")) return false;
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed";
}

/** Cordons `node` and asks for the eviction of every pod that must go. */
export async function drainPass(client: KubeClient, node: string): Promise<DrainPass> {
  await setUnschedulable(client, node, true);
  const pods = await client.list<Pod>(POD, { fieldSelector: `spec.nodeName=${node}` });
  const result: DrainPass = { remaining: [], blocked: [] };
  for (const pod of pods.items.filter(mustGo)) {
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    result.remaining.push(`${namespace}/${name}`);
    if (pod.metadata?.deletionTimestamp) continue; // evicted already, terminating
    try {
      await client.request("POST", `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
        body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } },
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) continue; // gone meanwhile
      if (err instanceof ApiError && err.code === 429) {
        result.blocked.push({
          pod: `${namespace}/${name}`,
          message: err.message.replace(/^.*?: 429 \w+: /, ""),
        });
        continue;
      }
      throw err;
    }
  }
  return result;
}
