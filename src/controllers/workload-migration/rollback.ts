// Rollback (spec.rollback, any time before the VM is deleted): the routes go, the targets scale to
// zero, the VM runs again (HA back to started). It says plainly when stateful targets served traffic
// after cutover: what they wrote stays in the cluster, and reaches the VM only by a declared
// dataSync.reverseJob (reverse-sync.ts), which runs before the VM's services are started again.
import { ApiError, describeError, isNotFound, type KubeObject } from "../../runtime/index.ts";
import { voidApprovals } from "./approval.ts";
import { ownerRefs } from "./deploy.ts";
import { guestLabel, HA_TASK_TYPES, haSidOf, startGuest, TASK_TYPES } from "./guest.ts";
import { rollBackHelmTargets } from "./helm-release.ts";
import { isKnative, knativeRollbackNote, withdrawKnative } from "./knative-service.ts";
import { APPROVE_CUTOVER, APPROVE_RETIREMENT, MIGRATION_LABEL } from "./names.ts";
import { haResourceOf, pollTask, taskAbout } from "./proxmox-tasks.ts";
import { copyBackWrites } from "./reverse-sync.ts";
import { done, failed, type MigrationRun, type StepOutcome, sourceOf, waiting } from "./step.ts";
import { deleteOwnSyncJob, runSyncJob } from "./sync.ts";
import { isOwnSyncJob, syncJobName } from "./sync-jobs.ts";

const SYNC_JOB = { apiVersion: "batch/v1", kind: "Job" } as const;

import { isStateful, routeFor, servesTraffic, workloadObjects } from "./workloads.ts";

/**
 * Routes off and targets stopped in the target cluster. Workloads are scaled down only where they exist
 * and are this migration's (labelled by it): a deploy cut off half-way left some and not others, and
 * applying a missing one would create it.
 */
async function withdrawTargets(run: MigrationRun): Promise<void> {
  for (const t of run.wm.spec.targets.filter(servesTraffic).filter((t) => !isKnative(t))) {
    const route = routeFor(run.wm, t, []);
    try {
      await run.target.delete(
        { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" },
        {
          namespace: route.metadata!.namespace!,
          name: route.metadata!.name!,
        },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  // Only the size changes (a patch, not the whole spec again): a spec the API server now refuses, say an
  // edited immutable selector, must not keep the targets running. One JSON patch per workload whose
  // first operation tests for this migration's label: a missing workload (404, a patch never creates)
  // or one not ours (422, the test fails) is left as it is.
  for (const t of run.wm.spec.targets.filter((t) => !isKnative(t)))
    for (const o of workloadObjects(run.wm, t, 0, ownerRefs(run))) {
      const stop = o.kind ? STOPPED[o.kind] : undefined;
      if (!stop) continue;
      try {
        await run.target.patch(
          { apiVersion: o.apiVersion!, kind: o.kind! },
          { namespace: o.metadata!.namespace!, name: o.metadata!.name! },
          [
            {
              op: "test",
              path: `/metadata/labels/${MIGRATION_LABEL.replace("/", "~1")}`,
              value: run.wm.metadata.name,
            },
            { op: "add", path: stop.path, value: stop.value },
          ],
          "json",
        );
      } catch (err) {
        if (!(err instanceof ApiError) || (err.code !== 404 && err.code !== 422)) throw err;
      }
    }
  // Knative has no zero-pod state to keep a Service in: ours are deleted, DomainMappings first.
  await withdrawKnative(run);
  await rollBackHelmTargets(run, true);
}

/** What a stopped workload of each kind looks like (a CronJob keeps its schedule, suspended). */
const STOPPED: Record<string, { path: string; value: unknown }> = {
  Deployment: { path: "/spec/replicas", value: 0 },
  StatefulSet: { path: "/spec/replicas", value: 0 },
  CronJob: { path: "/spec/suspend", value: true },
};

export async function rollBack(run: MigrationRun): Promise<StepOutcome> {
  const f = run.fields;
  try {
    await withdrawTargets(run);
  } catch (err) {
    // The VM is not started while the cluster may still serve or write (two writers, two answers for
    // one hostname): said as a Condition and retried, rather than a reconcile error nobody reads.
    return waiting(
      "TargetsNotWithdrawn",
      `could not remove the routes and stop the targets in the target cluster (${describeError(err)}); the VM is left as it is until they are`,
      15_000,
    );
  }
  if (!run.vm) {
    f.rollbackMessage = `Routes removed and targets scaled to zero (no source VM to start).${knativeRollbackNote(run.wm)}`;
    forgetProgress(run);
    return done("RolledBack", f.rollbackMessage);
  }
  const { vm, proxmox, vmid, type } = sourceOf(run);
  const label = guestLabel(type, vmid);
  const ha = await haResourceOf(proxmox, haSidOf(type, vmid));
  if (ha && ha.state !== "started") {
    await run.ctx.fence(`set HA state started for ${label}`);
    await proxmox.updateHaResource(ha.sid, { state: "started" });
  }
  if (vm.status !== "running") {
    if (f.startTask) {
      const t = await pollTask(proxmox, f.startTask);
      if (t.running) return waiting("Starting", `start task ${f.startTask} running`, 2_000);
      f.startTask = undefined;
      if (!t.ok) return failed("StartFailed", `starting ${label} ended with ${t.exitstatus}`);
      return waiting("Starting", `start task ended; waiting to see ${label} running`, 1_000);
    }
    const inFlight =
      (await taskAbout(proxmox, vm.node, TASK_TYPES[type].start, vmid, "active")) ??
      (ha ? await taskAbout(proxmox, vm.node, HA_TASK_TYPES.start, vmid, "active") : undefined);
    if (inFlight) {
      f.startTask = inFlight.upid;
      return waiting("Starting", `start task ${inFlight.upid} already running`, 2_000);
    }
    await run.ctx.fence(`start ${label} (rollback)`);
    const upid = await startGuest(proxmox, type, vm.node, vmid);
    f.startTask = upid.raw;
    await run.save();
    return waiting("Starting", `${label} start requested (task ${upid.raw})`, 2_000);
  }
  f.startTask = undefined;
  // Said once, when it completes: later passes no longer know the cutover time (forgetProgress).
  if (f.phase === "RolledBack" && f.rollbackMessage) return done("RolledBack", f.rollbackMessage);
  const copied = await copyBackWrites(run);
  if (copied.state === "pending") return copied.outcome;
  const resumed = await resumeServices(run);
  if (resumed) return resumed;
  const stateful = run.wm.spec.targets.filter(isStateful).map((t) => t.name);
  const writes =
    f.cutoverTime && stateful.length
      ? copied.state === "copied"
        ? ` Targets ${stateful.join(", ")} are stateful and served traffic from ${f.cutoverTime}: what they wrote since was copied back to the VM by Job ${copied.job} (dataSync.reverseJob) and also stays in the cluster's volumes.`
        : ` Targets ${stateful.join(", ")} are stateful and served traffic from ${f.cutoverTime}: what they wrote since stays in the cluster's volumes and is NOT on the VM (declare dataSync.reverseJob to copy it back).`
      : "";
  f.rollbackMessage = `Routes removed, targets scaled to zero, ${label} running on ${vm.node}.${knativeRollbackNote(run.wm)}${writes}${f.rollbackSyncNote ?? ""}`;
  forgetProgress(run);
  return done("RolledBack", f.rollbackMessage);
}

/**
 * The rollback is complete: what was verified, cut over, stopped and backed up describes a VM that runs
 * and writes again, so a migration taken up again verifies anew, routes only after a fresh cutover
 * approval, stops the VM again and backs it up again (an archive from before now lacks what it writes
 * from here on); the grace period counts from the new cutover, and the approvals set now count only
 * once removed and set again. Clearing is idempotent; the time and the void approvals are taken on the
 * first pass that completes (the phase is not yet RolledBack), so a rollback left set keeps them.
 */
function forgetProgress(run: MigrationRun): void {
  const f = run.fields;
  f.verifyStartedTime = undefined;
  f.verifyPasses = undefined;
  f.verifiedTime = undefined;
  f.cutoverTime = undefined;
  f.deleteAfterTime = undefined;
  f.stoppedTime = undefined;
  f.stopTask = undefined;
  f.backupTask = undefined;
  f.backupVolumeID = undefined;
  f.backupFailedTime = undefined;
  f.approvedBy = undefined;
  f.ramFreedMiB = undefined;
  f.diskFreedGiB = undefined;
  if (f.phase !== "RolledBack") {
    f.rolledBackTime = run.now.toISOString();
    voidApprovals(run.obj, f, [APPROVE_CUTOVER, APPROVE_RETIREMENT]);
  }
}

/**
 * After the final sync began, the VM's services were stopped over SSH: a resume Job runs
 * ssh.startCommand once the VM runs. Then the sync Jobs go and the sync is forgotten, so a migration
 * taken up again copies anew (what the VM wrote since would otherwise be lost). Undefined when done.
 */
/**
 * A final sync still running (its pod perhaps not yet past ssh.stopCommand) could stop the VM's
 * services after the resume Job started them: it is deleted first, in the foreground, so the Job stays
 * until its pods are gone, and the resume waits for that.
 */
async function stopRunningFinalSync(run: MigrationRun): Promise<StepOutcome | undefined> {
  const key = { namespace: run.wm.metadata.namespace, name: syncJobName(run.wm, "final") };
  const job = await run.target.getOrUndefined<
    KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
  >(SYNC_JOB, key);
  if (!job || !isOwnSyncJob(run.wm, job)) return undefined;
  const finished = job.status?.conditions?.some(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
  if (finished) return undefined;
  if (!job.metadata?.deletionTimestamp)
    await run.target.delete(SYNC_JOB, key, {
      propagationPolicy: "Foreground",
      ignoreNotFound: true,
      preconditions: { uid: job.metadata!.uid! },
    });
  return waiting(
    "StoppingFinalSync",
    `Job ${key.name} (the final sync) is still running: stopped before the VM's services are started again`,
    2_000,
  );
}

async function resumeServices(run: MigrationRun): Promise<StepOutcome | undefined> {
  const f = run.fields;
  const d = run.wm.spec.dataSync;
  if (d.method === "None" || !(f.initialSyncTime || f.finalSyncStartedTime)) return undefined;
  if (f.finalSyncStartedTime && d.method === "Rsync" && d.ssh?.startCommand) {
    const stopping = await stopRunningFinalSync(run);
    if (stopping) return stopping;
    const r = await runSyncJob(run, "resume");
    if (r.state === "running")
      return waiting("ResumingServices", `${r.message} (ssh.startCommand on the VM)`, 2_000);
    if (r.state === "taken") return failed("SyncJobNameTaken", r.message);
    if (r.state === "failed")
      return failed(
        "ResumeFailed",
        `${r.message}: the VM runs but its services stopped for the final sync may not; start them on the VM`,
      );
  }
  const note =
    f.finalSyncStartedTime && !(d.method === "Rsync" && d.ssh?.startCommand)
      ? " The final sync had begun and no ssh.startCommand is set: start the services it stopped on the VM yourself."
      : f.finalSyncStartedTime
        ? " The VM's services were started again (ssh.startCommand)."
        : "";
  // The resume Job stays as the record of what ran; the next final sync removes it (sync.ts).
  // Only Jobs this migration made (one of the same name made by someone else stays).
  for (const phase of ["initial", "final"] as const) await deleteOwnSyncJob(run, phase);
  f.initialSyncTime = undefined;
  f.finalSyncStartedTime = undefined;
  f.finalSyncTime = undefined;
  f.rollbackSyncNote = note;
  return undefined;
}
