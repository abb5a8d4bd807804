// Admission-time cap on AppVendings: a ResourceQuota `tenant-vending-quota` with
// `count/appvendings.homelab.shdr.ch` in each of a tenant's namespaces. A ValidatingAdmissionPolicy sees
// one object and can count nothing; the quota admission plugin can, atomically. The cap is the sum of the
// tenant's vending limits (every AppVending asks for at least one part, so no more AppVendings than that
// can all be served); which parts each gets is the AppVending controller's precise per-tenant check.
// A small controller of its own beside the PeerTenant one, so the two change independently. Its quota is
// labelled like the tenant's other objects: the tenant guardrails protect it and a release removes it.
import { PeerTenant } from "../../crds/peer-tenant.ts";
import {
  type ControllerSpec,
  controllerReference,
  type KubeObject,
  type ReconcileContext,
  specOrMetadataChanged,
} from "../../runtime/index.ts";
import { ensureObject } from "../shared/ensure.ts";
import { managedLabels, TENANT_LABEL, TENANT_SELECTOR } from "./labels.ts";

export const VENDING_QUOTA_NAME = "tenant-vending-quota";
export const APPVENDING_COUNT = "count/appvendings.homelab.shdr.ch";
/** How long kube-controller-manager gets to count a new quota before it is made again (see below). */
const UNCOUNTED_GRACE_MS = 45_000;

const GVK_TENANT = { apiVersion: PeerTenant.apiVersion, kind: PeerTenant.kind };
const GVK_QUOTA = { apiVersion: "v1", kind: "ResourceQuota" };

type Obj = KubeObject & Record<string, unknown>;

export function vendingQuotaHard(vending: PeerTenant["spec"]["vending"]): Record<string, string> {
  const sum = vending.maxApps + vending.maxBuckets + vending.maxDatabases + vending.maxOIDCClients;
  return { [APPVENDING_COUNT]: String(sum) };
}

function sameNamespaces(a: KubeObject | undefined, b: KubeObject): boolean {
  const of = (o: KubeObject | undefined) =>
    (o?.status as { namespaces?: string[] } | undefined)?.namespaces ?? [];
  const x = of(a);
  const y = of(b);
  return x.length === y.length && x.every((n, i) => n === y[i]);
}

export function vendingQuotaController(): ControllerSpec {
  return {
    name: "peertenant-vending-quota",
    for: GVK_TENANT,
    // Its quotas carry the tenant labels: watched with the PeerTenant controller's selector, they share
    // its ResourceQuota cache instead of a second one holding every quota of the cluster (2000 objects
    // at 1000 tenants; bench/peer-tenant). An unlabelled quota of that name is still applied over.
    watches: [
      {
        gvk: GVK_QUOTA,
        labelSelector: TENANT_SELECTOR,
        // Its own quota only: the PeerTenant controller's quotas share the cache, and waking this controller
        // on each of their status counts would read nothing it uses.
        map: (obj) => {
          const tenant = obj.metadata?.labels?.[TENANT_LABEL];
          return tenant && obj.metadata?.name === VENDING_QUOTA_NAME ? [tenant] : [];
        },
      },
    ],
    // The namespaces come from the tenant's status, so a change of status.namespaces matters here (this
    // controller never writes the PeerTenant, so there is no loop); the PeerTenant controller's other
    // status writes (conditions, quota usage) do not, and 1000 tenants turning Ready at once would
    // otherwise mean 1000 reconciles that change nothing.
    predicate: (old, obj) => specOrMetadataChanged(old, obj) || !sameNamespaces(old, obj),
    async reconcile(_req, ctx) {
      const cached = ctx.object<Obj>();
      if (!cached || cached.metadata?.deletionTimestamp) return undefined;
      // The status is read from `cached` below: the parse (a copy) gets only what it validates.
      const parsed = PeerTenant.schema.safeParse({ ...cached, status: undefined });
      if (!parsed.success) return undefined; // the PeerTenant controller reports the invalid spec
      const t = parsed.data;
      // The namespaces the PeerTenant controller has made this tenant's, as its status lists them.
      const namespaces = (cached.status as { namespaces?: string[] } | undefined)?.namespaces ?? [];
      let waiting = false;
      for (const ns of namespaces) {
        const desired = {
          ...GVK_QUOTA,
          metadata: {
            name: VENDING_QUOTA_NAME,
            namespace: ns,
            labels: managedLabels(t.metadata.name),
            ownerReferences: [controllerReference(cached)],
          },
          spec: { hard: vendingQuotaHard(t.spec.vending) },
        } as Obj;
        const current = ctx.cache.get<Obj>(GVK_QUOTA, { namespace: ns, name: VENDING_QUOTA_NAME });
        if (current && (await remakeIfNeverCounted(ctx, current))) {
          waiting = true;
          continue;
        }
        await ensureObject(ctx, desired, current);
        if (!current || !counted(current)) waiting = true;
      }
      // A namespace released or no longer listed keeps no cap of ours.
      for (const q of ctx.cache.list(GVK_QUOTA)) {
        const ns = q.metadata?.namespace ?? "";
        if (
          q.metadata?.name !== VENDING_QUOTA_NAME ||
          q.metadata?.labels?.[TENANT_LABEL] !== t.metadata.name
        ) {
          continue;
        }
        if (!namespaces.includes(ns)) {
          await ctx.client.delete(
            GVK_QUOTA,
            { namespace: ns, name: VENDING_QUOTA_NAME },
            { ignoreNotFound: true },
          );
        }
      }
      return waiting ? { requeueAfter: 5_000 } : undefined;
    },
  };
}

function counted(quota: Obj): boolean {
  const used = (quota.status as { used?: Record<string, string> } | undefined)?.used;
  return used?.[APPVENDING_COUNT] !== undefined;
}

/**
 * Until kube-controller-manager has counted AppVendings into the quota's status, quota admission refuses
 * every AppVending ("status unknown for quota"). Its quota controller watches a CRD's objects only from
 * its next discovery (every 30 s) and recounts an existing quota only when its spec.hard changes, an
 * AppVending changes, or at its full resync (5 min by default). A quota made right after our CRD was
 * installed (a fresh install, a test) would block vending for minutes; made again once the CRD is
 * watched, it is counted at once. Between delete and create the AppVending controller's own count still
 * holds every limit.
 */
async function remakeIfNeverCounted(ctx: ReconcileContext, quota: Obj): Promise<boolean> {
  if (counted(quota)) return false;
  const age = Date.now() - Date.parse(quota.metadata?.creationTimestamp ?? "");
  if (!(age > UNCOUNTED_GRACE_MS)) return false;
  await ctx.client.delete(
    GVK_QUOTA,
    { namespace: quota.metadata?.namespace as string, name: VENDING_QUOTA_NAME },
    { ignoreNotFound: true },
  );
  return true;
}
