// The AppVending reconciler: checks where it is and what its tenant allows, then converges each part
// (Bucket, Database, OIDCClient, App, Route) and mirrors what the provider (or Knative) reports about it
// into one Condition per part. Managed resources and Knative objects are read fresh, not cached: their
// CRDs belong to Crossplane's providers and Knative and may be missing or arrive after the operator
// starts, so the reconcile polls (a few seconds while anything is pending, a minute once Ready).
import { AppVending } from "../../crds/app-vending.ts";
import { PeerTenant } from "../../crds/peer-tenant.ts";
import {
  ApiError,
  addFinalizer,
  type Condition,
  type ControllerSpec,
  type GroupVersionKind,
  hasFinalizer,
  isAlreadyExists,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
  removeFinalizer,
  setCondition,
  specOrMetadataChanged,
} from "../../runtime/index.ts";
import { MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL } from "../peer-tenant/labels.ts";
import { ensureObject } from "../shared/ensure.ts";
import { connectionSecretWait, requiredKeys, secretNameOf } from "./connection-secret.ts";
import {
  APP_VENDING_LABEL,
  DEFAULT_PLATFORM,
  desiredBucket,
  desiredDatabase,
  desiredDomainMapping,
  desiredKnativeService,
  desiredOidcClient,
  GVK,
  type VendingPlatform,
} from "./desired.ts";
import { desiredVendingGuardrails, VENDING_POLICY_NAMES } from "./guardrails.ts";
import { type LimitedPart, partsOverLimit } from "./limits.ts";
import { hostnameClaimName, managedName } from "./names.ts";
import { ensurePasswordSecret, foreignPasswordSecret } from "./password-secret.ts";

export const FINALIZER = "homelab.shdr.ch/appvending";
const GUARDRAILS_KEY = "__vending-guardrails__";
const PENDING_REQUEUE_MS = 3_000;
const READY_REQUEUE_MS = 60_000;

export interface AppVendingControllerOptions {
  /** The operator's namespace: hostname claims (Leases) live here, and AppVendings are allowed here. */
  operatorNamespace: string;
  operatorUsernames: string[];
  /** Further non-tenant namespaces where admins may vend (no tenant limits apply there). */
  adminNamespaces?: string[];
  /** Namespaces of Crossplane's providers and Knative, whose service accounts manage the guarded kinds. */
  controllerNamespaces?: string[];
  platform?: VendingPlatform;
}

type Obj = KubeObject & Record<string, unknown>;
type Part = "Bucket" | "Database" | "OIDCClient" | "App" | "Route";
const PARTS: Part[] = ["Bucket", "Database", "OIDCClient", "App", "Route"];
interface PartState {
  status: "True" | "False";
  reason: string;
  message: string;
}
/** Reasons of a part that is on its way, not failing: no Warning event for them. */
const WAITING = new Set(["Creating", "Waiting", "Pending", "Unknown", "ConnectionSecretPending"]);

/** Knative Service names: DNS-1035 labels short enough for the revision suffix (-00001). */
const KNATIVE_NAME = /^(?=.{1,57}$)[a-z]([-a-z0-9]*[a-z0-9])?$/;
const GVK_VAP = { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy" };
const GVK_VAPB = { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding" };
const GVK_NS = { apiVersion: "v1", kind: "Namespace" };
const GVK_TENANT = { apiVersion: PeerTenant.apiVersion, kind: PeerTenant.kind };

export function appVendingController(opts: AppVendingControllerOptions): ControllerSpec {
  const platform = opts.platform ?? DEFAULT_PLATFORM;
  const adminNamespaces = [opts.operatorNamespace, ...(opts.adminNamespaces ?? [])];
  const guardrails = desiredVendingGuardrails({
    adminNamespaces,
    operatorUsernames: opts.operatorUsernames,
    controllerNamespaces: opts.controllerNamespaces ?? ["crossplane-system", "knative-serving"],
  });
  return {
    name: "appvending",
    for: GVK.appVending,
    watches: [
      { gvk: GVK_VAP, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`, map: () => [GUARDRAILS_KEY] },
      { gvk: GVK_VAPB, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`, map: () => [GUARDRAILS_KEY] },
      // Any AppVending event also makes sure the guardrails are there (coalesced under one key).
      { gvk: GVK.appVending, map: () => [GUARDRAILS_KEY] },
    ],
    maxConcurrentReconciles: 4,
    predicate: specOrMetadataChanged,
    async reconcile(req, ctx) {
      if (req.name === GUARDRAILS_KEY) {
        // Compared with the cache first: every AppVending event lands here, most change nothing.
        for (const g of guardrails as Obj[]) {
          const gvk = { apiVersion: g.apiVersion as string, kind: g.kind as string };
          await ensureObject(ctx, g, ctx.cache.get(gvk, { name: g.metadata?.name as string }));
        }
        return undefined;
      }
      const cached = ctx.object<Obj>();
      if (!cached) return undefined;
      const parsed = AppVending.schema.safeParse(cached);
      if (!parsed.success) {
        const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        await writeStatus(ctx, cached, { Ready: { status: "False", reason: "InvalidSpec", message } });
        return undefined;
      }
      const av = parsed.data;
      if (av.metadata.deletionTimestamp) return reconcileDelete(ctx, cached, opts.operatorNamespace);
      if (!hasFinalizer(cached, FINALIZER)) await addFinalizer(ctx.client, cached, FINALIZER);
      try {
        return await reconcileParts(ctx, cached, av, { ...opts, platform, adminNamespaces });
      } catch (err) {
        // Shown where users look, then retried with backoff by the runtime. Best effort.
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 1024);
        await writeStatus(ctx, cached, {
          Ready: { status: "False", reason: "ReconcileFailed", message },
        }).catch((statusErr: unknown) =>
          ctx.logger.warn({ err: statusErr }, "Could not report the failure in status"),
        );
        throw err;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------

interface Where {
  /** The PeerTenant whose namespace this is; undefined in an admin namespace. */
  tenant?: PeerTenant & { raw: Obj };
}

async function locate(
  ctx: ReconcileContext,
  namespace: string,
  adminNamespaces: string[],
): Promise<Where | string> {
  const ns = await ctx.client.getOrUndefined(GVK_NS, { name: namespace });
  const tenantName = ns?.metadata?.labels?.[TENANT_LABEL];
  if (!tenantName) {
    return adminNamespaces.includes(namespace)
      ? {}
      : `namespace ${namespace} belongs to no PeerTenant and is not an admin namespace`;
  }
  const raw = await ctx.client.getOrUndefined<Obj>(GVK_TENANT, { name: tenantName });
  const tenant = raw ? PeerTenant.schema.safeParse(raw) : undefined;
  if (!raw || !tenant?.success) return `the namespace's PeerTenant ${tenantName} cannot be read`;
  return { tenant: { ...tenant.data, raw } };
}

interface Settings extends AppVendingControllerOptions {
  platform: VendingPlatform;
  adminNamespaces: string[];
}

async function reconcileParts(
  ctx: ReconcileContext,
  cached: Obj,
  av: AppVending,
  settings: Settings,
): Promise<ReconcileResult> {
  const namespace = av.metadata.namespace as string;
  const where = await locate(ctx, namespace, settings.adminNamespaces);
  if (typeof where === "string") {
    await writeStatus(ctx, cached, {
      Ready: { status: "False", reason: "NotInTenantNamespace", message: where },
    });
    await ctx.recorder.record(cached, {
      type: "Warning",
      reason: "NotInTenantNamespace",
      action: "Validate",
      note: where,
    });
    return { requeueAfter: READY_REQUEUE_MS };
  }
  const over = where.tenant ? await partsOverLimit(ctx, av, where.tenant) : new Map<LimitedPart, string>();
  const states: Partial<Record<Part, PartState>> = {};
  const p = settings.platform;

  const converge = async (part: Part, requested: boolean, desired: Obj[]) => {
    if (!requested) return;
    const limit = over.get(part as LimitedPart);
    if (limit) {
      states[part] = { status: "False", reason: "LimitExceeded", message: limit };
      return;
    }
    // The Role's passwordSecretRef may only ever point at the operator's own password Secret. Under
    // Retain it is made before the Role, so the provider never looks for it in vain; under Delete the
    // Role is its owner and must exist first (the provider then waits for it briefly, Synced=False).
    const database = part === "Database";
    const ownedByRole = database && av.spec.deletionPolicy === "Delete";
    const taken = database ? await foreignPasswordSecret(ctx, av) : undefined;
    const early =
      database && !ownedByRole ? await ensurePasswordSecret(ctx, av, await liveRole(ctx, av)) : undefined;
    if (taken || early) {
      states[part] = (taken ?? early) as PartState;
      return;
    }
    const { state, applied } = await applyAndMirror(ctx, cached, desired);
    states[part] = state;
    const role = applied.find((o) => o.kind === GVK.role.kind);
    const late = ownedByRole && role ? await ensurePasswordSecret(ctx, av, role) : undefined;
    if (late) states[part] = late;
    // The Bucket's Secret is empty by design (S3_* come as env values); the others carry credentials.
    if (state.status !== "True" || (part !== "Database" && part !== "OIDCClient")) return;
    const publisher = applied.find((o) => o.metadata?.name && (o.spec as Obj)?.writeConnectionSecretToRef);
    if (!publisher) return;
    const wait = await connectionSecretWait(ctx, publisher, secretNameOf(av, part), requiredKeys(av, part));
    if (wait) states[part] = wait;
  };
  await converge("Bucket", !!av.spec.bucket, desiredBucket(av, cached, p));
  await converge("Database", !!av.spec.database, desiredDatabase(av, cached, p));
  await converge("OIDCClient", !!av.spec.oidcClient, desiredOidcClient(av, cached, p));
  if (av.spec.app && !KNATIVE_NAME.test(av.metadata.name)) {
    states.App = {
      status: "False",
      reason: "InvalidName",
      message:
        "an AppVending with an app needs a name Knative accepts for a Service: a DNS-1035 label of at most 57 characters",
    };
  } else {
    await converge("App", !!av.spec.app, desiredKnativeService(av, cached, p));
  }

  let url: string | undefined;
  if (av.spec.app && states.App?.reason !== "LimitExceeded" && states.App?.reason !== "InvalidName") {
    const route = await convergeRoute(ctx, cached, av, where, settings.operatorNamespace);
    states.Route = route.state;
    url = route.url;
  }
  const requested = PARTS.filter((part) => states[part]);
  const notReady = requested.filter((part) => states[part]?.status !== "True");
  const ready: PartState =
    notReady.length === 0
      ? { status: "True", reason: "Ready", message: `ready: ${requested.join(", ")}` }
      : {
          status: "False",
          reason: states[notReady[0] as Part]?.reason ?? "NotReady",
          message: notReady.map((part) => `${part}: ${states[part]?.message}`).join("; "),
        };
  await reportTransitions(ctx, cached, states);
  await writeStatus(
    ctx,
    cached,
    { ...states, Ready: ready },
    {
      url,
      tenant: where.tenant?.metadata.name,
      connectionSecrets: secretStatus(av, states),
    },
  );
  return { requeueAfter: ready.status === "True" ? READY_REQUEUE_MS : PENDING_REQUEUE_MS };
}

function secretStatus(av: AppVending, states: Partial<Record<Part, PartState>>) {
  const names = {
    bucket:
      states.Bucket?.status === "True"
        ? (av.spec.connectionSecrets?.bucket ?? `${av.metadata.name}-s3`)
        : undefined,
    database:
      states.Database?.status === "True"
        ? (av.spec.connectionSecrets?.database ?? `${av.metadata.name}-db`)
        : undefined,
    oidcClient:
      states.OIDCClient?.status === "True"
        ? (av.spec.connectionSecrets?.oidcClient ?? `${av.metadata.name}-oidc`)
        : undefined,
  };
  const set = Object.fromEntries(Object.entries(names).filter(([, v]) => v !== undefined));
  return Object.keys(set).length > 0 ? set : undefined;
}

/** The AppVending's Role MR as it is now, if its provider's CRD is served and it exists. */
async function liveRole(ctx: ReconcileContext, av: AppVending): Promise<KubeObject | undefined> {
  if (!(await served(ctx, GVK.role))) return undefined;
  const key = { namespace: av.metadata.namespace as string, name: managedName(av.metadata.name) };
  return ctx.client.getOrUndefined(GVK.role, key);
}

function controlledBy(obj: KubeObject, owner: Obj): boolean {
  return (obj.metadata?.ownerReferences ?? []).some((r) => r.controller && r.uid === owner.metadata?.uid);
}

/** Server-side applies each object (refusing to take over one this AppVending does not control). */
async function applyAndMirror(
  ctx: ReconcileContext,
  owner: Obj,
  desired: Obj[],
): Promise<{ state: PartState; applied: Obj[] }> {
  const applied: Obj[] = [];
  for (const d of desired) {
    const gvk = { apiVersion: d.apiVersion as string, kind: d.kind as string };
    const key = { namespace: d.metadata?.namespace as string, name: d.metadata?.name as string };
    if (!(await served(ctx, gvk))) {
      const message = `${gvk.kind} (${gvk.apiVersion}) is not served: its provider is not installed`;
      return { state: { status: "False", reason: "ProviderNotInstalled", message }, applied };
    }
    const existing = await ctx.client.getOrUndefined<Obj>(gvk, key);
    if (existing && !controlledBy(existing, owner)) {
      const message = `${gvk.kind} ${key.name} exists and is not this AppVending's; it was left untouched`;
      return { state: { status: "False", reason: "NameConflict", message }, applied };
    }
    applied.push(await ctx.client.apply(d));
  }
  return { state: mirror(applied), applied };
}

/** Whether the API server serves a kind; a CRD installed later is found (discovery is re-read). */
async function served(ctx: ReconcileContext, gvk: GroupVersionKind): Promise<boolean> {
  try {
    await ctx.client.resourceInfo(gvk);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code !== 404) throw err;
    return false;
  }
}

/** One state for a part's objects: the first that is not Synced or not Ready decides, with its message. */
export function mirror(objs: Obj[]): PartState {
  for (const o of objs) {
    const conds = ((o.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];
    const what = `${o.kind} ${o.metadata?.name}`;
    const synced = conds.find((c) => c.type === "Synced");
    if (synced?.status === "False") {
      return {
        status: "False",
        reason: synced.reason || "ReconcileError",
        message: `${what}: ${synced.message || "not synced"}`,
      };
    }
    const ready = conds.find((c) => c.type === "Ready");
    if (ready?.status !== "True") {
      const reason = ready?.reason || "Creating";
      return {
        status: "False",
        reason: ready?.status === "Unknown" && !ready.reason ? "Unknown" : reason,
        message: `${what}: ${ready?.message || "waiting for its controller to report Ready"}`,
      };
    }
  }
  return {
    status: "True",
    reason: "Available",
    message: objs.map((o) => `${o.kind} ${o.metadata?.name}`).join(", "),
  };
}

/** Whether `host` is `domain` or lies below it. */
export function withinDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

/** Why `host` may not be used by this tenant, or undefined when it may. */
async function hostnameRefusal(
  ctx: ReconcileContext,
  host: string,
  where: Where,
): Promise<string | undefined> {
  if (!where.tenant) return undefined; // an admin namespace: the admins' own call
  const own = where.tenant.metadata.name;
  const allowed = [...where.tenant.spec.vending.allowedDomains, ...hostnameDomainOf(where.tenant.raw)];
  if (!allowed.some((d) => withinDomain(host, d))) {
    return `hostname ${host} is not within the tenant's allowed domains (${allowed.join(", ")})`;
  }
  // A name inside another tenant's own domain is theirs even where both share a parent domain.
  const tenants = await ctx.client.list<Obj>(GVK_TENANT);
  for (const t of tenants.items) {
    if (t.metadata?.name === own) continue;
    for (const d of hostnameDomainOf(t)) {
      if (
        withinDomain(host, d) &&
        !hostnameDomainOf(where.tenant.raw).some((mine) => withinDomain(mine, d))
      ) {
        return `hostname ${host} lies in another tenant's domain`;
      }
    }
  }
  return undefined;
}

/** PeerTenant `spec.hostnameDomain` (added by the PeerTenant work), read raw so both schemas work. */
function hostnameDomainOf(tenant: Obj): string[] {
  const d = (tenant.spec as { hostnameDomain?: unknown } | undefined)?.hostnameDomain;
  return typeof d === "string" && d ? [d] : [];
}

/**
 * Claims `host` for this AppVending, cluster-wide, with a Lease named after the host in the operator's
 * namespace: creating it is atomic, so of two AppVendings asking at once exactly one wins. DomainMapping
 * names are only unique per namespace, so they cannot be the claim themselves.
 */
async function claimHostname(
  ctx: ReconcileContext,
  owner: Obj,
  host: string,
  operatorNamespace: string,
): Promise<boolean> {
  const holder = holderOf(owner);
  const key = { namespace: operatorNamespace, name: hostnameClaimName(host) };
  let lease = await ctx.client.getOrUndefined<Obj>(GVK.lease, key);
  if (!lease) {
    try {
      lease = await ctx.client.create<Obj>({
        ...GVK.lease,
        metadata: { ...key, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
        spec: { holderIdentity: holder },
      } as Obj);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      lease = await ctx.client.get<Obj>(GVK.lease, key);
    }
  }
  return (lease.spec as { holderIdentity?: string }).holderIdentity === holder;
}

/** Identity of an AppVending in its hostname claim: namespace, name and uid (a re-created one re-claims). */
function holderOf(av: KubeObject): string {
  return `${av.metadata?.namespace}/${av.metadata?.name}/${av.metadata?.uid}`;
}

async function releaseHostnames(ctx: ReconcileContext, av: Obj, operatorNamespace: string): Promise<void> {
  const leases = await ctx.client.list<Obj>(GVK.lease, {
    namespace: operatorNamespace,
    labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
  });
  for (const l of leases.items) {
    if ((l.spec as { holderIdentity?: string }).holderIdentity !== holderOf(av)) continue;
    await ctx.client.delete(
      GVK.lease,
      { namespace: operatorNamespace, name: l.metadata?.name as string },
      { ignoreNotFound: true },
    );
  }
}

async function convergeRoute(
  ctx: ReconcileContext,
  owner: Obj,
  av: AppVending,
  where: Where,
  operatorNamespace: string,
): Promise<{ state: PartState; url?: string }> {
  const ksvc = await ctx.client
    .getOrUndefined<Obj>(GVK.knativeService, {
      namespace: av.metadata.namespace as string,
      name: av.metadata.name,
    })
    .catch(() => undefined);
  const ksvcUrl = (ksvc?.status as { url?: string } | undefined)?.url;
  const host = av.spec.app?.hostname;
  if (!host) {
    // Knative's own route at <name>.<namespace>.<domain>, through the Gateway net-gateway-api is set to.
    const state = ksvc
      ? routesReady(ksvc)
      : { status: "False" as const, reason: "Waiting", message: "waiting for the app" };
    return { state, ...(ksvcUrl ? { url: ksvcUrl } : {}) };
  }
  const refusal = await hostnameRefusal(ctx, host, where);
  if (refusal) return { state: { status: "False", reason: "HostnameNotAllowed", message: refusal } };
  if (!(await claimHostname(ctx, owner, host, operatorNamespace))) {
    return {
      state: {
        status: "False",
        reason: "HostnameTaken",
        message: `hostname ${host} is already claimed by another app`,
      },
    };
  }
  const { state } = await applyAndMirror(ctx, owner, desiredDomainMapping(av, owner));
  const dm = await ctx.client
    .getOrUndefined<Obj>(GVK.domainMapping, { namespace: av.metadata.namespace as string, name: host })
    .catch(() => undefined);
  const url = (dm?.status as { url?: string } | undefined)?.url;
  return { state, ...(url ? { url } : {}) };
}

function routesReady(ksvc: Obj): PartState {
  const conds = ((ksvc.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];
  const routes = conds.find((c) => c.type === "RoutesReady");
  if (routes?.status === "True")
    return { status: "True", reason: "RoutesReady", message: "served at Knative's route" };
  return {
    status: "False",
    reason: routes?.reason || "Waiting",
    message: `Service ${ksvc.metadata?.name}: ${routes?.message || "waiting for its route"}`,
  };
}

async function reportTransitions(
  ctx: ReconcileContext,
  cached: Obj,
  states: Partial<Record<Part, PartState>>,
): Promise<void> {
  const before = ((cached.status as { conditions?: Condition[] } | undefined)?.conditions ??
    []) as Condition[];
  for (const part of PARTS) {
    const now = states[part];
    if (!now) continue;
    const prev = before.find((c) => c.type === part);
    if (prev?.status === now.status && prev.reason === now.reason) continue;
    if (now.status === "True") {
      await ctx.recorder.record(cached, {
        type: "Normal",
        reason: `${part}Ready`,
        action: "Reconcile",
        note: now.message,
      });
    } else if (!WAITING.has(now.reason)) {
      await ctx.recorder.record(cached, {
        type: "Warning",
        reason: `${part}Failed`,
        action: "Reconcile",
        note: `${now.reason}: ${now.message}`.slice(0, 1024),
      });
    }
  }
}

/** Writes the status with server-side apply (the operator's field manager), only when it changed. */
async function writeStatus(
  ctx: ReconcileContext,
  cached: Obj,
  conditions: Partial<Record<Part | "Ready", PartState>>,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const generation = cached.metadata?.generation ?? 0;
  const current = (cached.status ?? {}) as { conditions?: Condition[] } & Record<string, unknown>;
  let next = current.conditions ?? [];
  for (const [type, s] of Object.entries(conditions)) {
    if (s)
      next = setCondition(next, {
        type,
        ...s,
        message: s.message.slice(0, 1024),
        observedGeneration: generation,
      });
  }
  // A full reconcile drops the conditions of parts no longer requested; a failure report keeps the rest
  // of the status as it was (server-side apply would otherwise remove the fields it leaves out).
  const full = "Ready" in conditions && Object.keys(conditions).length > 1;
  if (full) next = next.filter((c) => c.type === "Ready" || c.type in conditions);
  const kept = full
    ? {}
    : { url: current.url, tenant: current.tenant, connectionSecrets: current.connectionSecrets };
  const status: Record<string, unknown> = { observedGeneration: generation, conditions: next };
  for (const [k, v] of Object.entries({ ...kept, ...extra })) if (v !== undefined) status[k] = v;
  if (JSON.stringify(status) === JSON.stringify(current)) return;
  await ctx.client.applyStatus({
    apiVersion: cached.apiVersion,
    kind: cached.kind,
    metadata: { name: cached.metadata?.name, namespace: cached.metadata?.namespace },
    status,
  } as Obj);
}

/** Every kind an AppVending may have made, in the order they go: the route, the app, then the data. */
const OWNED_KINDS: GroupVersionKind[] = [
  GVK.domainMapping,
  GVK.knativeService,
  GVK.oidcClient,
  GVK.bucketAcl,
  GVK.bucket,
  GVK.database,
  GVK.role,
];

/**
 * Deletes what the AppVending made. The bucket's and the database's MRs go too, but under Retain their
 * managementPolicies lack Delete, so the provider orphans the external bucket and database: the data
 * stays, and an AppVending of the same name and namespace adopts it again (same external names).
 */
async function reconcileDelete(
  ctx: ReconcileContext,
  cached: Obj,
  operatorNamespace: string,
): Promise<ReconcileResult> {
  if (!hasFinalizer(cached, FINALIZER)) return undefined;
  const namespace = cached.metadata?.namespace as string;
  for (const gvk of OWNED_KINDS) {
    if (!(await served(ctx, gvk))) continue;
    const { items } = await ctx.client.list<Obj>(gvk, {
      namespace,
      labelSelector: `${APP_VENDING_LABEL}=${managedName(cached.metadata?.name as string)}`,
    });
    for (const o of items) {
      if (!controlledBy(o, cached)) continue;
      await ctx.client.delete(gvk, { namespace, name: o.metadata?.name as string }, { ignoreNotFound: true });
    }
  }
  await releaseHostnames(ctx, cached, operatorNamespace);
  const policy = (cached.spec as { deletionPolicy?: string }).deletionPolicy ?? "Retain";
  await ctx.recorder.record(cached, {
    type: "Normal",
    reason: policy === "Delete" ? "Deleted" : "DataRetained",
    action: "Delete",
    note:
      policy === "Delete"
        ? "deleted the app, its route, and the bucket and database with their data"
        : "deleted the app and its route; the bucket and database are kept by their providers (deletionPolicy Retain)",
  });
  await removeFinalizer(ctx.client, cached, FINALIZER);
  return undefined;
}

export { VENDING_POLICY_NAMES };
