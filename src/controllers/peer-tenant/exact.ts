// Drift means "not exactly what the operator wants", not "my fields are missing": an extra
// `ingress: [{}]` on the default-deny policy turns it into allow-all, yet leaves every field the operator
// set in place. So owned objects are compared field for field in both directions, and a difference is
// written back with a full update (PUT), which, unlike server-side apply, also drops fields that another
// field manager added.
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";
import type { EnsureOutcome } from "../shared/ensure.ts";
import { parseQuantity } from "../shared/quantity.ts";

/** Top-level fields that are not content: identity, bookkeeping and what the server writes. */
const NOT_CONTENT = new Set(["apiVersion", "kind", "metadata", "status"]);

function sameScalar(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((typeof a === "string" || typeof a === "number") && (typeof b === "string" || typeof b === "number")) {
    if (String(a) === String(b)) return true;
    // The API server writes quantities in canonical form (1024Mi comes back as 1Gi).
    try {
      return parseQuantity(a) === parseQuantity(b);
    } catch {
      return false;
    }
  }
  return false;
}

/** Deep equality where a missing field, null, an empty list and an empty map are the same. */
export function sameValue(a: unknown, b: unknown): boolean {
  const empty = (v: unknown) =>
    v === undefined ||
    v === null ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
  if (empty(a) && empty(b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameValue(x, b[i]));
  }
  if (a && typeof a === "object" && b && typeof b === "object") {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
    return [...keys].every((k) => sameValue(ra[k], rb[k]));
  }
  return sameScalar(a, b);
}

function contentKeys(obj: Record<string, unknown>): string[] {
  return Object.keys(obj).filter((k) => !NOT_CONTENT.has(k));
}

/** Whether `actual` has exactly the content of `desired`, and carries its labels and owner references. */
export function matchesExactly(desired: KubeObject, actual: KubeObject): boolean {
  const d = desired as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  const keys = new Set([...contentKeys(d), ...contentKeys(a)]);
  if (![...keys].every((k) => sameValue(d[k], a[k]))) return false;
  const labels = desired.metadata?.labels ?? {};
  if (!Object.entries(labels).every(([k, v]) => actual.metadata?.labels?.[k] === v)) return false;
  const annotations = desired.metadata?.annotations ?? {};
  if (!Object.entries(annotations).every(([k, v]) => actual.metadata?.annotations?.[k] === v)) return false;
  const refs = desired.metadata?.ownerReferences ?? [];
  return refs.every((r) => actual.metadata?.ownerReferences?.some((o) => o.uid === r.uid));
}

/**
 * Makes the object exactly `desired`: created with server-side apply when missing, replaced (PUT at the
 * observed resourceVersion, so a concurrent change fails and is retried) when its content differs.
 * `observed` is what the caller read: the cache, or a fresh GET where the cache may lag.
 */
export async function ensureExactly(
  ctx: Pick<ReconcileContext, "client">,
  desired: KubeObject,
  observed: KubeObject | undefined,
): Promise<EnsureOutcome> {
  // Only success matters: the written object comes back through the watch, so the answers are not parsed.
  if (!observed) {
    await ctx.client.apply(desired, { discardResponse: true });
    return "created";
  }
  if (matchesExactly(desired, observed)) return "unchanged";
  const { managedFields: _managed, ...meta } = observed.metadata ?? {};
  const replacement: KubeObject & Record<string, unknown> = {
    apiVersion: desired.apiVersion,
    kind: desired.kind,
    metadata: {
      ...meta,
      labels: { ...(observed.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) },
      ...(desired.metadata?.annotations || observed.metadata?.annotations
        ? {
            annotations: {
              ...(observed.metadata?.annotations ?? {}),
              ...(desired.metadata?.annotations ?? {}),
            },
          }
        : {}),
      ...(desired.metadata?.ownerReferences ? { ownerReferences: desired.metadata.ownerReferences } : {}),
    },
  };
  for (const k of contentKeys(desired as Record<string, unknown>)) {
    replacement[k] = (desired as Record<string, unknown>)[k];
  }
  await ctx.client.replace(replacement, undefined, { discardResponse: true });
  return "updated";
}
