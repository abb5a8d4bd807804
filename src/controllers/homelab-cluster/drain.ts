// Cordon and drain of a Kubernetes Node in the workload cluster, as `kubectl drain` does it: mark the
// Node unschedulable, then ask the Eviction API for each pod on it, so PodDisruptionBudgets are
// respected (the API server refuses with 429 what a budget does not allow). Nothing is ever deleted by
// force: past the timeout the drain pauses with a Condition and keeps asking. When the drain started
// is kept on the Node itself (an annotation), so a restarted operator keeps the same deadline.
import { ApiError, isNotFound, type KubeObject } from "../../runtime/index.ts";
import { parseDuration } from "../workload-migration/duration.ts";
import { blocked, type Outcome, waiting } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";

/** Set on a Node this operator cordoned to take it out: the time the drain started (RFC 3339). */
export const DRAIN_ANNOTATION = "homelab.shdr.ch/drain-started";
export const NODE_GVK = { apiVersion: "v1", kind: "Node" };
const POD_GVK = { apiVersion: "v1", kind: "Pod" };

export type WorkloadNode = KubeObject & { spec?: { unschedulable?: boolean } };
type Pod = KubeObject & {
  spec?: { nodeName?: string };
  status?: { phase?: string };
};

/** Pods a drain leaves alone: DaemonSet pods (recreated on the Node anyway), static pods, finished ones. */
function evictable(pod: Pod): boolean {
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations["kubernetes.io/config.mirror"] !== undefined) return false;
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === "DaemonSet" && o.controller)) return false;
  return pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";
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

  const pods = (await client.list<Pod>(POD_GVK, { fieldSelector: `spec.nodeName=${name}` })).items.filter(
    evictable,
  );
  if (pods.length === 0) return undefined;
  const refused: string[] = [];
  let terminating = 0;
  let evicted = 0;
  for (const pod of pods) {
    const ns = pod.metadata?.namespace ?? "";
    const podName = pod.metadata?.name ?? "";
    if (pod.metadata?.deletionTimestamp) {
      terminating++;
      continue;
    }
    try {
      await client.request(
        "POST",
        `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(podName)}/eviction`,
        {
          body: {
            apiVersion: "policy/v1",
            kind: "Eviction",
            metadata: { name: podName, namespace: ns },
          },
        },
      );
      evicted++;
    } catch (err) {
      if (isNotFound(err)) continue;
      // 429: a PodDisruptionBudget does not allow it now (or the budget is not computed yet).
      if (err instanceof ApiError && err.code === 429) refused.push(`${ns}/${podName}`);
      else throw err;
    }
  }
  const elapsedMs = Date.now() - Date.parse(started);
  const timeoutMs = drainTimeoutMs(scope);
  if (refused.length && elapsedMs > timeoutMs)
    return blocked(
      "DrainTimedOut",
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
    `draining ${name}: ${evicted} pod(s) evicted, ${terminating} terminating`,
    scope.opts.timings.pollMs,
  );
}
