// Step 2: data sync, as Jobs in the target cluster. A first Job copies while the VM still serves; then
// a final Job (its services stopped first, for Rsync) copies what changed and proves the copy. The
// targets stay at zero replicas until the final Job succeeded (deploy.ts), so nothing writes into the
// volumes while they fill and nothing serves stale data; a failed Job stops the migration before
// cutover. Decided from the live Jobs every pass: a restart finds the Job it created, a Job of an
// earlier spec that failed is replaced once the spec changed, one not made by this migration is never
// trusted nor deleted (SyncJobNameTaken).
import { isAlreadyExists, type KubeObject } from "../../runtime/index.ts";
import { ownerRefs } from "./deploy.ts";
import { done, failed, type MigrationRun, type Step, type StepOutcome, waiting } from "./step.ts";
import {
  isOwnSyncJob,
  SYNC_GENERATION_ANNOTATION,
  type SyncPhase,
  syncJob,
  syncJobName,
  syncKeySecretName,
} from "./sync-jobs.ts";

const JOB = { apiVersion: "batch/v1", kind: "Job" } as const;
const SECRET = { apiVersion: "v1", kind: "Secret" } as const;

interface JobStatus {
  active?: number;
  succeeded?: number;
  failed?: number;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

export type JobOutcome =
  | { state: "running"; message: string }
  | { state: "succeeded"; message: string }
  | { state: "failed"; message: string }
  /** A Job of that name exists and is not this migration's: never deleted, never trusted. */
  | { state: "taken"; message: string };

/**
 * Deletes the sync Job of `phase` only if this migration made it, and only that very object (uid
 * precondition: a Job recreated by someone else meanwhile stays). Returns false if one not ours is there.
 */
export async function deleteOwnSyncJob(run: MigrationRun, phase: SyncPhase): Promise<boolean> {
  const key = { namespace: run.wm.metadata.namespace, name: syncJobName(run.wm, phase) };
  const live = await run.target.getOrUndefined<KubeObject>(JOB, key);
  if (!live) return true;
  if (!isOwnSyncJob(run.wm, live)) return false;
  await run.target.delete(JOB, key, {
    propagationPolicy: "Background",
    ignoreNotFound: true,
    preconditions: { uid: live.metadata!.uid! },
  });
  return true;
}

const takenMessage = (name: string) =>
  `a Job named ${name} exists and was not made by this migration (no homelab.shdr.ch/migration-uid of ours): it is left alone; delete or rename it, then change the spec to go on`;

/** The Secret the Rsync Job mounts: the user's own when the Job runs beside it, else a copy. */
async function keySecretFor(run: MigrationRun): Promise<string> {
  const ref = run.wm.spec.dataSync.ssh!.privateKeySecretRef;
  if (run.local) return ref.name;
  const source = await run.ctx.client.getOrUndefined<KubeObject & { data?: Record<string, string> }>(SECRET, {
    namespace: run.wm.metadata.namespace,
    name: ref.name,
  });
  const value = source?.data?.[ref.key];
  if (value === undefined) throw new Error(`Secret ${ref.name} has no key ${ref.key}`);
  const name = syncKeySecretName(run.wm);
  await run.target.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: run.wm.metadata.namespace,
      labels: syncJob(run.wm, "initial", name, []).metadata!.labels,
    },
    type: "Opaque",
    data: { [ref.key]: value },
  });
  return name;
}

/** Creates the Job of `phase` unless it exists, and reports how it stands. */
export async function runSyncJob(run: MigrationRun, phase: SyncPhase): Promise<JobOutcome> {
  const { wm } = run;
  const key = { namespace: wm.metadata.namespace, name: syncJobName(wm, phase) };
  const live = await run.target.getOrUndefined<KubeObject & { status?: JobStatus }>(JOB, key);
  const annotations = live?.metadata?.annotations ?? {};
  const finished = live?.status?.conditions?.find(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
  if (live && !isOwnSyncJob(wm, live)) return { state: "taken", message: takenMessage(key.name) };
  const stale =
    finished?.type === "Failed" &&
    Number(annotations[SYNC_GENERATION_ANNOTATION] ?? 0) < (wm.metadata.generation ?? 0);
  if (live && stale) {
    await deleteOwnSyncJob(run, phase);
    return { state: "running", message: `replacing Job ${key.name} (failed under an earlier spec)` };
  }
  if (!live) {
    const keySecret = wm.spec.dataSync.method === "Rsync" ? await keySecretFor(run) : "";
    // The resume and reverse Jobs of an earlier rollback must not pass for the next rollback's.
    if (phase === "final")
      for (const earlier of ["resume", "reverse"] as const)
        if (!(await deleteOwnSyncJob(run, earlier)))
          return { state: "taken", message: takenMessage(syncJobName(wm, earlier)) };
    await run.ctx.fence(`create ${phase} sync Job ${key.name}`);
    try {
      await run.target.create(syncJob(wm, phase, keySecret, ownerRefs(run)));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return { state: "running", message: `Job ${key.name} created` };
  }
  if (finished?.type === "Complete") return { state: "succeeded", message: `Job ${key.name} succeeded` };
  if (finished?.type === "Failed")
    return {
      state: "failed",
      message: `Job ${key.name} failed (${finished.reason ?? "Failed"}: ${finished.message ?? ""})`,
    };
  const s = live.status ?? {};
  return {
    state: "running",
    message: `Job ${key.name}: ${s.active ?? 0} active, ${s.failed ?? 0} failed pod(s)`,
  };
}

/**
 * The final sync stopped the VM's services (ssh.stopCommand) and then failed: the VM must go on serving
 * (nothing was cut over), so its services are started again by the resume Job before the migration
 * stops as Failed. A spec change later replaces the failed final Job, and that run removes the resume
 * Job first (runSyncJob), so the next failure resumes anew.
 */
async function afterFailedFinalSync(run: MigrationRun, why: string): Promise<StepOutcome> {
  const d = run.wm.spec.dataSync;
  const kept = "nothing was cut over and the targets stay at zero";
  if (d.method !== "Rsync")
    return failed(
      "SyncFailed",
      `${why}; ${kept}. If your Job stopped anything on the VM, start it again there (or set spec.rollback)`,
    );
  if (!d.ssh?.startCommand)
    return failed(
      "SyncFailed",
      `${why}; ${kept}. The VM's services were stopped for the final sync and no ssh.startCommand is set: start them on the VM yourself`,
    );
  const r = await runSyncJob(run, "resume");
  if (r.state === "running")
    return waiting(
      "ResumingServices",
      `${why}; ${kept}. Starting the VM's services again: ${r.message} (ssh.startCommand)`,
      2_000,
    );
  if (r.state === "taken") return failed("SyncJobNameTaken", r.message);
  if (r.state === "failed")
    return failed(
      "SyncFailed",
      `${why}; ${kept}. Starting the VM's services again failed too (${r.message}): start them on the VM`,
    );
  return failed("SyncFailed", `${why}; ${kept}. The VM's services were started again (ssh.startCommand)`);
}

export const syncStep: Step = {
  condition: "DataSynced",
  async run(run): Promise<StepOutcome> {
    const f = run.fields;
    if (run.wm.spec.dataSync.method === "None")
      return done("NoData", "dataSync.method None: nothing to copy");
    if (f.finalSyncTime) return done("Synced", `final sync succeeded at ${f.finalSyncTime}`);
    if (!f.initialSyncTime) {
      const first = await runSyncJob(run, "initial");
      if (first.state === "taken") return failed("SyncJobNameTaken", first.message);
      if (first.state === "running")
        return waiting("InitialSync", `${first.message}; the VM keeps serving`, 2_000);
      if (first.state === "failed")
        return failed("SyncFailed", `${first.message}; nothing was cut over and the VM keeps serving`);
      f.initialSyncTime = run.now.toISOString();
    }
    f.finalSyncStartedTime ??= run.now.toISOString();
    const last = await runSyncJob(run, "final");
    if (last.state === "taken") return failed("SyncJobNameTaken", last.message);
    if (last.state === "running") return waiting("FinalSync", last.message, 2_000);
    if (last.state === "failed") return await afterFailedFinalSync(run, last.message);
    f.finalSyncTime = run.now.toISOString();
    return done("Synced", `${last.message}; final sync at ${f.finalSyncTime}, the targets start now`);
  },
};
