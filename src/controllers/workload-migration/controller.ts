// The WorkloadMigration reconciler. Reads top to bottom as its phases: dependencies, the live source
// VM check, then each step (one module and one Condition each) until the first that is not done.
// Everything a step needs is in status or read live, so a crash at any line converges on restart and
// never repeats a stop, backup or delete (each remembers its Proxmox task in status first).
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { Dial } from "../../proxmox/transport.ts";
import type {
  ConditionInput,
  ControllerSpec,
  KubeObject,
  ReconcileContext,
  ReconcileResult,
} from "../../runtime/index.ts";
import { PAUSED_ANNOTATION } from "../shared/paused.ts";
import { forgetRemovedApprovals } from "./approval.ts";
import { backupStep } from "./backup.ts";
import { HOMELAB_CLUSTER, proxmoxFor, targetClusterFor } from "./connections.ts";
import { cutoverStep } from "./cutover.ts";
import { deployStep } from "./deploy.ts";
import { guestLabel, sourceType } from "./guest.ts";
import { type HelmSetup, helmAccess, resolveHelmSetup } from "./helm-release.ts";
import { confirmRetired, retireStep } from "./retire.ts";
import { rollBack } from "./rollback.ts";
import { judgeSourceVm } from "./source-vm.ts";
import type { MigrationFields, MigrationRun, Step, StepOutcome } from "./step.ts";
import { stopVmStep } from "./stop-vm.ts";
import { syncStep } from "./sync.ts";
import { verifyStep } from "./verify.ts";

export const GVK = { apiVersion: WorkloadMigration.apiVersion, kind: WorkloadMigration.kind } as const;

/** In order; the phase shown while a step is the first one not done. */
const STEPS: { step: Step; phase: string }[] = [
  { step: deployStep, phase: "Deploying" },
  { step: syncStep, phase: "Syncing" },
  { step: verifyStep, phase: "Verifying" },
  { step: cutoverStep, phase: "AwaitingCutover" },
  { step: stopVmStep, phase: "CutOver" },
  { step: backupStep, phase: "VMStopped" },
  { step: retireStep, phase: "BackedUp" },
];

const FIELD_NAMES = [
  "phase",
  "proxmoxNode",
  "sourceVMState",
  "targets",
  "verifyStartedTime",
  "verifyPasses",
  "verifiedTime",
  "cutoverTime",
  "deleteAfterTime",
  "stoppedTime",
  "stopTask",
  "backupTask",
  "backupVolumeID",
  "backupFailedTime",
  "approvedBy",
  "deleteTask",
  "ramFreedMiB",
  "diskFreedGiB",
  "retiredTime",
  "startTask",
  "rollbackMessage",
  "initialSyncTime",
  "finalSyncStartedTime",
  "finalSyncTime",
  "rollbackSyncNote",
  "rolledBackTime",
  "staleApprovals",
] as const satisfies readonly (keyof MigrationFields)[];

export interface WorkloadMigrationControllerOptions {
  /** Namespace holding <cluster>-kubeconfig Secrets of HomelabClusters. */
  operatorNamespace: string;
  maxConcurrentReconciles?: number;
  now?: () => Date;
  /** Where Proxmox connections go instead of the spec's address (local mode's seam to its simulator). */
  dial?: Dial;
  /** The Helm binary for HelmRelease targets; found as the components controller finds it when unset. */
  helm?: HelmSetup;
}

function carriedFields(wm: WorkloadMigration): MigrationFields {
  const s = (wm.status ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    FIELD_NAMES.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]),
  ) as MigrationFields;
}

/**
 * Runs `steps` in order, recording each one's condition. The first step that is not done sets the phase
 * (its own, or Failed) and its outcome is returned for the caller to finish with; undefined when all are done.
 */
async function runSteps(
  steps: readonly { step: Step; phase: string }[],
  run: MigrationRun,
  fields: MigrationFields,
  conditions: ConditionInput[],
  generation: number,
): Promise<StepOutcome | undefined> {
  for (const { step, phase } of steps) {
    const o = await step.run(run);
    conditions.push(conditionOf(step.condition, o, generation));
    if (!o.done) {
      fields.phase = "failed" in o ? "Failed" : phase;
      return o;
    }
  }
  return undefined;
}

function conditionOf(type: string, o: StepOutcome, generation: number): ConditionInput {
  return {
    type,
    status: o.done ? "True" : "False",
    reason: o.reason,
    message: o.message,
    observedGeneration: generation,
  };
}

export function workloadMigrationController(opts: WorkloadMigrationControllerOptions): ControllerSpec {
  const now = opts.now ?? (() => new Date());
  const helm = resolveHelmSetup(opts.helm);
  return {
    name: "workloadmigration",
    for: GVK,
    pausedAnnotation: PAUSED_ANNOTATION,
    ...(opts.maxConcurrentReconciles ? { maxConcurrentReconciles: opts.maxConcurrentReconciles } : {}),
    async reconcile(_req, ctx): Promise<ReconcileResult> {
      const cached = ctx.object<KubeObject>();
      if (!cached || cached.metadata?.deletionTimestamp) return;
      // Read live, not from the cache: status holds the ids of Proxmox tasks this controller started,
      // and a cache a moment behind our own last write would forget one and start it again. The live
      // object also carries managedFields (who set the approval), which the cache drops.
      const live = await ctx.client.getOrUndefined<KubeObject>(GVK, {
        namespace: cached.metadata?.namespace,
        name: cached.metadata!.name!,
      });
      if (!live || live.metadata?.deletionTimestamp) return;
      return reconcileMigration(ctx, live, live as unknown as WorkloadMigration, { ...opts, helm }, now());
    },
  };
}

async function reconcileMigration(
  ctx: ReconcileContext,
  obj: KubeObject,
  wm: WorkloadMigration,
  opts: WorkloadMigrationControllerOptions,
  at: Date,
): Promise<ReconcileResult> {
  const generation = wm.metadata.generation ?? 0;
  const fields = carriedFields(wm);
  // First, so a removal is seen whatever this reconcile goes on to do (pending, refused, rolling back).
  forgetRemovedApprovals(obj, fields);
  const conditions: ConditionInput[] = [];
  const write = (ready: StepOutcome) =>
    ctx.writeStatus(obj, {
      fields: { ...fields, observedGeneration: generation },
      conditions: [...conditions, conditionOf("Ready", ready, generation)],
    });
  const finish = async (o: StepOutcome): Promise<ReconcileResult> => {
    await write(o);
    return "requeueAfterMs" in o ? { requeueAfter: o.requeueAfterMs } : undefined;
  };

  if (fields.retiredTime) {
    conditions.push(
      conditionOf(
        "Retired",
        { done: true, reason: "VMDeleted", message: `deleted at ${fields.retiredTime}` },
        generation,
      ),
    );
    fields.phase = "Decommissioned";
    return finish({
      done: true,
      reason: "Retired",
      message: `VM ${wm.spec.source?.vmid} retired at ${fields.retiredTime}`,
    });
  }
  const observedGeneration = (wm.status as { observedGeneration?: number } | undefined)?.observedGeneration;
  if (fields.phase === "Failed" && observedGeneration === generation && !wm.spec.rollback) return; // stays stopped where it failed until the spec changes; its conditions say why
  if (fields.phase === "Failed") {
    // The spec changed: verification starts over (its deadline too).
    fields.verifyStartedTime = undefined;
    fields.verifyPasses = undefined;
  }

  // Order: every migration this one depends on must have cut over.
  const pending = wm.spec.dependsOn.filter((name) => {
    const dep = ctx.cache.get(GVK, { namespace: wm.metadata.namespace, name });
    return !(dep?.status as MigrationFields | undefined)?.cutoverTime;
  });
  const deps: StepOutcome = pending.length
    ? {
        done: false,
        reason: "DependenciesPending",
        message: `waiting for ${pending.join(", ")} to cut over`,
        requeueAfterMs: 30_000,
      }
    : {
        done: true,
        reason: "DependenciesCutOver",
        message: wm.spec.dependsOn.length ? `${wm.spec.dependsOn.join(", ")} cut over` : "no dependencies",
      };
  conditions.push(conditionOf("DependenciesCutOver", deps, generation));
  if (!deps.done && !fields.cutoverTime) {
    fields.phase = "Pending";
    return finish(deps);
  }

  const source = wm.spec.source;
  if (!source) return newWorkload(ctx, obj, wm, opts, at, fields, conditions, finish);

  // One list serves both the clusterRef lookup and the guard against any cluster's own VMs.
  const clusters = (await ctx.client.list(HOMELAB_CLUSTER)).items as unknown as HomelabCluster[];
  const cluster = clusters.find((c) => c.metadata?.name === wm.spec.clusterRef?.name);
  const proxmox = await proxmoxFor(ctx.client, wm, cluster, ctx.signal, opts.dial);
  const vm = await proxmox.locateVm(source.vmid);
  const verdict = judgeSourceVm(wm, vm, clusters);
  if (!verdict.ok) {
    const gone = verdict.absent
      ? await confirmRetired({ fields, proxmox, vmid: source.vmid, type: sourceType(source), now: at })
      : ({ state: "unexplained" } as const);
    if (gone.state === "deleting")
      return finish({
        done: false,
        reason: "Deleting",
        message: `VM ${source.vmid} is being deleted`,
        requeueAfterMs: 1_000,
      });
    if (gone.state === "retired") {
      conditions.push(
        conditionOf(
          "Retired",
          { done: true, reason: "VMDeleted", message: `VM ${source.vmid} deleted with purge` },
          generation,
        ),
      );
      fields.phase = "Decommissioned";
      return finish({ done: true, reason: "Retired", message: `VM ${source.vmid} retired` });
    }
    const refused: StepOutcome =
      gone.state === "deletedByOther"
        ? { done: false, failed: true, reason: "DeletedByOther", message: gone.message }
        : { done: false, failed: true, reason: verdict.reason, message: verdict.message };
    conditions.push(conditionOf("SourceVerified", refused, generation));
    ctx.recorder.record(obj, {
      type: "Warning",
      reason: refused.reason,
      action: "Refuse",
      note: refused.message,
    });
    fields.phase = "Failed";
    return finish(refused);
  }
  fields.proxmoxNode = verdict.vm.node;
  fields.sourceVMState ??= verdict.vm.status;
  conditions.push(
    conditionOf(
      "SourceVerified",
      {
        done: true,
        reason: "IdAndNameMatch",
        message: `${guestLabel(sourceType(source), verdict.vm.vmid)} (${verdict.vm.name}) on ${verdict.vm.node}`,
      },
      generation,
    ),
  );

  const target = await targetClusterFor(ctx.client, wm, opts.operatorNamespace, ctx.signal);
  const run: MigrationRun = {
    wm,
    obj,
    fields,
    ctx,
    target: target.client,
    local: target.local,
    helm: helmAccess(resolveHelmSetup(opts.helm), target.kubeconfig, ctx.signal),
    proxmox,
    vm: verdict.vm,
    now: at,
    save: async () => {
      await write({
        done: false,
        reason: "InProgress",
        message: "progress recorded before acting on it (a Proxmox task, the cutover)",
        requeueAfterMs: 0,
      });
    },
  };

  if (wm.spec.rollback) {
    const o = await rollBack(run);
    conditions.push(conditionOf("RolledBack", o, generation));
    if (o.done) fields.phase = "RolledBack";
    else if ("failed" in o) fields.phase = "Failed";
    return finish(o);
  }

  const stopped = await runSteps(STEPS, run, fields, conditions, generation);
  if (stopped) return finish(stopped);
  // Unreachable in practice: retire's success is seen as "VM gone" on the next reconcile.
  fields.phase = "BackedUp";
  return finish({
    done: false,
    reason: "Deleting",
    message: "waiting to see the VM gone",
    requeueAfterMs: 1_000,
  });
}

/** A new workload without a VM (the seed's Nuclei CronJob): deploy, verify and route it; nothing else. */
async function newWorkload(
  ctx: ReconcileContext,
  obj: KubeObject,
  wm: WorkloadMigration,
  opts: WorkloadMigrationControllerOptions,
  at: Date,
  fields: MigrationFields,
  conditions: ConditionInput[],
  finish: (o: StepOutcome) => Promise<ReconcileResult>,
): Promise<ReconcileResult> {
  const generation = wm.metadata.generation ?? 0;
  const target = await targetClusterFor(ctx.client, wm, opts.operatorNamespace, ctx.signal);
  const run: MigrationRun = {
    wm,
    obj,
    fields,
    ctx,
    target: target.client,
    local: target.local,
    helm: helmAccess(resolveHelmSetup(opts.helm), target.kubeconfig, ctx.signal),
    now: at,
    save: async () => {},
  };
  if (wm.spec.rollback) {
    const o = await rollBack(run);
    conditions.push(conditionOf("RolledBack", o, generation));
    if (o.done) fields.phase = "RolledBack";
    return finish(o);
  }
  const stopped = await runSteps(STEPS.slice(0, 4), run, fields, conditions, generation);
  if (stopped) return finish(stopped);
  fields.phase = "CutOver";
  return finish({
    done: true,
    reason: "Deployed",
    message: "a new workload without a source VM: deployed and live",
  });
}
