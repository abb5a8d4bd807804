// What every phase module shares: the run it works on and the outcome it reports. A phase reads status
// and live state, acts at most once, and says whether the migration may go on.

import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { ProxmoxClient, VmResource } from "../../proxmox/index.ts";
import type { KubeClient, KubeObject, ReconcileContext } from "../../runtime/index.ts";
import { type GuestType, sourceType } from "./guest.ts";
import type { HelmAccess } from "./helm-release.ts";
import type { StepCondition } from "./names.ts";

/** The status fields this controller owns, carried from one reconcile to the next. */
export interface MigrationFields {
  phase?: string;
  proxmoxNode?: string;
  sourceVMState?: string;
  targets?: { name: string; ready: boolean; message?: string }[];
  verifyStartedTime?: string;
  verifyPasses?: number;
  verifiedTime?: string;
  cutoverTime?: string;
  deleteAfterTime?: string;
  stoppedTime?: string;
  stopTask?: string;
  backupTask?: string;
  backupVolumeID?: string;
  backupFailedTime?: string;
  approvedBy?: string;
  deleteTask?: string;
  startTask?: string;
  ramFreedMiB?: number;
  diskFreedGiB?: number;
  retiredTime?: string;
  rollbackMessage?: string;
  initialSyncTime?: string;
  finalSyncStartedTime?: string;
  finalSyncTime?: string;
  rollbackSyncNote?: string;
  rolledBackTime?: string;
  /** Approve annotations set when the rollback completed; void until seen removed (approval.ts). */
  staleApprovals?: string[];
}

export interface MigrationRun {
  wm: WorkloadMigration;
  /** The same object as the API holds it (metadata.managedFields included), for status writes. */
  obj: KubeObject;
  fields: MigrationFields;
  ctx: ReconcileContext;
  /** Client of the cluster the targets run in (the management cluster's own when no clusterRef). */
  target: KubeClient;
  /** True when the targets run in the cluster that holds the WorkloadMigration (owner references work). */
  local: boolean;
  /** Absent for a new workload without a source VM (then no step that needs one runs). */
  proxmox?: ProxmoxClient;
  /** The VM as read live this reconcile (id and name already checked); absent without a source VM. */
  vm?: VmResource;
  now: Date;
  /** Helm bound to the target cluster, for HelmRelease targets (helm-release.ts). */
  helm?: HelmAccess;
  /** Persists the status now: called right after a once-only Proxmox call, before waiting on it. */
  save(): Promise<void>;
}

export type StepOutcome =
  | { done: true; reason: string; message: string }
  | { done: false; reason: string; message: string; requeueAfterMs: number }
  /** The migration stops here until someone changes the spec; the VM is left as it is. */
  | { done: false; failed: true; reason: string; message: string };

export interface Step {
  condition: StepCondition;
  run(run: MigrationRun): Promise<StepOutcome>;
}

export const done = (reason: string, message: string): StepOutcome => ({ done: true, reason, message });
export const waiting = (reason: string, message: string, requeueAfterMs = 5_000): StepOutcome => ({
  done: false,
  reason,
  message,
  requeueAfterMs,
});
export const failed = (reason: string, message: string): StepOutcome => ({
  done: false,
  failed: true,
  reason,
  message,
});

/**
 * The source VM's steps run only after the live check found it (its type, id and name matching the
 * spec); this makes that a type-level fact. `type` picks the endpoints every step uses (guest.ts).
 */
export function sourceOf(run: MigrationRun): {
  vm: VmResource;
  proxmox: ProxmoxClient;
  vmid: number;
  type: GuestType;
} {
  if (!run.vm || !run.proxmox || !run.wm.spec.source) throw new Error("this step needs the source VM");
  return {
    vm: run.vm,
    proxmox: run.proxmox,
    vmid: run.wm.spec.source.vmid,
    type: sourceType(run.wm.spec.source),
  };
}
