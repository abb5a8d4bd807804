// The window a kill -9 can hit: Proxmox accepted a shutdown, vzdump or delete, and the operator died
// before saving the task's id in status. Against the Proxmox simulator, each step run again with that
// id missing must find the task Proxmox is running and wait on it, never ask a second time.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProxmoxClient, parseUpid } from "../../proxmox/index.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "../../proxmox/simulator/test-support.ts";
import { askedAbout, decommissionOf, runOf as runStep } from "./adopt-task-support.ts";
import { backupStep } from "./backup.ts";
import { confirmRetired, retireStep } from "./retire.ts";
import type { MigrationFields } from "./step.ts";
import { stopVmStep } from "./stop-vm.ts";

const VMID = 1010;
let s: SimulatorWithClient;

beforeEach(async () => {
  s = await startSimulatorWithClient({
    nodes: ["niobe"],
    storages: [
      { storage: "ceph-vm-disks", type: "rbd", content: ["images"], shared: true, total: 2 ** 40 },
      { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 2 ** 40 },
    ],
    taskDurationMs: { default: 20, qmshutdown: 1_500, hastop: 1_500, vzdump: 1_500, qmdestroy: 1_500 },
  });
  await s.client.waitForTask(
    await s.client.createVm("niobe", VMID, { name: "ups-stack", memory: 1024, scsi0: "ceph-vm-disks:8" }),
  );
  await s.client.waitForTask(await s.client.start("niobe", VMID));
});
afterEach(async () => {
  await s.stop();
});

const wm = decommissionOf(VMID, "ups-stack");
const runOf = (fields: MigrationFields) => runStep(s, wm, fields);
const asked = (kind: string, action?: string) => askedAbout(s, VMID, kind, action);

describe("a Proxmox task started by an operator that died before saving its id", () => {
  it("shutdown: adopted while it runs, not sent again", async () => {
    const upid = await s.client.shutdown("niobe", VMID, { timeoutSeconds: 180, forceStop: true });
    const fields: MigrationFields = {};
    const o = await stopVmStep.run(await runOf(fields));
    expect(o).toMatchObject({ done: false, reason: "ShuttingDown" });
    expect(fields.stopTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    expect(await stopVmStep.run(await runOf(fields))).toMatchObject({ done: true, reason: "Stopped" });
    expect(asked("power", "shutdown")).toHaveLength(1);
  });

  it("shutdown of a guest HA manages (Proxmox answers with an hastop task): adopted, not sent again", async () => {
    await s.client.addHaResource({ sid: `vm:${VMID}`, state: "started" });
    const upid = await s.client.shutdown("niobe", VMID, { timeoutSeconds: 180, forceStop: true });
    expect(parseUpid(upid.raw).type).toBe("hastop");
    const fields: MigrationFields = {};
    const o = await stopVmStep.run(await runOf(fields));
    expect(o).toMatchObject({ done: false, reason: "ShuttingDown" });
    expect(fields.stopTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    expect(await stopVmStep.run(await runOf(fields))).toMatchObject({ done: true, reason: "Stopped" });
    expect(asked("power", "shutdown")).toHaveLength(1);
  });

  it("vzdump: adopted while it runs, its archive verified, no second backup", async () => {
    await s.client.waitForTask(await s.client.stop("niobe", VMID));
    const fields: MigrationFields = { stoppedTime: new Date(Date.now() - 1_000).toISOString() };
    const upid = await s.client.backup("niobe", { vmid: VMID, storage: "pbs", mode: "stop" });
    const o = await backupStep.run(await runOf(fields));
    expect(o).toMatchObject({ done: false, reason: "BackingUp" });
    expect(fields.backupTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    expect(await backupStep.run(await runOf(fields))).toMatchObject({ done: true, reason: "BackupVerified" });
    expect(asked("backup")).toHaveLength(1);
  });

  it("delete: adopted while it runs, and once the VM is gone it counts as retired", async () => {
    await s.client.waitForTask(await s.client.stop("niobe", VMID));
    const fields: MigrationFields = {
      backupVolumeID: "pbs:backup/vm/1010/2026-01-01T00:00:00Z",
      deleteAfterTime: new Date(Date.now() - 2_000).toISOString(),
      proxmoxNode: "niobe",
    };
    const upid = await s.client.deleteVm("niobe", VMID, { purge: true, destroyUnreferencedDisks: true });
    const o = await retireStep.run(await runOf(fields));
    expect(o).toMatchObject({ done: false, reason: "Deleting" });
    expect(fields.deleteTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    // Even with the id lost a second time, the finished task in the node's list explains the absence.
    const lost: MigrationFields = { ...fields, deleteTask: undefined };
    expect(
      await confirmRetired({ fields: lost, proxmox: s.client, vmid: VMID, type: "qemu", now: new Date() }),
    ).toEqual({
      state: "retired",
    });
    expect(asked("vm-delete")).toHaveLength(1);
  });

  it("a delete run by another Proxmox user after the grace period is not ours: deletedByOther, not retired", async () => {
    const other = {
      tokenId: "admin@pam!by-hand",
      secret: "by-hand-secret",
      acl: { "/": ["VM.Allocate", "VM.PowerMgmt", "Sys.Audit"] },
    };
    s.sim.addToken(other);
    const byHand = new ProxmoxClient({
      url: s.sim.url,
      tokenId: other.tokenId,
      tokenSecret: other.secret,
      tls: { caPem: s.sim.caPem },
    });
    try {
      await byHand.waitForTask(await byHand.stop("niobe", VMID));
      const fields: MigrationFields = {
        backupVolumeID: "pbs:backup/vm/1010/x",
        deleteAfterTime: new Date(Date.now() - 60_000).toISOString(),
        proxmoxNode: "niobe",
      };
      const upid = await byHand.deleteVm("niobe", VMID, { purge: true });
      // While it runs with the VM still there, the retire step does not adopt it as its own (its own
      // delete is refused by Proxmox's lock, and the reconcile retries).
      await expect(retireStep.run(await runOf(fields))).rejects.toThrow(/locked/);
      expect(fields.deleteTask).toBeUndefined();
      await byHand.waitForTask(upid);
      expect(parseUpid(upid.raw).user).toBe("admin@pam!by-hand");
      const v = await confirmRetired({
        fields,
        proxmox: s.client,
        vmid: VMID,
        type: "qemu",
        now: new Date(),
      });
      expect(v.state).toBe("deletedByOther");
      expect(v.state === "deletedByOther" && v.message).toContain("admin@pam!by-hand");
      expect(fields.deleteTask).toBeUndefined();
      expect(fields.retiredTime).toBeUndefined();
    } finally {
      await byHand.close();
    }
  });

  it("an absent VM with no delete of ours in the task list stays unexplained", async () => {
    await s.client.waitForTask(await s.client.stop("niobe", VMID));
    const upid = await s.client.deleteVm("niobe", VMID, { purge: true });
    await s.client.waitForTask(upid);
    // Deleted before this migration's grace period began: not ours.
    const fields: MigrationFields = {
      backupVolumeID: "pbs:backup/vm/1010/x",
      deleteAfterTime: new Date(Date.now() + 60_000).toISOString(),
      proxmoxNode: "niobe",
    };
    expect(
      await confirmRetired({ fields, proxmox: s.client, vmid: VMID, type: "qemu", now: new Date() }),
    ).toEqual({
      state: "unexplained",
    });
  });
});
