// Apply-if-drifted: compare what should exist with the cached object and write only when they differ.
// A steady-state reconcile then makes no API writes at all (server-side apply of an unchanged object is
// a no-op for etcd, but still a request), and a difference is reported as drift, which users should see.
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";

export type EnsureOutcome = "created" | "updated" | "unchanged";

/** True when every field set in `desired` has the same value in `actual` (extra fields in actual are fine). */
export function isSubset(desired: unknown, actual: unknown): boolean {
  if (desired === actual) return true;
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, actual[i]));
  }
  if (desired && typeof desired === "object") {
    if (!actual || typeof actual !== "object" || Array.isArray(actual)) return false;
    const a = actual as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, a[k]));
  }
  // Numbers the API returns as strings (e.g. "20" pods) and vice versa compare by their text.
  if ((typeof desired === "number" || typeof desired === "string") && typeof actual !== "object") {
    return String(desired) === String(actual);
  }
  return false;
}

/** Applies `desired` (server-side apply, operator field manager) unless `cached` already matches it. */
export async function ensureObject(
  ctx: Pick<ReconcileContext, "client">,
  desired: KubeObject,
  cached: KubeObject | undefined,
): Promise<EnsureOutcome> {
  if (cached && isSubset(desired, cached)) return "unchanged";
  // The written object comes back through the watch: the answer (the whole object) is not parsed.
  await ctx.client.apply(desired, { discardResponse: true });
  return cached ? "updated" : "created";
}
