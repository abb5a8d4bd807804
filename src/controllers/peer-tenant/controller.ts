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
import { sumResources } from "../shared/quantity.ts";
import {
  desiredCiliumGatewayPolicy,
  desiredGitlabRoleBinding,
  desiredGuardrailParams,
  desiredLimitRange,
  desiredNamespace,
  desiredNetworkPolicies,
  desiredOwnerRoleBinding,
  desiredResourceQuota,
  gitlabCiAccess,
  splitTenantQuota,
  tenantNamespaces,
} from "./desired.ts";
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
import { MANAGED_BY, MANAGED_BY_LABEL, OBJECT_NAMES, TENANT_LABEL } from "./labels.ts";

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
}

type Tenant = PeerTenant;
type Obj = KubeObject & Record<string, unknown>;

const managedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
const tenantSelector = `${managedSelector},${TENANT_LABEL}`;

function tenantOf(obj: KubeObject): string[] {
  const t = obj.metadata?.labels?.[TENANT_LABEL];
  return t ? [t] : [];
}

export function peerTenantController(opts: PeerTenantControllerOptions): ControllerSpec {
  const hasCilium = opts.hasCilium ?? ((ctx: ReconcileContext) => served(ctx, GVK.ciliumPolicy));
  const tenantScoped = (gvk: GroupVersionKind) => ({ gvk, labelSelector: tenantSelector, map: tenantOf });
  return {
    name: "peertenant",
    for: GVK.tenant,
    // Only names, labels, annotations and deletion timestamps of Namespaces are read: cache their metadata.
    owns: [{ ...GVK.namespace, ownerLabel: TENANT_LABEL, metadataOnly: true }],
    watches: [
      tenantScoped(GVK.quota),
      tenantScoped(GVK.limitRange),
      tenantScoped(GVK.networkPolicy),
      tenantScoped(GVK.roleBinding),
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
      { gvk: GVK.tenant, map: () => [GUARDRAILS_KEY, GITLAB_CI_ACCESS_KEY] },
      { gvk: GVK.vap, labelSelector: managedSelector, map: () => [GUARDRAILS_KEY] },
      { gvk: GVK.vapBinding, labelSelector: managedSelector, map: () => [GUARDRAILS_KEY] },
    ],
    maxConcurrentReconciles: opts.maxConcurrentReconciles ?? 8,
    // Status-only updates of a PeerTenant are our own writes: they need no reconcile.
    predicate: specOrMetadataChanged,
    pausedAnnotation: PAUSED_ANNOTATION,
    async reconcile(req, ctx) {
      if (req.name === GUARDRAILS_KEY) return ensureGuardrails(ctx, opts);
      if (req.name === GITLAB_CI_ACCESS_KEY) return ensureGitlabCiAccess(ctx, opts);
      try {
        return await reconcileTenant(ctx, hasCilium);
      } catch (err) {
        await reportFailure(ctx, err);
        throw err; // retried with backoff by the runtime
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------

/** What one reconcile of one tenant works with: the parsed spec, the cached object, what it learns. */
interface Scope {
  ctx: ReconcileContext;
  tenant: Tenant;
  /** The cached PeerTenant: owner of what is created, subject of its Events. */
  owner: Obj;
  status: StatusBuilder;
  changes: ChangeLog;
  /** Tenant namespaces that exist, belong to this tenant and are not terminating. */
  namespaces: string[];
}

async function reconcileTenant(
  ctx: ReconcileContext,
  hasCilium: (ctx: ReconcileContext) => Promise<boolean>,
): Promise<ReconcileResult> {
  const cached = ctx.object<Obj>();
  if (!cached) return undefined;
  const parsed = PeerTenant.schema.safeParse(cached);
  if (!parsed.success) {
    // The CRD's own validation should make this unreachable; if it happens, say so and stop retrying.
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await markNotReady(ctx, cached, "InvalidSpec", "Validate", message);
    return undefined;
  }
  const tenant = parsed.data;
  if (tenant.metadata.deletionTimestamp) return reconcileDelete(ctx, tenant, cached);
  if (!hasFinalizer(cached, FINALIZER)) await addFinalizer(ctx.client, cached, FINALIZER);

  const generation = tenant.metadata.generation ?? 0;
  const scope: Scope = {
    ctx,
    tenant,
    owner: cached,
    status: new StatusBuilder(generation),
    changes: new ChangeLog(),
    namespaces: [],
  };
  // The phases, in order. Each sets its own condition; none blocks.
  const { terminating } = await ensureNamespaces(scope);
  await ensureQuotas(scope);
  await ensureNetworkIsolation(scope, await hasCilium(ctx));
  await ensureAccess(scope);
  const guardrails = await ensureGuardrailParams(scope);

  const { status } = scope;
  const ready = status.allTrue();
  status.set(
    "Ready",
    ready ? "True" : "False",
    ready ? "TenantReady" : status.firstFalseReason(),
    status.summary(),
  );
  await ctx.writeStatus(cached, {
    fields: {
      observedGeneration: generation,
      namespaces: scope.namespaces,
      namespaceCount: scope.namespaces.length,
      quota: quotaStatus(ctx, scope.namespaces),
    },
    conditions: status.inputs(),
  });
  await scope.changes.report(ctx, cached, wasSteady(cached, generation));
  // Phases that wait poll: a namespace still terminating, admission policies not yet in the cache.
  if (terminating) return { requeueAfter: 2_000 };
  return guardrails.waiting ? { requeueAfter: 1_000 } : undefined;
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
    if (existing && holder !== t.metadata.name) {
      conflicts.push(`${name} (${holder ? `belongs to tenant ${holder}` : "not created by a PeerTenant"})`);
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
    await retireNamespace(ctx, t, name);
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
function owned(owner: Obj, obj: Record<string, unknown>): Obj {
  const meta = obj.metadata as Record<string, unknown>;
  return { ...obj, metadata: { ...meta, ownerReferences: [controllerReference(owner)] } } as Obj;
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
  const { ctx, owner, changes } = scope;
  const cached = ctx.cache.get(gvk, { namespace: ns, name });
  if (!desired) {
    if (cached) {
      await ctx.client.delete(gvk, { namespace: ns, name }, { ignoreNotFound: true });
      changes.note(ctx, "deleted", gvk.kind, `${ns}/${name}`);
    }
    return;
  }
  const outcome = await ensureObject(ctx, owned(owner, desired), cached);
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

async function ensureQuotas(scope: Scope): Promise<void> {
  const { ctx, tenant: t, namespaces } = scope;
  const used: Record<string, Record<string, string>> = {};
  for (const ns of namespaces) {
    const rq = ctx.cache.get<Obj>(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota });
    used[ns] = (rq?.status as { used?: Record<string, string> } | undefined)?.used ?? {};
  }
  const hardByNs = splitTenantQuota(namespaces, t.spec.quota.perNamespace, t.spec.quota.tenantTotal, used);
  const uncounted: string[] = [];
  for (const ns of namespaces) {
    const hard = hardByNs[ns] ?? {};
    const desired = Object.keys(hard).length > 0 ? desiredResourceQuota(t, ns, hard) : undefined;
    if (desired && !quotaCounted(ctx.cache.get(GVK.quota, { namespace: ns, name: OBJECT_NAMES.quota }), hard))
      uncounted.push(ns);
    // With a tenant-wide total, the split moves with usage: such an update is a rebalance, not drift.
    await ensureOwned(
      scope,
      GVK.quota,
      ns,
      OBJECT_NAMES.quota,
      desired,
      t.spec.quota.tenantTotal ? "rebalanced" : undefined,
    );
    await ensureOwned(scope, GVK.limitRange, ns, OBJECT_NAMES.limits, desiredLimitRange(t, ns));
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
    t.spec.quota.tenantTotal
      ? "per-namespace quotas and the tenant-wide total are enforced"
      : "per-namespace quotas are enforced",
  );
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
  const { ctx, tenant: t, owner, namespaces } = scope;
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
      // CiliumNetworkPolicies are read, not cached: the CRD may appear after the operator starts.
      const key = { namespace: ns, name: OBJECT_NAMES.ciliumGateway };
      const cnp = desiredCiliumGatewayPolicy(t, ns);
      if (cnp) {
        scope.changes.note(
          ctx,
          await ensureUncached(ctx, owned(owner, cnp)),
          "CiliumNetworkPolicy",
          `${ns}/${key.name}`,
        );
      } else if (await ctx.client.getOrUndefined(GVK.ciliumPolicy, key)) {
        await ctx.client.delete(GVK.ciliumPolicy, key, { ignoreNotFound: true });
        scope.changes.note(ctx, "deleted", "CiliumNetworkPolicy", `${ns}/${key.name}`);
      }
    }
  }
  const allowed = [
    "the tenant's own namespaces",
    "DNS",
    ...(t.spec.network.allowIngressFromNamespaces.length ? ["the listed ingress namespaces"] : []),
    ...(cilium && t.spec.network.allowFromGateway ? ["Cilium's gateway"] : []),
  ];
  scope.status.set(
    "NetworkIsolated",
    "True",
    "PoliciesApplied",
    `default deny; allowed: ${allowed.join(", ")}`,
  );
}

async function ensureAccess(scope: Scope): Promise<void> {
  const { tenant: t, namespaces } = scope;
  for (const ns of namespaces) {
    await ensureOwned(scope, GVK.roleBinding, ns, OBJECT_NAMES.ownersBinding, desiredOwnerRoleBinding(t, ns));
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

async function ensureGuardrailParams(scope: Scope): Promise<{ waiting: boolean }> {
  for (const ns of scope.namespaces) {
    await ensureOwned(
      scope,
      GVK.configMap,
      ns,
      OBJECT_NAMES.guardrailParams,
      desiredGuardrailParams(scope.tenant, ns),
    );
  }
  const requiredLabelsGvk = { apiVersion: CONSTRAINT_API_VERSION, kind: REQUIRED_LABELS_KIND };
  if (await served(scope.ctx, requiredLabelsGvk)) {
    const desired = desiredRequiredLabelsConstraint(scope.tenant, scope.namespaces);
    const name = `peers-${scope.tenant.metadata.name}`;
    if (desired) {
      scope.changes.note(
        scope.ctx,
        await ensureUncached(scope.ctx, owned(scope.owner, desired)),
        REQUIRED_LABELS_KIND,
        name,
      );
    } else {
      await scope.ctx.client.delete(requiredLabelsGvk, { name }, { ignoreNotFound: true });
    }
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

/** Applies a desired object of a kind that is not cached, comparing it with a fresh read first. */
async function ensureUncached(ctx: ReconcileContext, desired: Obj): Promise<EnsureOutcome> {
  const gvk = { apiVersion: desired.apiVersion!, kind: desired.kind! };
  const key = {
    name: desired.metadata!.name!,
    ...(desired.metadata?.namespace ? { namespace: desired.metadata.namespace } : {}),
  };
  return ensureObject(ctx, desired, await ctx.client.getOrUndefined(gvk, key));
}

/**
 * The cluster-wide admission policies shared by all tenants, and, where Gatekeeper runs, its templates
 * and the all-tenants Service constraint. Gatekeeper serves a constraint kind only after it has read the
 * template, so this looks again shortly while that is pending.
 */
async function ensureGuardrails(
  ctx: ReconcileContext,
  opts: PeerTenantControllerOptions,
): Promise<ReconcileResult> {
  for (const desired of desiredGuardrailPolicies({ operatorUsernames: opts.operatorUsernames })) {
    const obj = desired as Obj;
    const gvk = { apiVersion: obj.apiVersion!, kind: obj.kind! };
    await ensureObject(ctx, obj, ctx.cache.get(gvk, { name: obj.metadata!.name! }));
  }
  if (!(await served(ctx, TEMPLATE_GVK))) return undefined;
  for (const t of desiredConstraintTemplates()) await ensureUncached(ctx, t as Obj);
  if (!(await served(ctx, { apiVersion: CONSTRAINT_API_VERSION, kind: SERVICE_TYPES_KIND }))) {
    return { requeueAfter: 5_000 };
  }
  await ensureUncached(ctx, desiredServiceTypesConstraint() as Obj);
  return undefined;
}

/** One ConfigMap with the GitLab agent's ci_access block for every tenant, for the agent's config repo. */
async function ensureGitlabCiAccess(
  ctx: ReconcileContext,
  opts: PeerTenantControllerOptions,
): Promise<ReconcileResult> {
  const tenants = ctx.cache
    .list<Obj>(GVK.tenant)
    .map((o) => PeerTenant.schema.safeParse(o))
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

/** Removes a namespace from the tenant: deleted under `Delete`, released (ours stripped, data kept) under `Retain`. */
async function retireNamespace(ctx: ReconcileContext, t: Tenant, name: string): Promise<void> {
  if (t.spec.deletionPolicy === "Delete") {
    const live = await namespaceToDelete(ctx, t, name);
    if (!live) return;
    await ctx.fence(`deleting namespace ${name}`);
    await deleteExactly(ctx.client, live);
    return;
  }
  // Applying the bare object with our field manager drops every label we set; nothing else changes.
  await ctx.client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
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
}

/**
 * The decision to delete came from caches, which can lag or disagree after a failover: confirm it on live
 * reads. The namespace must still carry this tenant's label, and the same tenant (uid) must still exist
 * with deletionPolicy Delete, either being deleted or no longer listing the namespace. The live namespace
 * is returned for a delete with its uid and resourceVersion as preconditions.
 */
async function namespaceToDelete(
  ctx: ReconcileContext,
  t: Tenant,
  name: string,
): Promise<KubeObject | undefined> {
  const live = await ctx.client.getOrUndefined(GVK.namespace, { name });
  if (!live || live.metadata?.labels?.[TENANT_LABEL] !== t.metadata.name) return undefined;
  const read = PeerTenant.schema.safeParse(
    await ctx.client.getOrUndefined(GVK.tenant, { name: t.metadata.name }),
  );
  const owner = read.success ? read.data : undefined;
  if (!owner || owner.metadata.uid !== t.metadata.uid || owner.spec.deletionPolicy !== "Delete")
    return undefined;
  if (!owner.metadata.deletionTimestamp && tenantNamespaces(owner).includes(name)) return undefined;
  return live;
}

async function reconcileDelete(ctx: ReconcileContext, t: Tenant, cached: Obj): Promise<ReconcileResult> {
  if (!hasFinalizer(cached, FINALIZER)) return undefined;
  const mine = ctx.cache
    .list(GVK.namespace)
    .filter((ns) => ns.metadata?.labels?.[TENANT_LABEL] === t.metadata.name)
    .map((ns) => ns.metadata?.name ?? "");
  for (const name of mine) await retireNamespace(ctx, t, name);
  if (t.spec.deletionPolicy === "Delete") {
    // Keep the finalizer until the namespaces are gone, so `kubectl delete pt` waits for the real end.
    const left: string[] = [];
    for (const name of mine) {
      try {
        await ctx.client.get(GVK.namespace, { name });
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
        : `kept namespace(s) ${mine.join(", ")} with their contents; tenant guardrails and access removed`,
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
  private readonly entries: { type: string; status: "True" | "False"; reason: string; message: string }[] =
    [];
  constructor(generation: number) {
    this.generation = generation;
  }
  set(type: string, status: "True" | "False", reason: string, message: string): void {
    const i = this.entries.findIndex((e) => e.type === type);
    const entry = { type, status, reason, message };
    if (i >= 0) this.entries[i] = entry;
    else this.entries.push(entry);
  }
  allTrue(): boolean {
    return this.entries.filter((e) => e.type !== "Ready").every((e) => e.status === "True");
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
