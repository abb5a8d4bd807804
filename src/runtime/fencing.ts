// Fencing before side effects outside Kubernetes. Leader election alone lets a paused or partitioned
// leader act on a stale belief (client-go's leaderelection docs: "does not provide fencing"); a VM deleted
// twice or an etcd member removed by two leaders cannot be undone. So right before such a call, a
// controller proves with a live read that the Lease is still ours for a while, and refuses otherwise.
import type { KubeClient } from "./client.ts";
import { describeError } from "./errors.ts";
import type { LeaseSpec } from "./leader-election.ts";

/**
 * This process may not (or can no longer prove it may) act as the leader. The controller neither counts it
 * as a failed reconcile nor logs it as one: the reconcile is aborted and the key requeued, which is a no-op
 * once the queue is shut down (leadership lost) and a retry with backoff if the proof only failed to load.
 */
export class FencingError extends Error {
  override readonly name = "FencingError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isFencingError(err: unknown): err is FencingError {
  return err instanceof FencingError;
}

export type FenceVerdict = { ok: true; validForMs: number } | { ok: false; why: string };

/**
 * The pure part: may `me` act on this Lease record at wall-clock `nowMs`? Only if it holds the record and
 * the record's own renewTime + leaseDurationSeconds (what a standby goes by, not our local setting) is more
 * than `marginMs` away. renewTime was written by this process (it is the holder), so comparing it with this
 * process's clock involves no other machine's clock.
 */
export function fenceVerdict(
  spec: LeaseSpec | undefined,
  me: string,
  nowMs: number,
  marginMs: number,
): FenceVerdict {
  const holder = spec?.holderIdentity ?? "";
  if (holder !== me) return { ok: false, why: `the lease is held by ${holder ? `"${holder}"` : "nobody"}` };
  const renewedAt = spec?.renewTime ? Date.parse(spec.renewTime) : Number.NaN;
  const durationS = spec?.leaseDurationSeconds;
  if (!Number.isFinite(renewedAt) || !durationS || durationS <= 0)
    return { ok: false, why: "the lease record has no renewTime or leaseDurationSeconds" };
  const expiresAt = renewedAt + durationS * 1000;
  const validForMs = expiresAt - marginMs - nowMs;
  if (validForMs <= 0) {
    return {
      ok: false,
      why: `the lease expires at ${new Date(expiresAt).toISOString()} (renewed ${spec?.renewTime}, ${durationS}s), less than the ${marginMs} ms safety margin away`,
    };
  }
  return { ok: true, validForMs };
}

/** What a fence checks against: this process's elector. */
export interface FenceTarget {
  identity: string;
  namespace: string;
  name: string;
  /** The elector's own belief; a fence never outruns it. */
  isLeader(): boolean;
  /** Time the destructive call may still need after the check; default in the elector's config. */
  safetyMarginMs: number;
}

export type Fence = (reason: string, signal?: AbortSignal) => Promise<void>;

/** Without leader election (one replica) there is nobody to be fenced from: always passes. */
export const noFence: Fence = async (_reason, signal) => {
  signal?.throwIfAborted();
};

/**
 * A fence on the Lease of `target`: a live GET (never a cache) through `client`, then fenceVerdict on the
 * wall clock, then the elector's belief once more (it may have given up while the GET was in flight).
 */
export function leaseFence(client: KubeClient, target: FenceTarget, timeoutMs = 5_000): Fence {
  const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(target.namespace)}/leases/${encodeURIComponent(target.name)}`;
  return async (reason, signal) => {
    const refuse = (why: string, cause?: unknown) =>
      new FencingError(`fence before ${reason} refused: ${why}`, cause === undefined ? undefined : { cause });
    if (signal?.aborted) throw refuse(`the reconcile was aborted (${describeError(signal.reason)})`);
    if (!target.isLeader()) throw refuse("this process no longer leads");
    const timeout = AbortSignal.timeout(timeoutMs);
    let lease: { spec?: LeaseSpec };
    try {
      lease = await client.request<{ spec?: LeaseSpec }>("GET", path, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw refuse(`could not read the lease live (${describeError(err)})`, err);
    }
    const verdict = fenceVerdict(lease.spec, target.identity, Date.now(), target.safetyMarginMs);
    if (!verdict.ok) throw refuse(verdict.why);
    if (!target.isLeader()) throw refuse("this process stopped leading during the check");
    if (signal?.aborted) throw refuse(`the reconcile was aborted (${describeError(signal.reason)})`);
  };
}
