// Step 6: vzdump of the stopped VM to the declared storage, then proof that the archive is there. The
// task id goes into status before anything waits on it; a backup already in the storage from after
// the stop is adopted instead of taking a second one.

import { parseUpid } from "../../proxmox/index.ts";
import { guestLabel, TASK_TYPES } from "./guest.ts";
import { pollTask, taskAbout } from "./proxmox-tasks.ts";
import { done, type Step, sourceOf, waiting } from "./step.ts";

const RETRY_MS = 60_000;

export const backupStep: Step = {
  condition: "BackedUp",
  async run(run) {
    const f = run.fields;
    const { vm, proxmox, vmid, type } = sourceOf(run);
    const label = guestLabel(type, vmid);
    const backup = run.wm.spec.decommission.backup;
    if (!backup) return waiting("NotRequested", "no decommission.backup: the VM is never deleted", 3_600_000);
    if (f.backupVolumeID) return done("BackupVerified", `backup ${f.backupVolumeID} exists`);
    const archives = async (sinceSeconds: number) =>
      (await proxmox.storageContent(vm.node, backup.storage, { content: "backup", vmid }))
        .filter((v) => v.vmid === vmid && (v.ctime ?? 0) >= sinceSeconds)
        .sort((a, b) => (b.ctime ?? 0) - (a.ctime ?? 0));
    if (f.backupTask) {
      const t = await pollTask(proxmox, f.backupTask);
      if (t.running) return waiting("BackingUp", `vzdump task ${f.backupTask} running`, 2_000);
      const started = parseUpid(f.backupTask).starttime;
      f.backupTask = undefined;
      if (!t.ok) {
        f.backupFailedTime = run.now.toISOString();
        return waiting("BackupFailed", `vzdump ended with ${t.exitstatus}; retrying in a minute`, RETRY_MS);
      }
      const [archive] = await archives(started);
      if (!archive) {
        f.backupFailedTime = run.now.toISOString();
        return waiting(
          "BackupMissing",
          `vzdump said ${t.exitstatus} but ${backup.storage} holds no archive of ${label}; retrying in a minute`,
          RETRY_MS,
        );
      }
      f.backupVolumeID = archive.volid;
      f.backupFailedTime = undefined;
      return done(
        "BackupVerified",
        `backup ${archive.volid} (${archive.size} bytes) exists in ${backup.storage}`,
      );
    }
    // A failed vzdump is retried a minute later: the status write that reports it wakes this again at
    // once, and a full datastore would otherwise get a new backup many times a second.
    const retryAt = f.backupFailedTime ? Date.parse(f.backupFailedTime) + RETRY_MS : 0;
    if (run.now.getTime() < retryAt)
      return waiting(
        "BackupFailed",
        `the last vzdump failed; retrying at ${new Date(retryAt).toISOString()}`,
        retryAt - run.now.getTime() + 100,
      );
    const since = Math.floor(Date.parse(f.stoppedTime ?? run.now.toISOString()) / 1000);
    const [adopted] = await archives(since);
    if (adopted) {
      f.backupVolumeID = adopted.volid;
      return done(
        "BackupVerified",
        `backup ${adopted.volid} (taken after the stop) exists in ${backup.storage}`,
      );
    }
    const inFlight = await taskAbout(proxmox, vm.node, TASK_TYPES[type].backup, vmid, "active");
    if (inFlight) {
      f.backupTask = inFlight.upid;
      return waiting("BackingUp", `vzdump task ${inFlight.upid} already running`, 2_000);
    }
    await run.ctx.fence(`vzdump ${label}`);
    const upid = await proxmox.backup(vm.node, { vmid, storage: backup.storage, mode: backup.mode });
    f.backupTask = upid.raw;
    await run.save();
    return waiting("BackingUp", `vzdump of ${label} to ${backup.storage} started (task ${upid.raw})`, 2_000);
  },
};
