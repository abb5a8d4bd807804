// The PeerTenant reconciler. Reads top to bottom as its phases; each phase sets its own Condition and
// the status is written once at the end. Everything it needs to know is in the cache or the spec, so a
// crash at any line converges on restart.

import { stringify } from "yaml";
import { PeerTenant, type PeerTenantStatus } from "../../crds/peer-tenant.ts";
import {
  ApiError,
  addFinalizer,
  type Condition,
  type ConditionInput,
  type ControllerSpec,
  controllerReference,
  deleteExactly,
  type GroupVersionKind,
  hasFinalizer,
  isNotFound,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
  removeFinalizer,
  specOrMetadataChanged,
} from "../../runtime/index.ts";
import { type EnsureOutcome, ensureObject } from "../shared/ensure.ts";
import { PAUSED_ANNOTATION } from "../shared/paused.ts";
import { parseQuantity, sumResources } from "../shared/quantity.ts";
import { DEFAULT_TENANT_DEFAULTS, type TenantDefaults } from "./defaults.ts";
import {
  clusterwidePolicyName,
  desiredCiliumClusterwidePolicy,
  desiredCiliumGatewayPolicy,
  desiredGitlabRoleBinding,
  desiredGuardrailParams,
  desiredLimitRange,
  desiredNamespace,
  desiredNetworkPolicies,
  desiredOwnerRoleBinding,
  desiredResourceQuota,
  effectivePerNamespace,
  gitlabCiAccess,
  type OwnerNaming,
  quotaDemand,
  splitTenantQuota,
  tenantNamespaces,
} from "./desired.ts";
import { detectPolicyEnforcement, type PolicyEnforcement } from "./enforcement.ts";
import { ensureExactly } from "./exact.ts";
import {
  CONSTRAINT_API_VERSION,
  desiredConstraintTemplates,
  desiredRequiredLabelsConstraint,
  desiredServiceTypesConstraint,
  REQUIRED_LABELS_KIND,
  SERVICE_TYPES_KIND,
  TEMPLATE_GVK,
} from "./gatekeeper.ts";
import { desiredGuardrailPolicies, POLICY_NAMES } from "./guardrails.ts";
import {
  MANAGED_BY,
  MANAGED_BY_LABEL,
  OBJECT_NAMES,
  RELEASED_LABEL,
  TENANT_LABEL,
  TENANT_SELECTOR,
} from "./labels.ts";
import { desiredReleasedObjects, releasedNamespaceLabels, tenantBindingsToRemove } from "./release.ts";

export const FINALIZER = "homelab.shdr.ch/peertenant";
/** Reconcile keys that are not tenant names (tenant names are DNS labels, these cannot collide). */
export const GUARDRAILS_KEY = "__guardrails__";
export const GITLAB_CI_ACCESS_KEY = "__gitlab-ci-access__";
export const GITLAB_CI_ACCESS_CONFIGMAP = "homelab-gitlab-ci-access";
const COMPONENT_LABEL = "homelab.shdr.ch/component";

export const GVK = {
  tenant: { apiVersion: PeerTenant.apiVersion, kind: PeerTenant.kind },
  namespace: { apiVersion: "v1", kind: "Namespace" },
  quota: { apiVersion: "v1", kind: "ResourceQuota" },
  limitRange: { apiVersion: "v1", kind: "LimitRange" },
  configMap: { apiVersion: "v1", kind: "ConfigMap" },
  networkPolicy: { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
  roleBinding: { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" },
  vap: { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy" },
  vapBinding: { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding" },
  ciliumPolicy: { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" },
  ciliumClusterwidePolicy: { apiVersion: "cilium.io/v2", kind: "CiliumClusterwideNetworkPolicy" },
  event: { apiVersion: "v1", kind: "Event" },
} satisfies Record<string, GroupVersionKind>;

export interface PeerTenantControllerOptions {
  /** Namespace of the operator, where the GitLab agent ci_access ConfigMap is published. */
  operatorNamespace: string;
  /** Identities allowed past the managed-objects guardrail besides cluster admins (the operator's own). */
  operatorUsernames: string[];
  /** Whether the cilium.io CRDs exist, asked at each reconcile (discovery is cached by the client). */
  hasCilium?: (ctx: ReconcileContext) => Promise<boolean>;
  /** Tenants reconciled at once (default 8); one tenant is still never reconciled twice at once. */
  maxConcurrentReconciles?: number;
  /** Operator-wide settings for what a tenant's spec leaves out (quota, container limits, PVC size, ...). */
  defaults?: Partial<TenantDefaults>;
  /**
   * Cilium's CRDs were served when the operator started: its policies are then watched like the other
   * owned objects (a watch of a kind that is not served would never sync). Without it they are checked
   * at each reconcile only.
   */
  watchCilium?: boolean;
  /** How the cluster's authentication names owners (kube-apiserver's username and groups prefixes). */
  ownerNaming?: OwnerNaming;
  /** Which CNI enforces NetworkPolicy; default: look for a known CNI's ready DaemonSet in kube-system. */
  policyEnforcement?: (ctx: ReconcileContext) => Promise<PolicyEnforcement>;
}

/** At most one GitLab ci_access pass (a read of every tenant) per this interval. */
const GITLAB_PASS_INTERVAL_MS = 2_000;

/** How often Gatekeeper's templates and constraints are compared again (they cannot be watched). */
export const GATEKEEPER_RECHECK_MS = 60_000;

/** How long a quota-exceeded event counts as a namespace asking for more headroom. */
export const QUOTA_DEMAND_WINDOW_MS = 5 * 60_000;

type Tenant = PeerTenant;
type Obj = KubeObject & Record<string, unknown>;

const managedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
const tenantSelector = TENANT_SELECTOR;

function tenantOf(obj: KubeObject): string[] {
  const t = obj.metadata?.labels?.[TENANT_LABEL];
  return t ? [t] : [];
}

export function peerTenantController(opts: PeerTenantControllerOptions): ControllerSpec {
  const hasCilium = opts.hasCilium ?? ((ctx: ReconcileContext) => served(ctx, GVK.ciliumPolicy));
  const settings: Settings = {
    opts,
    defaults: { ...DEFAULT_TENANT_DEFAULTS, ...opts.defaults },
    ownerNaming: opts.ownerNaming ?? {},
    hasCilium,
    policyEnforcement: opts.policyEnforcement ?? detectPolicyEnforcement,
    // Which tenant a namespace belongs to, learnt by reconciles, so an Event (which names only a
    // namespace) finds its tenant. A restart starts empty: every tenant is reconciled then anyway.
    tenantByNamespace: new Map(),
    enforcementSeen: new Map(),
    gitlabPassAt: 0,
  };
  const tenantScoped = (gvk: GroupVersionKind) => ({ gvk, labelSelector: tenantSelector, map: tenantOf });
  return {
    name: "peertenant",
    for: GVK.tenant,
    // Only names, labels, annotations and deletion timestamps of Namespaces are read: cache their metadata.
    owns: [{ ...GVK.namespace, ownerLabel: TENANT_LABEL, metadataOnly: true }],
    watches: [
      {
        // Only the tenant's own quota: the vending-quota controller's quota carries the tenant labels too
        // and is counted by kube-controller-manager in the same burst, but no phase here reads it.
        ...tenantScoped(GVK.quota),
        map: (obj) => (obj.metadata?.name === OBJECT_NAMES.quota ? tenantOf(obj) : []),
      },
      tenantScoped(GVK.limitRange),
      tenantScoped(GVK.networkPolicy),
      tenantScoped(GVK.roleBinding),
      ...(opts.watchCilium
        ? [tenantScoped(GVK.ciliumPolicy), tenantScoped(GVK.ciliumClusterwidePolicy)]
        : []),
      {
        // The API server's quota refusals, as the ReplicaSet, Job and StatefulSet controllers record
        // them: the signal that a namespace needs more of the tenant-wide headroom.
        gvk: GVK.event,
        fieldSelector: "reason=FailedCreate",
        map: (obj) => {
          const t = settings.tenantByNamespace.get(namespaceKey(undefined, obj.metadata?.namespace ?? ""));
          return t && isQuotaRefusal(obj) ? [t] : [];
        },
      },
      {
        gvk: GVK.configMap,
        labelSelector: managedSelector,
        map: (obj) =>
          obj.metadata?.labels?.[COMPONENT_LABEL] === "gitlab-ci-access"
            ? [GITLAB_CI_ACCESS_KEY]
            : tenantOf(obj),
      },
      // The cluster-wide guardrails and the GitLab ci_access list are reconciled under keys of their own,
      // so a burst of tenant changes coalesces into one pass over them instead of one per tenant.
      // Neither reads a tenant's status: without the predicate every status write of every tenant (1000
      // within seconds when a burst of them turns Ready) would rebuild the ci_access list from all tenants.
      {
        gvk: GVK.tenant,
        map: () => [GUARDRAILS_KEY, GITLAB_CI_ACCESS_KEY],
        predicate: specOrMetadataChanged,
      },
      { gvk: GVK.vap, labelSelector: managedSelector, map: () => [GUARDRAILS_KEY] },
      { gvk: GVK.vapBinding, labelSelector: managedSelector, map: () => [GUARDRAILS_KEY] },
    ],
    maxConcurrentReconciles: opts.maxConcurrentReconciles ?? 8,
    // Status-only updates of a PeerTenant are our own writes: they need no reconcile.
    predicate: specOrMetadataChanged,
    pausedAnnotation: PAUSED_ANNOTATION,
    async reconcile(req, ctx) {
      if (req.name === GUARDRAILS_KEY) return ensureGuardrails(ctx, opts, settings.defaults);
      if (req.name === GITLAB_CI_ACCESS_KEY) {
        // One pass reads and validates every tenant: a burst of tenant changes (a thousand created at
        // once) is folded into one pass per interval instead of one per change.
        const wait = settings.gitlabPassAt + GITLAB_PASS_INTERVAL_MS - Date.now();
        if (wait > 0) return { requeueAfter: wait };
        settings.gitlabPassAt = Date.now();
        return ensureGitlabCiAccess(ctx, opts);
      }
      try {
        return await reconcileTenant(ctx, settings);
      } catch (err) {
        await reportFailure(ctx, err);
        throw err; // retried with backoff by the runtime
      }
    },
  };
}

interface Settings {
  opts: PeerTenantControllerOptions;
  defaults: TenantDefaults;
  ownerNaming: OwnerNaming;
  hasCilium: (ctx: ReconcileContext) => Promise<boolean>;
  policyEnforcement: (ctx: ReconcileContext) => Promise<PolicyEnforcement>;
  /** The last look at each cluster's CNI ("" is this cluster), by clusterRef. */
  enforcementSeen: Map<string, { at: number; result: PolicyEnforcement }>;
  tenantByNamespace: Map<string, string>;
  /** When the last GitLab ci_access pass started (ms); in memory only, it spaces passes and decides nothing. */
  gitlabPassAt: number;
}

/** How long one look at a cluster's CNI is reused: it is the same answer for every tenant there. */
const ENFORCEMENT_TTL_MS = 30_000;

async function enforcementOf(scope: Scope): Promise<PolicyEnforcement> {
  const key = scope.tenant.spec.clusterRef ?? "";
  const seen = scope.settings.enforcementSeen.get(key);
  if (seen && Date.now() - seen.at < ENFORCEMENT_TTL_MS) return seen.result;
  const result = await scope.settings.policyEnforcement(scope.ctx);
  scope.settings.enforcementSeen.set(key, { at: Date.now(), result });
  return result;
}

/** Namespace names repeat across clusters: the tenant index keys them by cluster too. */
function namespaceKey(clusterRef: string | undefined, ns: string): string {
  return clusterRef ? `${clusterRef}|${ns}` : ns;
}

/**
 * The cluster a tenant's objects live in: this one, or (spec.clusterRef) the HomelabCluster's workload
 * cluster, reached with the kubeconfig Secret `<cluster>-kubeconfig` in the operator's namespace. Every
 * kind the phases read is watched there too, so drift in the workload cluster wakes the tenant as it
 * does here.
 */
async function targetCluster(
  ctx: ReconcileContext,
  t: Tenant,
  settings: Settings,
): Promise<{ ctx?: ReconcileContext; message: string }> {
  const ref = t.spec.clusterRef;
  if (!ref) return { ctx, message: "the operator's own cluster" };
  const cluster = { namespace: settings.opts.operatorNamespace, name: ref };
  const tenantsHere = () => [
    ...new Set([...settings.tenantByNamespace].filter(([k]) => k.startsWith(`${ref}|`)).map(([, v]) => v)),
  ];
  const watch = (
    name: string,
    gvk: GroupVersionKind,
    extra: Partial<Parameters<ReconcileContext["clusters"]["watch"]>[1]> = {},
  ) =>
    ctx.clusters.watch(
      cluster,
      { name: `peertenant/${name}`, gvk, owners: [t.metadata.name], map: tenantOf, ...extra },
      ctx.signal,
    );
  try {
    const accessor = await ctx.clusters.get(cluster, ctx.signal);
    await Promise.all([
      watch("namespaces", GVK.namespace, { metadataOnly: true }),
      watch("quotas", GVK.quota, { labelSelector: tenantSelector }),
      watch("limitranges", GVK.limitRange, { labelSelector: tenantSelector }),
      watch("networkpolicies", GVK.networkPolicy, { labelSelector: tenantSelector }),
      watch("rolebindings", GVK.roleBinding, { labelSelector: tenantSelector }),
      watch("configmaps", GVK.configMap, { labelSelector: tenantSelector }),
      watch("vaps", GVK.vap, { labelSelector: managedSelector, map: tenantsHere }),
      watch("vapbindings", GVK.vapBinding, { labelSelector: managedSelector, map: tenantsHere }),
      watch("events", GVK.event, {
        fieldSelector: "reason=FailedCreate",
        map: (obj) => {
          const tenant = settings.tenantByNamespace.get(namespaceKey(ref, obj.metadata?.namespace ?? ""));
          return tenant && isQuotaRefusal(obj) ? [tenant] : [];
        },
      }),
    ]);
    return {
      ctx: { ...ctx, client: accessor.client, cache: accessor.cache },
      message: `objects are in the workload cluster of HomelabCluster ${ref} (kubeconfig Secret ${cluster.namespace}/${ref}-kubeconfig)`,
    };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return {
      message: `cannot reach the workload cluster of HomelabCluster ${ref} (kubeconfig Secret ${cluster.namespace}/${ref}-kubeconfig): ${(err as Error).message}`,
    };
  }
}

function isQuotaRefusal(event: KubeObject): boolean {
  const message = (event as { message?: string }).message ?? "";
  return message.includes(`exceeded quota: ${OBJECT_NAMES.quota},`);
}

// ---------------------------------------------------------------------------------------------------

/** What one reconcile of one tenant works with: the parsed spec, the cached object, what it learns. */
interface Scope {
  ctx: ReconcileContext;
  /** The management cluster's context, where the PeerTenant itself lives (`ctx` unless clusterRef). */
  home: ReconcileContext;
  tenant: Tenant;
  /** The cached PeerTenant: owner of what is created, subject of its Events. */
  owner: Obj;
  status: StatusBuilder;
  changes: ChangeLog;
  /** Tenant namespaces that exist, belong to this tenant and are not terminating. */
  namespaces: string[];
  settings: Settings;
  requeue?: number | undefined;
  /** The objects live in a HomelabCluster's workload cluster (`ctx` is then that cluster's). */
  remote: boolean;
}

async function reconcileTenant(ctx: ReconcileContext, settings: Settings): Promise<ReconcileResult> {
  const cached = ctx.object<Obj>();
  if (!cached) return undefined;
  // The spec and metadata, validated and defaulted; not the status (read from `cached` where needed):
  // a parse copies everything it is given, on every reconcile.
  const parsed = PeerTenant.schema.safeParse({ ...cached, status: undefined });
  if (!parsed.success) {
    // The CRD's own validation should make this unreachable; if it happens, say so and stop retrying.
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await markNotReady(ctx, cached, "InvalidSpec", "Validate", message);
    return undefined;
  }
  const tenant = parsed.data;
  if (tenant.metadata.deletionTimestamp) {
    const target = await targetCluster(ctx, tenant, settings);
    // An unreachable workload cluster keeps the finalizer: its namespaces are still to be released.
    if (!target.ctx) throw new Error(target.message);
    return reconcileDelete(ctx, target.ctx, tenant, cached, settings);
  }
  if (!hasFinalizer(cached, FINALIZER)) await addFinalizer(ctx.client, cached, FINALIZER);

  const generation = tenant.metadata.generation ?? 0;
  const scope: Scope = {
    ctx,
    home: ctx,
    tenant,
    owner: cached,
    status: new StatusBuilder(generation),
    changes: new ChangeLog(),
    namespaces: [],
    settings,
    remote: false,
  };
  const target = await targetCluster(ctx, tenant, settings);
  if (!target.ctx) {
    scope.status.set("ClusterConnected", "False", "ClusterNotConnected", target.message);
    scope.requeue = 10_000;
  } else {
    if (tenant.spec.clusterRef) scope.status.set("ClusterConnected", "True", "Connected", target.message);
    scope.ctx = target.ctx;
    scope.remote = tenant.spec.clusterRef !== undefined;
    // A workload cluster has no operator of its own: its cluster-wide guardrails are kept from here.
    if (scope.remote) await ensureGuardrails(scope.ctx, settings.opts, settings.defaults);
    // The phases, in order: guardrails are in place and proven before anyone is given access.
    const { terminating } = await ensureNamespaces(scope);
    for (const ns of scope.namespaces) {
      settings.tenantByNamespace.set(namespaceKey(tenant.spec.clusterRef, ns), tenant.metadata.name);
    }
    await ensureGuardrailParams(scope);
    await ensureQuotas(scope);
    await ensureNetworkIsolation(scope, await settings.hasCilium(scope.ctx));
    const guardrails = await checkGuardrails(scope);
    await ensureAccess(scope, !guardrails.waiting);
    if (terminating) scope.requeue = 2_000;
    else if (guardrails.waiting) scope.requeue = 1_000;
  }

  const { status } = scope;
  const ready = status.allTrue();
  status.set(
    "Ready",
    ready ? "True" : "False",
    ready ? "TenantReady" : status.firstFalseReason(),
    status.summary(),
  );
  // Status lives in this cluster whatever the tenant's target: written through the management context.
  await ctx.writeStatus(cached, {
    fields: {
      observedGeneration: generation,
      namespaces: scope.namespaces,
      namespaceCount: scope.namespaces.length,
      quota: quotaStatus(scope.ctx, scope.namespaces),
    },
    conditions: status.inputs(),
  });
  await scope.changes.report(ctx, cached, wasSteady(cached, generation));
  // Phases that wait poll: a namespace still terminating, admission policies not yet enforced.
  return scope.requeue ? { requeueAfter: scope.requeue } : undefined;
}

/** The tenant was fully in place for this generation at the end of the previous reconcile. */
function wasSteady(cached: Obj, generation: number): boolean {
  const status = cached.status as { observedGeneration?: number; conditions?: Condition[] } | undefined;
  const ready = status?.conditions?.find((c) => c.type === "Ready");
  return status?.observedGeneration === generation && ready?.status === "True";
}

async function ensureNamespaces(scope: Scope): Promise<{ terminating: boolean }> {
  const { ctx, tenant: t, owner, status, changes } = scope;
  const wanted = tenantNamespaces(t);
  const conflicts: string[] = [];
  let terminating = false;
  for (const name of wanted) {
    const existing = ctx.cache.get(GVK.namespace, { name });
    const holder = existing?.metadata?.labels?.[TENANT_LABEL];
    const releasedBy = existing?.metadata?.labels?.[RELEASED_LABEL];
    if (existing && !holder && releasedBy && t.spec.namespaces.adopt.includes(name)) {
      // An explicit adopt of a namespace another tenant released: its release defaults make way for
      // this tenant's own guardrails, applied below like for any of its namespaces.
      for (const obj of desiredReleasedObjects(name, releasedBy)) {
        const gvk = { apiVersion: obj.apiVersion, kind: obj.kind };
        await ctx.client.delete(
          gvk,
          { namespace: name, name: obj.metadata.name as string },
          { ignoreNotFound: true },
        );
      }
      changes.note(ctx, "adopted", "Namespace", name);
    } else if (existing && holder !== t.metadata.name) {
      conflicts.push(
        `${name} (${
          holder
            ? `belongs to tenant ${holder}`
            : releasedBy
              ? `released by tenant ${releasedBy}; list it in namespaces.adopt to take it over`
              : "not created by a PeerTenant"
        })`,
      );
      continue;
    }
    if (existing?.metadata?.deletionTimestamp) {
      terminating = true;
      continue;
    }
    changes.note(ctx, await ensureObject(ctx, desiredNamespace(t, name), existing), "Namespace", name);
    scope.namespaces.push(name);
  }
  // Namespaces of this tenant that the spec no longer lists follow the deletion policy.
  for (const ns of ctx.cache.list(GVK.namespace)) {
    const name = ns.metadata?.name ?? "";
    if (ns.metadata?.labels?.[TENANT_LABEL] !== t.metadata.name || wanted.includes(name)) continue;
    if (ns.metadata?.deletionTimestamp) continue; // already on its way out
    await retireNamespace(ctx, scope.home, t, name, scope.settings);
    await ctx.recorder.record(owner, {
      type: "Normal",
      reason: t.spec.deletionPolicy === "Delete" ? "NamespaceDeleted" : "NamespaceReleased",
      action: "RemoveNamespace",
      note: `namespace ${name} is no longer listed (deletionPolicy ${t.spec.deletionPolicy})`,
    });
  }
  if (conflicts.length > 0) {
    const message = `namespace(s) exist but do not belong to this tenant, left untouched: ${conflicts.join(", ")}`;
    status.set("NamespacesReady", "False", "NamespaceConflict", message);
    await ctx.recorder.record(owner, {
      type: "Warning",
      reason: "NamespaceConflict",
      action: "Adopt",
      note: message,
    });
  } else if (terminating) {
    status.set(
      "NamespacesReady",
      "False",
      "NamespaceTerminating",
      "waiting for a namespace being deleted to go away",
    );
  } else {
    status.set("NamespacesReady", "True", "NamespacesReady", `${scope.namespaces.length} namespace(s) ready`);
  }
  return { terminating };
}

/** Owned objects inside tenant namespaces carry an ownerReference, so garbage collection follows the tenant. */
function owned(scope: Scope, obj: Record<string, unknown>): Obj {
  // In a workload cluster the PeerTenant does not exist: an ownerReference to it would have that
  // cluster's garbage collector delete the object at once. Labels trace it back instead.
  if (scope.remote) return obj as Obj;
  const meta = obj.metadata as Record<string, unknown>;
  return { ...obj, metadata: { ...meta, ownerReferences: [controllerReference(scope.owner)] } } as Obj;
}

/** Makes one owned object match `desired`, or removes it when `desired` is undefined. */
async function ensureOwned(
  scope: Scope,
  gvk: GroupVersionKind,
  ns: string,
  name: string,
  desired: Record<string, unknown> | undefined,
  updateOutcome?: string,
): Promise<void> {
  const { ctx, changes } = scope;
  const cached = ctx.cache.get(gvk, { namespace: ns, name });
  if (!desired) {
    if (cached) {
      await ctx.client.delete(gvk, { namespace: ns, name }, { ignoreNotFound: true });
      changes.note(ctx, "deleted", gvk.kind, `${ns}/${name}`);
    }
    return;
  }
  const outcome = await ensureExactly(ctx, owned(scope, desired), cached);
  changes.note(
    ctx,
    outcome === "updated" && updateOutcome ? updateOutcome : outcome,
    gvk.kind,
    `${ns}/${name}`,
  );
}

/**
 * What one reconcile changed, reported as a few summary Events at its end rather than one per object.
 * Whether a change is drift depends on the tenant having been fully in place for this generation before:
 * then anything created or updated was undone by hand, and is reported as DriftCorrected.
 */
class ChangeLog {
  private readonly entries = new Map<string, string[]>();
  note(ctx: ReconcileContext, outcome: string, kind: string, name: string): void {
    if (outcome === "unchanged") return;
    ctx.logger.info({ kind, object: name, outcome }, `${kind} ${outcome}`);
    this.entries.set(outcome, [...(this.entries.get(outcome) ?? []), `${kind} ${name}`]);
  }
  async report(ctx: ReconcileContext, owner: Obj, steadyBefore: boolean): Promise<void> {
    const events: [string, string, string][] = steadyBefore
      ? [
          ["created", "DriftCorrected", "recreated after it was deleted by hand"],
          ["updated", "DriftCorrected", "restored to the tenant's spec after a change by hand"],
        ]
      : [
          ["created", "Provisioned", "created"],
          ["updated", "Reconfigured", "updated to the tenant's new spec"],
        ];
    events.push(["rebalanced", "QuotaRebalanced", "moved tenant-wide quota headroom to where it is used"]);
    events.push(["deleted", "Removed", "removed, no longer in the spec"]);
    for (const [outcome, reason, said] of events) {
      const list = this.entries.get(outcome);
      if (!list?.length) continue;
      await ctx.recorder.record(owner, {
        type: "Normal",
        reason,
        action: "Reconcile",
        note: `${said}: ${list.join(", ")}`,
      });
    }
  }
}

/**
 * Quotas and limit ranges. With a tenant-wide total the split is written in two passes, lowering before
 * raising, against fresh reads: every write only lowers or raises to a split whose sum fits, so the sum
 * of hard limits in the API server never exceeds the total, whatever order or crash.
 */
async function ensureQuotas(scope: Scope): Promise<void> {
  const { ctx, tenant: t, namespaces, settings } = scope;
  const perNamespace = effectivePerNamespace(t, settings.defaults);
  const total = t.spec.quota.tenantTotal;
  const live: Record<string, Obj | undefined> = {};
  const used: Record<string, Record<string, string>> = {};
  for (const ns of namespaces) {
    // Fresh reads where the split moves: the cache may not have our own previous write yet.
    live[ns] = total
      ? await ctx.client.getOrUndefined<Obj>(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota })
      : ctx.cache.get<Obj>(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota });
    used[ns] = (live[ns]?.status as { used?: Record<string, string> } | undefined)?.used ?? {};
  }
  const demands = total ? quotaDemands(scope) : {};
  const hardByNs = splitTenantQuota(namespaces, perNamespace, total, used, demands);
  if (total) {
    for (const ns of namespaces) {
      const current = (live[ns]?.spec as { hard?: Record<string, string> } | undefined)?.hard;
      const lowered = lowerOnly(current, hardByNs[ns] ?? {});
      if (!lowered) continue;
      const outcome = await ensureExactly(ctx, owned(scope, desiredResourceQuota(t, ns, lowered)), live[ns]);
      scope.changes.note(
        ctx,
        outcome === "updated" ? "rebalanced" : outcome,
        "ResourceQuota",
        `${ns}/${OBJECT_NAMES.quota}`,
      );
      live[ns] = await ctx.client.getOrUndefined<Obj>(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota });
    }
  }
  // Counted from what was read before this reconcile's write: a new or changed quota's status arriving
  // is a watch event of its own, which brings the tenant back.
  const uncounted: string[] = [];
  for (const ns of namespaces) {
    const hard = hardByNs[ns] ?? {};
    if (Object.keys(hard).length > 0 && !quotaCounted(live[ns], hard)) uncounted.push(ns);
    const desired = desiredResourceQuota(t, ns, hard);
    const outcome = await ensureExactly(ctx, owned(scope, desired), live[ns]);
    // With a tenant-wide total, the split moves with usage: such an update is a rebalance, not drift.
    scope.changes.note(
      ctx,
      outcome === "updated" && total ? "rebalanced" : outcome,
      "ResourceQuota",
      `${ns}/${OBJECT_NAMES.quota}`,
    );
    await ensureOwned(
      scope,
      GVK.limitRange,
      ns,
      OBJECT_NAMES.limits,
      desiredLimitRange(t, ns, settings.defaults),
    );
  }
  if (uncounted.length > 0) {
    // The quota's status arriving is a watch event of its own: it brings this tenant back, no polling.
    scope.status.set(
      "QuotaReady",
      "False",
      "QuotaPending",
      `waiting for the quota controller to count usage in ${uncounted.join(", ")}; until then the API server does not enforce those limits`,
    );
    return;
  }
  scope.status.set(
    "QuotaReady",
    "True",
    "QuotaApplied",
    total
      ? "per-namespace quotas and the tenant-wide total are enforced"
      : "per-namespace quotas are enforced",
  );
}

/**
 * The first, lowering step from `current` to `target`: per resource the smaller of the two (a resource
 * `current` does not limit counts as unlimited, so the target is lower; one `target` drops stays until
 * the second step). Undefined when nothing needs lowering.
 */
function lowerOnly(
  current: Record<string, string> | undefined,
  target: Record<string, string>,
): Record<string, string> | undefined {
  if (!current) return undefined; // a new quota is created at its target: nothing to lower
  let lowers = false;
  const step: Record<string, string> = { ...current };
  for (const [k, v] of Object.entries(target)) {
    if (current[k] === undefined || parseQuantity(v) < parseQuantity(current[k])) {
      step[k] = v;
      lowers = true;
    }
  }
  return lowers ? step : undefined;
}

/** Recent quota refusals in the tenant's namespaces: the usage each namespace asked to reach. */
function quotaDemands(scope: Scope): Record<string, Record<string, string>> {
  const demands: Record<string, Record<string, string>> = {};
  const now = Date.now();
  for (const ns of scope.namespaces) {
    let latest = 0;
    for (const ev of scope.ctx.cache.list<Obj>(GVK.event, ns)) {
      if (!isQuotaRefusal(ev)) continue;
      const e = ev as { lastTimestamp?: string; eventTime?: string; series?: { lastObservedTime?: string } };
      const when = Math.max(
        ...[e.lastTimestamp, e.eventTime, e.series?.lastObservedTime, ev.metadata?.creationTimestamp]
          .filter((x): x is string => typeof x === "string")
          .map((x) => Date.parse(x))
          .filter((x) => Number.isFinite(x)),
      );
      if (!(now - when < QUOTA_DEMAND_WINDOW_MS) || when < latest) continue;
      const demand = quotaDemand((ev as { message?: string }).message ?? "", OBJECT_NAMES.quota);
      if (!demand) continue;
      latest = when;
      demands[ns] = demand;
    }
  }
  return demands;
}

/**
 * Whether the quota controller has taken up every resource of `hard`: the API server's quota admission
 * enforces only what a ResourceQuota's status.hard lists (a quota whose status is still empty limits
 * nothing), and refuses creates while status.used lacks one of them. Resource names only: a new value of
 * a resource already counted (a spec change, a tenant-wide rebalance) is enforced at the previous value
 * until the controller catches up, so the quota is in force all along.
 */
function quotaCounted(rq: KubeObject | undefined, hard: Record<string, unknown>): boolean {
  const status = (rq as Obj | undefined)?.status as
    | { hard?: Record<string, string>; used?: Record<string, string> }
    | undefined;
  return Object.keys(hard).every((r) => status?.hard?.[r] !== undefined && status.used?.[r] !== undefined);
}

async function ensureNetworkIsolation(scope: Scope, cilium: boolean): Promise<void> {
  const { ctx, tenant: t, namespaces, settings } = scope;
  const ours = new Set<string>(Object.values(OBJECT_NAMES));
  for (const ns of namespaces) {
    const desired = desiredNetworkPolicies(t, ns);
    for (const np of desired) await ensureOwned(scope, GVK.networkPolicy, ns, np.metadata.name as string, np);
    // Policies this operator made that the spec no longer asks for (e.g. internet egress turned off).
    for (const existing of ctx.cache.list(GVK.networkPolicy, ns)) {
      const name = existing.metadata?.name ?? "";
      if (ours.has(name) && !desired.some((d) => d.metadata.name === name)) {
        await ensureOwned(scope, GVK.networkPolicy, ns, name, undefined);
      }
    }
    if (cilium) {
      const key = { namespace: ns, name: OBJECT_NAMES.ciliumGateway };
      const cnp = desiredCiliumGatewayPolicy(t, ns);
      if (cnp) {
        scope.changes.note(
          ctx,
          await ensureUncached(ctx, owned(scope, cnp)),
          "CiliumNetworkPolicy",
          `${ns}/${key.name}`,
        );
      } else if (await ctx.client.getOrUndefined(GVK.ciliumPolicy, key)) {
        await ctx.client.delete(GVK.ciliumPolicy, key, { ignoreNotFound: true });
        scope.changes.note(ctx, "deleted", "CiliumNetworkPolicy", `${ns}/${key.name}`);
      }
    }
  }
  if (cilium && (await served(ctx, GVK.ciliumClusterwidePolicy))) {
    const ccnp = desiredCiliumClusterwidePolicy(t, tenantNamespaces(t), settings.defaults);
    scope.changes.note(
      ctx,
      await ensureUncached(ctx, owned(scope, ccnp)),
      "CiliumClusterwideNetworkPolicy",
      clusterwidePolicyName(t.metadata.name),
    );
  }
  const allowed = [
    "the tenant's own namespaces",
    "DNS",
    ...(t.spec.network.allowIngressFromNamespaces.length ? ["the listed ingress namespaces"] : []),
    ...(cilium && t.spec.network.allowFromGateway ? ["Cilium's gateway"] : []),
  ];
  scope.status.set(
    "NetworkPoliciesApplied",
    "True",
    "PoliciesApplied",
    `NetworkPolicies written: default deny; allowed: ${allowed.join(", ")}${
      cilium ? "; CiliumClusterwideNetworkPolicy deny rules the tenant cannot override" : ""
    }`,
  );
  // Written policies isolate nothing unless the CNI implements them.
  const enforcement = await enforcementOf(scope);
  if (enforcement.by) {
    scope.status.set("NetworkPolicyEnforced", "True", "EnforcingCNIFound", enforcement.message);
  } else {
    scope.status.set("NetworkPolicyEnforced", "Unknown", "NoEnforcingCNIFound", enforcement.message);
  }
}

async function ensureAccess(scope: Scope, guarded: boolean): Promise<void> {
  const { tenant: t, namespaces } = scope;
  if (!guarded) {
    // Access before the guardrails are proven would let owners create, in that window, what the
    // guardrails forbid, and keep it.
    scope.status.set(
      "AccessReady",
      "False",
      "WaitingForGuardrails",
      "owners get access once the tenant's guardrails are proven enforced",
    );
    return;
  }
  for (const ns of namespaces) {
    await ensureOwned(
      scope,
      GVK.roleBinding,
      ns,
      OBJECT_NAMES.ownersBinding,
      desiredOwnerRoleBinding(t, ns, scope.settings.ownerNaming),
    );
    await ensureOwned(
      scope,
      GVK.roleBinding,
      ns,
      OBJECT_NAMES.gitlabBinding,
      desiredGitlabRoleBinding(t, ns),
    );
  }
  const gitlabNote =
    t.spec.gitlab && t.spec.gitlab.groupID === undefined
      ? "; GitLab CI has no deploy rights until gitlab.groupID is set"
      : "";
  scope.status.set(
    "AccessReady",
    "True",
    "OwnersBound",
    `owners have admin in the tenant's namespaces${gitlabNote}`,
  );
}

/** The per-tenant parameters of the admission policies: written first, as the policies deny without them. */
async function ensureGuardrailParams(scope: Scope): Promise<void> {
  for (const ns of scope.namespaces) {
    await ensureOwned(
      scope,
      GVK.configMap,
      ns,
      OBJECT_NAMES.guardrailParams,
      desiredGuardrailParams(scope.tenant, ns),
    );
  }
}

/** Whether the admission policies exist and, the first time, are proven enforced by the API server. */
async function checkGuardrails(scope: Scope): Promise<{ waiting: boolean }> {
  const requiredLabelsGvk = { apiVersion: CONSTRAINT_API_VERSION, kind: REQUIRED_LABELS_KIND };
  if (await served(scope.ctx, requiredLabelsGvk)) {
    const desired = desiredRequiredLabelsConstraint(scope.tenant, scope.namespaces);
    const name = `peers-${scope.tenant.metadata.name}`;
    if (desired) {
      scope.changes.note(
        scope.ctx,
        await ensureUncached(scope.ctx, owned(scope, desired), { exact: false }),
        REQUIRED_LABELS_KIND,
        name,
      );
    } else {
      await scope.ctx.client.delete(requiredLabelsGvk, { name }, { ignoreNotFound: true });
    }
    // Constraint kinds come and go with Gatekeeper's templates, so they cannot be watched from the
    // start like the other kinds: they are looked at again every minute instead.
    scope.requeue = GATEKEEPER_RECHECK_MS;
  }
  // The policies themselves are cluster-wide, reconciled under GUARDRAILS_KEY: only report whether they exist.
  const missing = Object.values(POLICY_NAMES).filter(
    (name) => !scope.ctx.cache.get(GVK.vapBinding, { name }) || !scope.ctx.cache.get(GVK.vap, { name }),
  );
  if (missing.length > 0) {
    scope.status.set(
      "GuardrailsReady",
      "False",
      "PoliciesPending",
      `waiting for admission policies ${missing.join(", ")}`,
    );
    return { waiting: true };
  }
  // The API server enforces a new policy only once its own informer has it: before reporting the tenant
  // guarded for the first time, prove it with a dry-run request the policy must refuse.
  const before = (scope.owner.status as { conditions?: Condition[] } | undefined)?.conditions;
  const alreadyVerified = before?.some((c) => c.type === "GuardrailsReady" && c.status === "True");
  if (
    !alreadyVerified &&
    scope.namespaces[0] &&
    !(await guardrailsEnforced(scope.ctx, scope.namespaces[0]))
  ) {
    scope.status.set(
      "GuardrailsReady",
      "False",
      "PoliciesPending",
      "admission policies exist but are not enforced yet",
    );
    return { waiting: true };
  }
  scope.status.set(
    "GuardrailsReady",
    "True",
    "PoliciesBound",
    "admission policies protect the tenant's namespaces",
  );
  return { waiting: false };
}

/** Whether a dry-run NodePort Service in `namespace` is refused by the tenant Service policy. */
async function guardrailsEnforced(ctx: ReconcileContext, namespace: string): Promise<boolean> {
  try {
    await ctx.client.request("POST", `/api/v1/namespaces/${namespace}/services`, {
      query: { dryRun: "All" },
      body: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "homelab-guardrail-probe" },
        spec: { type: "NodePort", ports: [{ port: 80 }] },
      },
    });
    return false;
  } catch (err) {
    return err instanceof ApiError && err.message.includes(POLICY_NAMES.services);
  }
}

/** Whether the API server serves a kind (e.g. a CRD of Cilium or Gatekeeper that may or may not exist). */
async function served(ctx: ReconcileContext, gvk: GroupVersionKind): Promise<boolean> {
  try {
    await ctx.client.resourceInfo(gvk);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes an object of a kind that may not be cached (its CRD may appear after the operator starts) match
 * `desired`, compared with a fresh read: exactly by default; as a subset for Gatekeeper's kinds, whose
 * real CRDs may default fields the operator does not set.
 */
async function ensureUncached(
  ctx: ReconcileContext,
  desired: Obj,
  opts: { exact?: boolean } = {},
): Promise<EnsureOutcome> {
  const gvk = { apiVersion: desired.apiVersion!, kind: desired.kind! };
  const key = {
    name: desired.metadata!.name!,
    ...(desired.metadata?.namespace ? { namespace: desired.metadata.namespace } : {}),
  };
  const observed = await ctx.client.getOrUndefined(gvk, key);
  return opts.exact === false ? ensureObject(ctx, desired, observed) : ensureExactly(ctx, desired, observed);
}

/**
 * The cluster-wide admission policies shared by all tenants, and, where Gatekeeper runs, its templates
 * and the all-tenants Service constraint. Gatekeeper serves a constraint kind only after it has read the
 * template, so this looks again shortly while that is pending.
 */
async function ensureGuardrails(
  ctx: ReconcileContext,
  opts: PeerTenantControllerOptions,
  defaults: TenantDefaults,
): Promise<ReconcileResult> {
  const policies = desiredGuardrailPolicies({
    operatorUsernames: opts.operatorUsernames,
    allowedPriorityClasses: defaults.allowedPriorityClasses,
  });
  for (const desired of policies) {
    const obj = desired as Obj;
    const gvk = { apiVersion: obj.apiVersion!, kind: obj.kind! };
    await ensureObject(ctx, obj, ctx.cache.get(gvk, { name: obj.metadata!.name! }));
  }
  if (!(await served(ctx, TEMPLATE_GVK))) return undefined;
  for (const t of desiredConstraintTemplates()) await ensureUncached(ctx, t as Obj, { exact: false });
  if (!(await served(ctx, { apiVersion: CONSTRAINT_API_VERSION, kind: SERVICE_TYPES_KIND }))) {
    return { requeueAfter: 5_000 };
  }
  await ensureUncached(ctx, desiredServiceTypesConstraint() as Obj, { exact: false });
  return { requeueAfter: GATEKEEPER_RECHECK_MS };
}

/** One ConfigMap with the GitLab agent's ci_access block for every tenant, for the agent's config repo. */
async function ensureGitlabCiAccess(
  ctx: ReconcileContext,
  opts: PeerTenantControllerOptions,
): Promise<ReconcileResult> {
  // Validated without the status, which the list does not read: a parse copies what it is given.
  const tenants = ctx.cache
    .list<Obj>(GVK.tenant)
    .filter((o) => (o.spec as { gitlab?: unknown } | undefined)?.gitlab !== undefined)
    .map((o) => PeerTenant.schema.safeParse({ ...o, status: undefined }))
    .flatMap((r) => (r.success ? [r.data] : []));
  const desired: Obj = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: GITLAB_CI_ACCESS_CONFIGMAP,
      namespace: opts.operatorNamespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [COMPONENT_LABEL]: "gitlab-ci-access" },
    },
    data: { "config.yaml": stringify(gitlabCiAccess(tenants)) },
  };
  const cached = ctx.cache.get(GVK.configMap, {
    namespace: opts.operatorNamespace,
    name: GITLAB_CI_ACCESS_CONFIGMAP,
  });
  await ensureObject(ctx, desired, cached);
  return undefined;
}

function quotaStatus(ctx: ReconcileContext, namespaces: string[]): PeerTenantStatus["quota"] {
  const hard: Record<string, string>[] = [];
  const used: Record<string, string>[] = [];
  for (const ns of namespaces) {
    const rq = ctx.cache.get<Obj>(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota });
    const s = rq?.status as { hard?: Record<string, string>; used?: Record<string, string> } | undefined;
    if (s?.hard) hard.push(s.hard);
    if (s?.used) used.push(s.used);
  }
  return { hard: sumResources(hard), used: sumResources(used) };
}

/**
 * Removes a namespace from the tenant: deleted under `Delete`; under `Retain` released: the data stays,
 * the tenant's access ends (every RoleBinding to its owners, groups, CI identity or the namespace's
 * service accounts, the ones the owners made themselves included) and safe defaults stay behind
 * (Pod Security restricted, default-deny, no NodePorts or LoadBalancers), marked released so that a
 * later tenant may adopt it explicitly.
 */
async function retireNamespace(
  ctx: ReconcileContext,
  home: ReconcileContext,
  t: Tenant,
  name: string,
  settings: Settings,
): Promise<void> {
  if (t.spec.deletionPolicy === "Delete") {
    const live = await namespaceToDelete(ctx, home, t, name);
    if (!live) return;
    await ctx.fence(`deleting namespace ${name}`);
    await deleteExactly(ctx.client, live);
    return;
  }
  // Safe defaults first, so there is no moment with the tenant's guardrails gone and none in their place.
  for (const obj of desiredReleasedObjects(name, t.metadata.name)) await ctx.client.apply(obj);
  const bindings = await ctx.client.list<Obj>(GVK.roleBinding, { namespace: name });
  for (const rb of tenantBindingsToRemove(bindings.items, t, settings.ownerNaming, name)) {
    await ctx.client.delete(GVK.roleBinding, { namespace: name, name: rb }, { ignoreNotFound: true });
  }
  for (const gvk of [GVK.quota, GVK.limitRange, GVK.networkPolicy, GVK.roleBinding, GVK.configMap]) {
    for (const obj of ctx.cache.list(gvk, name)) {
      if (obj.metadata?.labels?.[TENANT_LABEL] !== t.metadata.name) continue;
      await ctx.client.delete(
        gvk,
        { namespace: name, name: obj.metadata?.name ?? "" },
        { ignoreNotFound: true },
      );
    }
  }
  // Last, as it takes the namespace out of the tenant guardrails' reach: applying our labels without the
  // tenant's drops them (same field manager), and leaves the release marker and Pod Security restricted.
  await ctx.client.apply({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels: releasedNamespaceLabels(t.metadata.name) },
  });
  settings.tenantByNamespace.delete(namespaceKey(t.spec.clusterRef, name));
}

/**
 * The decision to delete came from caches, which can lag or disagree after a failover: confirm it on live
 * reads. The namespace must still carry this tenant's label, and the same tenant (uid) must still exist
 * with deletionPolicy Delete, either being deleted or no longer listing the namespace. The live namespace
 * is returned for a delete with its uid and resourceVersion as preconditions. The namespace is read where
 * it lives (`target`: a workload cluster under clusterRef), the PeerTenant where it lives (`home`: the
 * management cluster).
 */
async function namespaceToDelete(
  target: ReconcileContext,
  home: ReconcileContext,
  t: Tenant,
  name: string,
): Promise<KubeObject | undefined> {
  const live = await target.client.getOrUndefined(GVK.namespace, { name });
  if (!live || live.metadata?.labels?.[TENANT_LABEL] !== t.metadata.name) return undefined;
  const read = PeerTenant.schema.safeParse(
    await home.client.getOrUndefined(GVK.tenant, { name: t.metadata.name }),
  );
  const owner = read.success ? read.data : undefined;
  if (!owner || owner.metadata.uid !== t.metadata.uid || owner.spec.deletionPolicy !== "Delete")
    return undefined;
  if (!owner.metadata.deletionTimestamp && tenantNamespaces(owner).includes(name)) return undefined;
  return live;
}

async function reconcileDelete(
  ctx: ReconcileContext,
  target: ReconcileContext,
  t: Tenant,
  cached: Obj,
  settings: Settings,
): Promise<ReconcileResult> {
  if (!hasFinalizer(cached, FINALIZER)) return undefined;
  const mine = target.cache
    .list(GVK.namespace)
    .filter((ns) => ns.metadata?.labels?.[TENANT_LABEL] === t.metadata.name)
    .map((ns) => ns.metadata?.name ?? "");
  for (const name of mine) await retireNamespace(target, ctx, t, name, settings);
  if (await served(target, GVK.ciliumClusterwidePolicy)) {
    const key = { name: clusterwidePolicyName(t.metadata.name) };
    await target.client.delete(GVK.ciliumClusterwidePolicy, key, { ignoreNotFound: true });
  }
  if (t.spec.deletionPolicy === "Delete") {
    // Keep the finalizer until the namespaces are gone, so `kubectl delete pt` waits for the real end.
    const left: string[] = [];
    for (const name of mine) {
      try {
        await target.client.get(GVK.namespace, { name });
        left.push(name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (left.length > 0) {
      await writeReadyFalse(
        ctx,
        cached,
        "Deleting",
        `waiting for namespace(s) ${left.join(", ")} to be deleted`,
      );
      return { requeueAfter: 2_000 };
    }
  }
  await ctx.recorder.record(cached, {
    type: "Normal",
    reason: t.spec.deletionPolicy === "Delete" ? "NamespacesDeleted" : "NamespacesRetained",
    action: "Delete",
    note:
      t.spec.deletionPolicy === "Delete"
        ? `deleted namespace(s) ${mine.join(", ")}`
        : `kept namespace(s) ${mine.join(", ")} with their contents; the tenant's access removed, safe defaults left (released, adoptable)`,
  });
  // The tenant's deletion event brings the GitLab ci_access list up to date (GITLAB_CI_ACCESS_KEY).
  await removeFinalizer(ctx.client, cached, FINALIZER);
  return undefined;
}

/** Ready=False with `reason` and `message`, and the same as a Warning event. */
async function markNotReady(
  ctx: ReconcileContext,
  cached: Obj,
  reason: string,
  action: string,
  message: string,
) {
  await writeReadyFalse(ctx, cached, reason, message);
  await ctx.recorder.record(cached, { type: "Warning", reason, action, note: message });
}

/**
 * A failed reconcile (a forbidden write, an API server error) is shown where users look: Ready=False
 * with the error, and a Warning event. Best effort: the error itself is what gets retried.
 */
async function reportFailure(ctx: ReconcileContext, err: unknown): Promise<void> {
  const cached = ctx.object<Obj>();
  if (!cached || cached.metadata?.deletionTimestamp) return;
  const message = (err instanceof Error ? err.message : String(err)).slice(0, 1024);
  try {
    await markNotReady(ctx, cached, "ReconcileFailed", "Reconcile", message);
  } catch (statusErr) {
    ctx.logger.warn({ err: statusErr }, "Could not report the reconcile failure in status");
  }
}

/** Collects this reconcile's conditions; `apply` merges them with transition-time semantics. */
class StatusBuilder {
  private readonly generation: number;
  private readonly entries: {
    type: string;
    status: "True" | "False" | "Unknown";
    reason: string;
    message: string;
  }[] = [];
  constructor(generation: number) {
    this.generation = generation;
  }
  set(type: string, status: "True" | "False" | "Unknown", reason: string, message: string): void {
    const i = this.entries.findIndex((e) => e.type === type);
    const entry = { type, status, reason, message };
    if (i >= 0) this.entries[i] = entry;
    else this.entries.push(entry);
  }
  allTrue(): boolean {
    // Unknown (e.g. no CNI detectable that enforces policy) is shown, and does not hold Ready back.
    return this.entries.filter((e) => e.type !== "Ready").every((e) => e.status !== "False");
  }
  firstFalseReason(): string {
    return this.entries.find((e) => e.status === "False" && e.type !== "Ready")?.reason ?? "NotReady";
  }
  summary(): string {
    const bad = this.entries.filter((e) => e.status === "False" && e.type !== "Ready");
    return bad.length === 0
      ? "all of the tenant's objects are in place"
      : bad.map((e) => `${e.type}: ${e.message}`).join("; ");
  }
  inputs(): ConditionInput[] {
    return this.entries.map((e) => ({ ...e, observedGeneration: this.generation }));
  }
}

/**
 * Ready=False from a path that knows only this (a failure, a wait): under a field manager of its own, so the
 * fields and conditions the full reconcile owns stay as they are (server-side apply removes what a manager
 * stops sending). Written only when it changes, so a reconcile failing the same way on every retry writes once.
 */
async function writeReadyFalse(ctx: ReconcileContext, cached: Obj, reason: string, message: string) {
  const ready = { type: "Ready", status: "False" as const, reason, message };
  const observedGeneration = cached.metadata?.generation ?? 0;
  await ctx.writeStatus(cached, { conditions: [{ ...ready, observedGeneration }] }, { part: "problem" });
}
