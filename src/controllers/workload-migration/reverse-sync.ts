// Rollback after cutover: stateful targets served traffic and may hold writes the VM lacks. With
// dataSync.reverseJob declared, the user's Job copies them back before the rollback completes — only
// once no target pod can write any more (every Deployment and StatefulSet target reports no replicas,
// terminating ones included where the API reports them) and the VM runs to receive them. A failed Job
// holds the rollback with the writes kept in the cluster's volumes; nothing is deleted there.
import type { KubeObject } from "../../runtime/index.ts";
import { failed, type MigrationRun, type StepOutcome, waiting } from "./step.ts";
import { deleteOwnSyncJob, runSyncJob } from "./sync.ts";
import { isOwnSyncJob, syncJobName } from "./sync-jobs.ts";
import { isStateful, type Target } from "./workloads.ts";

const JOB = { apiVersion: "batch/v1", kind: "Job" } as const;
const SCALED_KINDS: Record<string, { apiVersion: string; kind: string }> = {
  Deployment: { apiVersion: "apps/v1", kind: "Deployment" },
  StatefulSet: { apiVersion: "apps/v1", kind: "StatefulSet" },
};

interface ScaledStatus {
  replicas?: number;
  terminatingReplicas?: number;
}

/** Targets whose pods may still be running or terminating, with what their status says. */
async function stillRunning(run: MigrationRun, targets: Target[]): Promise<string[]> {
  const busy: string[] = [];
  for (const t of targets) {
    const gvk = SCALED_KINDS[t.kind];
    if (!gvk) continue;
    const live = await run.target.getOrUndefined<KubeObject>(gvk, {
      namespace: run.wm.metadata.namespace,
      name: t.name,
    });
    if (!live) continue;
    const s = (live.status ?? {}) as ScaledStatus;
    const generationSeen =
      ((live.status as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0) >=
      (live.metadata?.generation ?? 0);
    if (!generationSeen || (s.replicas ?? 0) > 0 || (s.terminatingReplicas ?? 0) > 0)
      busy.push(`${t.name} (${s.replicas ?? "?"} replica(s), ${s.terminatingReplicas ?? 0} terminating)`);
  }
  return busy;
}

export type CopyBack =
  | { state: "skipped" }
  | { state: "copied"; job: string }
  | { state: "pending"; outcome: StepOutcome };

/** Runs the reverse Job when it is due; "skipped" when there is nothing to copy back. */
export async function copyBackWrites(run: MigrationRun): Promise<CopyBack> {
  const f = run.fields;
  const stateful = run.wm.spec.targets.filter(isStateful);
  if (!run.wm.spec.dataSync.reverseJob || !f.cutoverTime || stateful.length === 0)
    return { state: "skipped" };
  const name = syncJobName(run.wm, "reverse");
  // A reverse Job made before this cutover copied an earlier rollback's writes: it goes, and a new one
  // copies what was written since this cutover.
  const live = await run.target.getOrUndefined<KubeObject>(JOB, {
    namespace: run.wm.metadata.namespace,
    name,
  });
  if (
    live &&
    isOwnSyncJob(run.wm, live) &&
    Date.parse(live.metadata?.creationTimestamp ?? "") < Date.parse(f.cutoverTime)
  ) {
    await deleteOwnSyncJob(run, "reverse");
    return {
      state: "pending",
      outcome: waiting("CopyingBack", `removing Job ${name} of an earlier rollback`, 2_000),
    };
  }
  const busy = await stillRunning(run, stateful);
  if (busy.length)
    return {
      state: "pending",
      outcome: waiting(
        "StoppingTargets",
        `waiting for the targets to stop writing before copying back: ${busy.join(", ")}`,
        2_000,
      ),
    };
  const r = await runSyncJob(run, "reverse");
  if (r.state === "running")
    return {
      state: "pending",
      outcome: waiting("CopyingBack", `${r.message} (dataSync.reverseJob: the writes since cutover)`, 2_000),
    };
  if (r.state === "taken") return { state: "pending", outcome: failed("SyncJobNameTaken", r.message) };
  if (r.state === "failed")
    return {
      state: "pending",
      outcome: failed(
        "ReverseSyncFailed",
        `${r.message}: what ${stateful.map((t) => t.name).join(", ")} wrote since ${f.cutoverTime} stays in the cluster's volumes (kept) and is not on the VM, which runs again; fix dataSync.reverseJob and change the spec to copy again`,
      ),
    };
  return { state: "copied", job: name };
}
