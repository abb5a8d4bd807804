// The tenant's vending limits, re-checked at every reconcile (admission counts AppVendings through the
// namespace's ResourceQuota; this counts the parts across all of the tenant's namespaces). The oldest
// AppVendings keep their parts: when a limit is exceeded it is the newest that waits, so a lowered limit
// or a race past admission never takes a working app away from an older one.
import type { AppVending } from "../../crds/app-vending.ts";
import type { PeerTenant } from "../../crds/peer-tenant.ts";
import type { KubeObject, ReconcileContext } from "../../runtime/index.ts";
import { GVK } from "./desired.ts";

export type LimitedPart = "App" | "Bucket" | "Database" | "OIDCClient";

type Spec = Partial<Record<"app" | "bucket" | "database" | "oidcClient", unknown>>;

const LIMITS: { part: LimitedPart; field: keyof Spec; limit: keyof PeerTenant["spec"]["vending"] }[] = [
  { part: "App", field: "app", limit: "maxApps" },
  { part: "Bucket", field: "bucket", limit: "maxBuckets" },
  { part: "Database", field: "database", limit: "maxDatabases" },
  { part: "OIDCClient", field: "oidcClient", limit: "maxOIDCClients" },
];

interface Ranked {
  namespace: string;
  name: string;
  created: string;
  spec: Spec;
}

/** Sorts oldest first; ties (same second) by namespace and name, so every reconcile agrees. */
export function byAge(a: Ranked, b: Ranked): number {
  return (
    a.created.localeCompare(b.created) ||
    a.namespace.localeCompare(b.namespace) ||
    a.name.localeCompare(b.name)
  );
}

/** Parts of `self` beyond the tenant's limits, with the message to show, given the tenant's AppVendings. */
export function overLimit(
  self: { namespace: string; name: string },
  all: Ranked[],
  vending: PeerTenant["spec"]["vending"],
): Map<LimitedPart, string> {
  const out = new Map<LimitedPart, string>();
  const sorted = [...all].sort(byAge);
  for (const { part, field, limit } of LIMITS) {
    const using = sorted.filter((r) => r.spec[field] !== undefined);
    const rank = using.findIndex((r) => r.namespace === self.namespace && r.name === self.name);
    const max = vending[limit] as number;
    if (rank >= max) {
      out.set(part, `the tenant's limit ${limit} is ${max} and ${rank} older AppVending(s) already use it`);
    }
  }
  return out;
}

export async function partsOverLimit(
  ctx: ReconcileContext,
  av: AppVending,
  tenant: PeerTenant,
): Promise<Map<LimitedPart, string>> {
  const namespaces = new Set(tenant.status?.namespaces ?? []);
  namespaces.add(av.metadata.namespace as string);
  const all: Ranked[] = ctx.cache
    .list<KubeObject & { spec?: Spec }>(GVK.appVending)
    .filter((o) => namespaces.has(o.metadata?.namespace ?? "") && !o.metadata?.deletionTimestamp)
    .map((o) => ({
      namespace: o.metadata?.namespace ?? "",
      name: o.metadata?.name ?? "",
      created: o.metadata?.creationTimestamp ?? "",
      spec: o.spec ?? {},
    }));
  return overLimit(
    { namespace: av.metadata.namespace as string, name: av.metadata.name },
    all,
    tenant.spec.vending,
  );
}
