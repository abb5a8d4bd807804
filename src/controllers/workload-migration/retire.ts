// Step 7: the VM is deleted only with a verified backup, after deleteAfterTime, and with the
// approve-retirement annotation; decided from this reconcile's live read (id and name matched, VM
// stopped). HA is removed first, then the VM with purge. What it freed is recorded before the delete,
// because afterwards nothing is left to read it from.

import { type ProxmoxClient, parseUpid } from "../../proxmox/index.ts";
import { approvalWanted, retirementApproval } from "./approval.ts";
import { deleteGuest, type GuestType, guestLabel, haSidOf, TASK_TYPES } from "./guest.ts";
import { APPROVE_RETIREMENT } from "./names.ts";
import { haResourceOf, pollTask, taskAbout } from "./proxmox-tasks.ts";
import { type MigrationFields, type Step, sourceOf, waiting } from "./step.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export const retireStep: Step = {
  condition: "Retired",
  async run(run) {
    const f = run.fields;
    const { vm, proxmox, vmid, type } = sourceOf(run);
    const label = guestLabel(type, vmid);
    const d = run.wm.spec.decommission;
    if (!d.deleteAfter || !f.deleteAfterTime)
      return waiting("NotRequested", "decommission.deleteAfter unset: the VM is kept", 3_600_000);
    if (!f.backupVolumeID) return waiting("NoBackup", "no verified backup yet");
    const due = Date.parse(f.deleteAfterTime);
    if (run.now.getTime() < due)
      return waiting(
        "GracePeriod",
        `the VM may be deleted from ${f.deleteAfterTime}`,
        Math.min(due - run.now.getTime() + 500, 3_600_000),
      );
    if (d.requireApproval) {
      const a = retirementApproval(run.obj, f);
      if (!a.approved) return waiting("AwaitingApproval", approvalWanted(f, APPROVE_RETIREMENT), 3_600_000);
      f.approvedBy = a.by;
    }
    if (vm.status !== "stopped")
      return waiting("VMRunning", `${label} is ${vm.status} again; it is deleted only while stopped`, 30_000);
    if (f.deleteTask) {
      const t = await pollTask(proxmox, f.deleteTask);
      if (t.running) return waiting("Deleting", `delete task ${f.deleteTask} running`, 2_000);
      if (!t.ok) {
        f.deleteTask = undefined;
        return waiting("DeleteFailed", `deleting ${label} ended with ${t.exitstatus}; retrying`, 30_000);
      }
      // Kept: the next reconcile sees the VM gone and needs this task's success to call it retired.
      return waiting("Deleting", `delete task ended; waiting to see ${label} gone`, 1_000);
    }
    // Only our own token's delete is adopted: one someone else runs is not this migration's retirement.
    const inFlight = await taskAbout(
      proxmox,
      vm.node,
      TASK_TYPES[type].destroy,
      vmid,
      "active",
      proxmox.transport.tokenId,
    );
    if (inFlight) {
      f.deleteTask = inFlight.upid;
      return waiting("Deleting", `delete task ${inFlight.upid} already running`, 2_000);
    }
    f.ramFreedMiB = Math.round((vm.maxmem ?? 0) / MiB);
    f.diskFreedGiB = Math.round(((vm.maxdisk ?? 0) / GiB) * 10) / 10;
    // Saved before the delete: once the VM is gone nothing is left to read them from.
    await run.save();
    const ha = await haResourceOf(proxmox, haSidOf(type, vmid));
    if (ha) {
      await run.ctx.fence(`remove HA resource of ${label}`);
      await proxmox.deleteHaResource(ha.sid);
    }
    await run.ctx.fence(`delete ${label} (${run.wm.spec.source!.name})`);
    const upid = await deleteGuest(proxmox, type, vm.node, vmid, {
      purge: true,
      destroyUnreferencedDisks: true,
    });
    f.deleteTask = upid.raw;
    await run.save();
    return waiting("Deleting", `${label} delete requested (task ${upid.raw})`, 2_000);
  },
};

export type GoneVerdict =
  | { state: "retired" | "deleting" | "unexplained" }
  /** A qmdestroy/vzdestroy of the guest by another Proxmox user (by hand, another tool): not retired by us. */
  | { state: "deletedByOther"; message: string };

/**
 * Called when the VM is gone: "retired" only if our own delete task ended well, "deleting" while it
 * still runs (the VM vanishes before the task reports), "deletedByOther" when the node lists a delete
 * by another Proxmox user, "unexplained" otherwise.
 */
export async function confirmRetired(run: {
  fields: MigrationFields;
  proxmox: ProxmoxClient;
  vmid: number;
  /** The guest type the migration names: its delete task is qmdestroy (VM) or vzdestroy (container). */
  type: GuestType;
  now: Date;
}): Promise<GoneVerdict> {
  const f = run.fields;
  // The operator may have died between asking for the delete and saving the task's id: the node's task
  // list still names it. Only a migration that got as far as a verified backup and the grace period
  // could have asked, so only such a one looks; and only a delete run as this operator's own token
  // (the UPID's user, as Proxmox wrote it) is ours: one run by hand after the grace period is not.
  if (!f.deleteTask && f.proxmoxNode) {
    const destroy = TASK_TYPES[run.type].destroy;
    const deletes = await run.proxmox.listTasks(f.proxmoxNode, {
      source: "all",
      typefilter: destroy,
      vmid: run.vmid,
    });
    const about = deletes.filter((t) => t.type === destroy && t.id === String(run.vmid));
    const self = run.proxmox.transport.tokenId;
    const since = f.deleteAfterTime
      ? Math.floor(Date.parse(f.deleteAfterTime) / 1000)
      : Number.POSITIVE_INFINITY;
    const ours = about.find((t) => parseUpid(t.upid).user === self && parseUpid(t.upid).starttime >= since);
    if (ours && f.backupVolumeID) f.deleteTask = ours.upid;
    else {
      const other = about.find((t) => parseUpid(t.upid).user !== self);
      if (other) {
        const u = parseUpid(other.upid);
        return {
          state: "deletedByOther",
          message: `${guestLabel(run.type, run.vmid)} was deleted by Proxmox user ${u.user} at ${new Date(u.starttime * 1000).toISOString()} (task ${other.upid}), not by this migration: it is not retired by it, and no backup of this migration may exist`,
        };
      }
    }
  }
  if (!f.deleteTask) return { state: "unexplained" };
  const t = await pollTask(run.proxmox, f.deleteTask);
  if (t.running) return { state: "deleting" };
  if (!t.ok) return { state: "unexplained" };
  f.deleteTask = undefined;
  f.retiredTime = run.now.toISOString();
  return { state: "retired" };
}
