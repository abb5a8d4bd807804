// The HomelabCluster reconciler: phases 1–7 of the architecture, in order, each owning one Condition.
// A phase that waits returns and the object is looked at again later; nothing blocks. Every bit of
// progress is either in .status or readable from Proxmox / Talos / Kubernetes, so a crash at any line
// converges on restart without a second VM, download, bootstrap or Secret.
import { HomelabCluster, type HomelabClusterStatus } from "../../crds/homelab-cluster.ts";
import type { VmResource } from "../../proxmox/index.ts";
import {
  addFinalizer,
  type Condition,
  type ControllerSpec,
  hasFinalizer,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
  setCondition,
  specOrMetadataChanged,
} from "../../runtime/index.ts";
import { parseVersion } from "../../talos/config/version.ts";
import { PAUSED_ANNOTATION } from "../shared/paused.ts";
import { type Connections, directConnections } from "./connections.ts";
import { reconcileDelete } from "./deletion.ts";
import { checkDrift } from "./drift.ts";
import { ensureImage } from "./image.ts";
import { checkHealth, ensureKubeconfig, WorkloadClients } from "./kubernetes.ts";
import { FINALIZER } from "./names.ts";
import { CONNECTION_REASONS, failed, type Outcome } from "./outcome.ts";
import { ProxmoxClients } from "./proxmox-connection.ts";
import { removeStaleMembers } from "./replace.ts";
import { removeDepartedNodes, UPGRADE_IN_PROGRESS } from "./scale-down.ts";
import type { ControllerOptions, NodeStatus, Scope, Timings } from "./scope.ts";
import { ensureSecrets } from "./secrets.ts";
import { bootstrapEtcd, configureNodes } from "./talos.ts";
import { upgradeKubernetes } from "./upgrade-kubernetes.ts";
import { finishInFlightUpgrade, upgradeTalos } from "./upgrade-talos.ts";
import { validate } from "./validate.ts";
import { ensureVms } from "./vms.ts";

export const GVK = { apiVersion: HomelabCluster.apiVersion, kind: HomelabCluster.kind };

type Phase = "Pending" | "Provisioning" | "Bootstrapping" | "Upgrading";

/** The phases in order: the Condition each owns, the coarse phase it belongs to, what it does. */
const PHASES: { condition: string; phase: Phase; run: (scope: Scope) => Promise<Outcome> }[] = [
  { condition: "Validated", phase: "Pending", run: validate },
  { condition: "ImageReady", phase: "Provisioning", run: ensureImage },
  { condition: "SecretsReady", phase: "Provisioning", run: ensureSecrets },
  { condition: "VMsReady", phase: "Provisioning", run: ensureVms },
  { condition: "TalosConfigured", phase: "Provisioning", run: configureNodes },
  { condition: "EtcdBootstrapped", phase: "Bootstrapping", run: bootstrapOnce },
  // A control plane recreated from the image waits for its stale etcd member to go (replace.ts).
  { condition: "EtcdMembersInSync", phase: "Bootstrapping", run: removeStaleMembers },
  { condition: "KubeconfigReady", phase: "Bootstrapping", run: ensureKubeconfig },
  { condition: "KubernetesHealthy", phase: "Bootstrapping", run: checkHealth },
  // Nodes leave only a cluster that is otherwise healthy (scale-down.ts).
  { condition: "NodesRemoved", phase: "Provisioning", run: removeDepartedNodes },
  // Day 2: runs only on a healthy cluster, so nothing is upgraded past a failing earlier phase.
  { condition: "TalosUpToDate", phase: "Upgrading", run: upgradeTalos },
  // After Talos: one rollout at a time, and a Kubernetes upgrade only on nodes that run the target Talos.
  { condition: "KubernetesUpToDate", phase: "Upgrading", run: upgradeKubernetes },
];
export const PHASE_CONDITIONS = PHASES.map((p) => p.condition);
/** Checked on every pass once the VMs phase has run, without holding up the phases (drift.ts). */
const DRIFT_CONDITION = "VMsInSync";

export interface HomelabClusterControllerOptions {
  namespace: string;
  connections?: Connections;
  timings?: Partial<Timings>;
  maxConcurrentReconciles?: number;
  /** Longest retry delay after repeated failures (default 60 s). */
  maxBackoffMs?: number;
}

export function homelabClusterController(options: HomelabClusterControllerOptions): ControllerSpec {
  const opts: ControllerOptions = {
    namespace: options.namespace,
    connections: options.connections ?? directConnections,
    timings: { pollMs: 2_000, blockedMs: 15_000, resyncMs: 60_000, ...options.timings },
  };
  const proxmoxClients = new ProxmoxClients();
  const workloadClients = new WorkloadClients();
  return {
    name: "homelabcluster",
    for: GVK,
    pausedAnnotation: PAUSED_ANNOTATION,
    maxConcurrentReconciles: options.maxConcurrentReconciles ?? 4,
    // Proxmox and Talos failures are retried; past a minute of backoff a homelab only waits longer.
    backoff: { baseMs: 200, maxMs: options.maxBackoffMs ?? 60_000 },
    // Our own status writes need no reconcile; waiting phases requeue themselves.
    predicate: specOrMetadataChanged,
    async reconcile(req, ctx) {
      const fromCache = ctx.object<KubeObject & { status?: HomelabClusterStatus }>();
      if (!fromCache) {
        proxmoxClients.forget(req.name);
        workloadClients.forget(req.name);
        return undefined;
      }
      // The cached object is shared with the informer: work on a copy.
      const cached = structuredClone(fromCache);
      const parsed = HomelabCluster.schema.safeParse(cached);
      if (!parsed.success) {
        // The CRD's validation makes this unreachable in practice; say so rather than guess.
        const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        await writeStatus(ctx, cached, {
          ...(cached.status ?? {}),
          conditions: setCondition(cached.status?.conditions as Condition[] | undefined, {
            type: "Ready",
            status: "False",
            reason: "InvalidSpec",
            message,
            observedGeneration: cached.metadata?.generation ?? 0,
          }),
        });
        return undefined;
      }
      const scope = newScope(ctx, opts, cached, parsed.data, proxmoxClients, workloadClients);
      if (cached.metadata?.deletionTimestamp) {
        if (!hasFinalizer(cached, FINALIZER)) return undefined;
        return deleteCluster(scope, proxmoxClients, workloadClients);
      }
      if (!hasFinalizer(cached, FINALIZER)) scope.cached = await addFinalizer(ctx.client, cached, FINALIZER);
      return runPhases(scope);
    },
  };
}

function newScope(
  ctx: ReconcileContext,
  opts: ControllerOptions,
  cached: Scope["cached"],
  hc: HomelabCluster,
  proxmoxClients: ProxmoxClients,
  workloadClients: WorkloadClients,
): Scope {
  const previous = (cached.status ?? {}) as HomelabClusterStatus;
  let vms: Promise<VmResource[]> | undefined;
  const scope: Scope = {
    ctx,
    opts,
    cached,
    hc,
    spec: hc.spec,
    name: hc.metadata.name ?? "",
    generation: cached.metadata?.generation ?? 0,
    previous,
    nodes: new Map((previous.nodes ?? []).map((n) => [n.name, { ...n }])),
    status: {},
    proxmox: () => proxmoxClients.get(ctx, hc, opts.connections),
    workload: (kubeconfig) => workloadClients.get(hc.metadata.name ?? "", kubeconfig),
    vms: async (refresh = false) => {
      if (!vms || refresh) vms = scope.proxmox().then((c) => c.listVms());
      return vms;
    },
    milestones: [],
    writeProgress: async () => {
      await writeStatus(ctx, scope.cached, { ...previous, ...scope.status });
    },
  };
  return scope;
}

/** etcd is bootstrapped once in a cluster's life: after that only the health check looks at etcd. */
async function bootstrapOnce(scope: Scope): Promise<Outcome> {
  const c = scope.previous.conditions?.find((x) => x.type === "EtcdBootstrapped");
  if (c?.status === "True") return { done: true, reason: c.reason, message: c.message };
  return bootstrapEtcd(scope);
}

async function runPhases(scope: Scope): Promise<ReconcileResult> {
  const { previous, generation } = scope;
  let conditions = (previous.conditions ?? []) as Condition[];
  const set = (type: string, ok: boolean, reason: string, message: string) => {
    conditions = setCondition(conditions, {
      type,
      status: ok ? "True" : "False",
      reason,
      message,
      observedGeneration: generation,
    });
  };

  let stopped: { phase: Phase; condition: string; outcome: Outcome & { done: false } } | undefined;
  for (const phase of PHASES) {
    let outcome: Outcome;
    try {
      outcome = await phase.run(scope);
    } catch (err) {
      outcome = failed(err);
    }
    set(phase.condition, outcome.done, outcome.reason, outcome.message);
    if (!outcome.done) {
      // The connection itself is broken: Validate must run again and say so too.
      if (phase.condition !== "Validated" && CONNECTION_REASONS.has(outcome.reason))
        set("Validated", false, outcome.reason, outcome.message);
      stopped = { phase: phase.phase, condition: phase.condition, outcome };
      break;
    }
  }
  // A scale-down waiting for a Talos upgrade in flight: that upgrade (and only it) goes on (scale-down.ts).
  if (stopped?.condition === "NodesRemoved" && stopped.outcome.reason === UPGRADE_IN_PROGRESS) {
    const finishing = await finishInFlightUpgrade(scope).catch(failed);
    set("TalosUpToDate", finishing.done, finishing.reason, finishing.message);
  }

  // Drift is looked at once the VMs phase ran (the VM list is read); it reports and corrects, never stops.
  const reached = stopped ? PHASE_CONDITIONS.indexOf(stopped.condition) : PHASE_CONDITIONS.length;
  let drift: Outcome | undefined;
  if (reached >= PHASE_CONDITIONS.indexOf("VMsReady")) {
    drift = await checkDrift(scope).catch(failed);
    set(DRIFT_CONDITION, drift.done, drift.reason, drift.message);
  }

  const wasReady =
    previous.phase === "Ready" || previous.phase === "Degraded" || previous.phase === "Upgrading";
  if (stopped)
    set("Ready", false, stopped.outcome.reason, `${stopped.condition}: ${stopped.outcome.message}`);
  else
    set(
      "Ready",
      true,
      "ClusterReady",
      // What the phases checked, no more: etcd's health is not read here, only that every control
      // plane has a member (KubernetesHealthy) and none is kept out by a stale one (EtcdMembersInSync).
      `${scope.spec.nodes.length} node(s) configured, an etcd member per control plane, the Kubernetes API answering, every node registered`,
    );
  const phase = !stopped
    ? "Ready"
    : stopped.phase === "Upgrading"
      ? "Upgrading"
      : wasReady
        ? "Degraded"
        : stopped.phase;

  const nodes = scope.spec.nodes.map(
    (n) => scope.nodes.get(n.name) ?? ({ name: n.name, ready: false } as NodeStatus),
  );
  const next: HomelabClusterStatus = {
    ...previous,
    ...scope.status,
    observedGeneration: generation,
    phase,
    nodes,
    conditions,
  };
  const talos = lowest(nodes.map((n) => n.talosVersion));
  if (talos) next.talosVersion = talos;
  const kubelet = lowest(nodes.map((n) => n.kubeletVersion));
  if (kubelet) next.kubernetesVersion = kubelet;
  if (next.secretRefs?.kubeconfig) next.endpoint = scope.spec.kubernetes.endpoint;
  await writeStatus(scope.ctx, scope.cached, next);
  await recordEvents(scope, previous, next, stopped);

  // A connection the user must fix is looked at on a steady beat; anything else backs off in the runtime.
  if (stopped?.outcome.error !== undefined && !CONNECTION_REASONS.has(stopped.outcome.reason))
    throw stopped.outcome.error;
  if (stopped?.outcome.error !== undefined) return { requeueAfter: scope.opts.timings.blockedMs };
  if (stopped) return { requeueAfter: stopped.outcome.requeueAfterMs };
  if (drift && !drift.done) return { requeueAfter: scope.opts.timings.pollMs };
  return { requeueAfter: scope.opts.timings.resyncMs };
}

async function deleteCluster(
  scope: Scope,
  proxmoxClients: ProxmoxClients,
  workloadClients: WorkloadClients,
): Promise<ReconcileResult> {
  let after: number | undefined;
  try {
    after = await reconcileDelete(scope);
  } catch (err) {
    const { reason, message } = failed(err);
    await writeStatus(scope.ctx, scope.cached, {
      ...scope.previous,
      phase: "Deleting",
      conditions: setCondition(scope.previous.conditions as Condition[] | undefined, {
        type: "Ready",
        status: "False",
        reason,
        message: `deleting: ${message}`,
        observedGeneration: scope.generation,
      }),
    });
    throw err;
  }
  if (after === undefined) {
    proxmoxClients.forget(scope.name);
    workloadClients.forget(scope.name);
    return undefined;
  }
  await writeStatus(scope.ctx, scope.cached, {
    ...scope.previous,
    phase: "Deleting",
    conditions: setCondition(scope.previous.conditions as Condition[] | undefined, {
      type: "Ready",
      status: "False",
      reason: "Deleting",
      message: scope.deleting ?? "deleting",
      observedGeneration: scope.generation,
    }),
  });
  return { requeueAfter: after };
}

/** Milestones as Normal Events; a phase blocked or failing for a new reason as a Warning (not waiting). */
async function recordEvents(
  scope: Scope,
  before: HomelabClusterStatus,
  after: HomelabClusterStatus,
  stopped: { condition: string; outcome: Outcome & { done: false } } | undefined,
) {
  const { recorder } = scope.ctx;
  for (const m of scope.milestones) await recorder.record(scope.cached, { type: "Normal", ...m });
  if (stopped?.outcome.warn) {
    const old = before.conditions?.find((x) => x.type === stopped.condition);
    if (old?.status !== "False" || old.reason !== stopped.outcome.reason)
      await recorder.record(scope.cached, {
        type: "Warning",
        reason: stopped.outcome.reason,
        action: stopped.condition,
        note: stopped.outcome.message,
      });
  }
  const ready = after.conditions?.find((c) => c.type === "Ready");
  const wasReady = before.conditions?.find((c) => c.type === "Ready")?.status === "True";
  if (ready?.status === "True" && !wasReady)
    await recorder.record(scope.cached, {
      type: "Normal",
      reason: "ClusterReady",
      action: "Reconcile",
      note: ready.message,
    });
}

/**
 * The whole status, through the runtime's status writer: server-side apply under this controller's field
 * manager (so a field or condition left out of `next` goes, and other controllers' conditions on the same
 * object stay), written only when it would change anything.
 */
async function writeStatus(ctx: ReconcileContext, cached: KubeObject, next: HomelabClusterStatus) {
  const fields: Record<string, unknown> = {};
  for (const field of OWNED_STATUS_FIELDS) fields[field] = next[field];
  await ctx.writeStatus(cached, {
    fields,
    // Only our own conditions (another controller on this object owns its own); the transition time is
    // the writer's to keep or move, compared with the object as stored.
    conditions: ((next.conditions ?? []) as Condition[])
      .filter((c) => OWNED_CONDITIONS.has(c.type))
      .map(({ lastTransitionTime: _, ...c }) => c),
  });
}

/** The status this controller writes; `components` and other controllers' conditions are not ours. */
const OWNED_STATUS_FIELDS = [
  "observedGeneration",
  "phase",
  "endpoint",
  "talosVersion",
  "kubernetesVersion",
  "nodesReady",
  "image",
  "nodes",
  "secretRefs",
  "upgrade",
] as const satisfies readonly (keyof HomelabClusterStatus)[];
const OWNED_CONDITIONS = new Set<string>([...PHASE_CONDITIONS, DRIFT_CONDITION, "Ready"]);

function lowest(versions: (string | undefined)[]): string | undefined {
  const valid = versions.filter((v): v is string => {
    if (!v) return false;
    try {
      parseVersion(v);
      return true;
    } catch {
      return false;
    }
  });
  if (valid.length !== versions.length) return undefined;
  return valid.sort((a, b) => {
    const x = parseVersion(a);
    const y = parseVersion(b);
    return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
  })[0];
}
