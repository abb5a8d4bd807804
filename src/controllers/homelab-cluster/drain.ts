// Cordon and drain a Kubernetes Node the way `kubectl drain --ignore-daemonsets` does: mark it
// unschedulable, then ask the Eviction API to evict every pod on it, so PodDisruptionBudgets are honoured
// (a 429 means a budget forbids it now: try again later, never delete instead). Mirror pods (static pods
// the kubelet runs from its config) and DaemonSet pods are left: evicting them achieves nothing, they
// come back at once. One pass per call (`drainPass`); the caller decides how long to keep trying. A
// node taken out for good (`drainNode`, scale-down) keeps when its drain started on the Node itself (an
// annotation), so a restarted operator keeps the same deadline; past it the drain pauses with a
// Condition and keeps asking — nothing is ever deleted by force.
import { ApiError, type KubeClient, type KubeObject } from "../../runtime/index.ts";
import { parseDuration } from "../workload-migration/duration.ts";
import { blocked, type Outcome, waiting } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";

/** Set on a Node this operator cordoned to take it out: the time the drain started (RFC 3339). */
export const DRAIN_ANNOTATION = "homelab.shdr.ch/drain-started";
export const NODE_GVK = { apiVersion: "v1", kind: "Node" };
const NODE = NODE_GVK;
const POD = { apiVersion: "v1", kind: "Pod" };
const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";

export type WorkloadNode = KubeObject & { spec?: { unschedulable?: boolean } };

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

/** The drain's timeout: how long a node may take to become healthy during a rollout (upgrade.healthTimeout). */
export function drainTimeoutMs(scope: Scope): number {
  return parseDuration(scope.spec.upgrade.healthTimeout);
}

/**
 * Drains `name`: undefined once no pod that must go is left on it (or the Node does not exist), else
 * what it is waiting for. With `evict: false` it is only cordoned and marked: the annotation is also
 * what lets a later pass find the Node to delete once the VM and the member are gone.
 */
export async function drainNode(
  scope: Scope,
  name: string,
  options: { evict: boolean } = { evict: true },
): Promise<Outcome | undefined> {
  const client = scope.workload(scope.kubeconfig ?? "");
  const node = await client.getOrUndefined<WorkloadNode>(NODE_GVK, { name });
  if (!node) return undefined;
  let started = node.metadata?.annotations?.[DRAIN_ANNOTATION];
  if (!node.spec?.unschedulable || !started) {
    started ??= new Date().toISOString();
    await client.patch(
      NODE_GVK,
      { name },
      { spec: { unschedulable: true }, metadata: { annotations: { [DRAIN_ANNOTATION]: started } } },
      "merge",
    );
    milestone(scope, "NodeCordoned", "Drain", `${name} cordoned to be drained and removed`);
  }
  if (!options.evict) return undefined;

  const pass = await drainPass(client, name);
  if (pass.remaining.length === 0) return undefined;
  const refused = pass.blocked.map((b) => b.pod);
  const elapsedMs = Date.now() - Date.parse(started);
  const timeoutMs = drainTimeoutMs(scope);
  if (refused.length && elapsedMs > timeoutMs)
    return blocked(
      "DrainTimeout",
      `draining ${name} for ${Math.round(elapsedMs / 1000)} s, past upgrade.healthTimeout ${scope.spec.upgrade.healthTimeout}: a PodDisruptionBudget refuses evicting ${refused.join(", ")}; paused (pods are never deleted by force) until the budget allows it`,
      scope.opts.timings.blockedMs,
    );
  if (refused.length)
    return waiting(
      "DrainBlocked",
      `draining ${name}: a PodDisruptionBudget refuses evicting ${refused.join(", ")} for now; asking again`,
      scope.opts.timings.pollMs,
    );
  return waiting(
    "Draining",
    `draining ${name}: ${pass.remaining.length} pod(s) still on it, evictions asked`,
    scope.opts.timings.pollMs,
  );
}
