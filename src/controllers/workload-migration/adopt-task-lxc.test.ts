// The kill -9 window for a container source: Proxmox accepted a vzshutdown, vzdump, vzdestroy or
// vzstart and the operator died before saving the task's id. Each step, run again without the id,
// must find the container's task (its own task type, not qemu's) and wait on it, never ask twice.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type SimulatorWithClient, startSimulatorWithClient } from "../../proxmox/simulator/test-support.ts";
import { askedAbout, decommissionOf, runOf as runStep } from "./adopt-task-support.ts";
import { backupStep } from "./backup.ts";
import { confirmRetired, retireStep } from "./retire.ts";
import type { MigrationFields } from "./step.ts";
import { stopVmStep } from "./stop-vm.ts";

const CTID = 1100;
const TEMPLATE = "cephfs:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";
let s: SimulatorWithClient;

beforeEach(async () => {
  s = await startSimulatorWithClient({
    nodes: ["trinity"],
    storages: [
      { storage: "cephfs", type: "cephfs", content: ["vztmpl"], shared: true, total: 2 ** 40 },
      { storage: "ceph-vm-disks", type: "rbd", content: ["images", "rootdir"], shared: true, total: 2 ** 40 },
      { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 2 ** 40 },
    ],
    taskDurationMs: { default: 20, vzshutdown: 1_500, vzdump: 1_500, vzdestroy: 1_500 },
  });
  await s.client.waitForTask(
    await s.client.downloadUrl("trinity", "cephfs", {
      url: "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
      content: "vztmpl",
      filename: "debian-12-standard_12.7-1_amd64.tar.zst",
    }),
  );
  await s.client.waitForTask(
    await s.client.createContainer(
      "trinity",
      CTID,
      { ostemplate: TEMPLATE, hostname: "smallweb", memory: 512, rootfs: "ceph-vm-disks:4", unprivileged: 1 },
      { start: true },
    ),
  );
});
afterEach(async () => {
  await s.stop();
});

const wm = decommissionOf(CTID, "smallweb", "lxc");
const runOf = (fields: MigrationFields) => runStep(s, wm, fields);
const asked = (kind: string, action?: string) => askedAbout(s, CTID, kind, action);

describe("a container task started by an operator that died before saving its id", () => {
  it("vzshutdown: adopted while it runs, not sent again", async () => {
    const upid = await s.client.shutdownContainer("trinity", CTID, { timeoutSeconds: 180, forceStop: true });
    const fields: MigrationFields = {};
    expect(await stopVmStep.run(await runOf(fields))).toMatchObject({ done: false, reason: "ShuttingDown" });
    expect(fields.stopTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    expect(await stopVmStep.run(await runOf(fields))).toMatchObject({ done: true, reason: "Stopped" });
    expect(asked("power", "shutdown")).toHaveLength(1);
  });

  it("a fresh stop step shuts the container down with vzshutdown (not qm's endpoint)", async () => {
    const fields: MigrationFields = {};
    await stopVmStep.run(await runOf(fields));
    expect(fields.stopTask).toMatch(/:vzshutdown:1100:/);
  });

  it("vzdump: adopted, its vzdump-lxc archive verified, no second backup", async () => {
    await s.client.waitForTask(await s.client.stopContainer("trinity", CTID));
    const fields: MigrationFields = { stoppedTime: new Date(Date.now() - 1_000).toISOString() };
    const upid = await s.client.backup("trinity", { vmid: CTID, storage: "pbs", mode: "stop" });
    expect(await backupStep.run(await runOf(fields))).toMatchObject({ done: false, reason: "BackingUp" });
    expect(fields.backupTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    expect(await backupStep.run(await runOf(fields))).toMatchObject({ done: true, reason: "BackupVerified" });
    expect(fields.backupVolumeID).toMatch(/^pbs:backup\/vzdump-lxc-1100-/);
    expect(asked("backup")).toHaveLength(1);
  });

  it("vzdestroy: adopted while it runs, and once the container is gone it counts as retired", async () => {
    await s.client.waitForTask(await s.client.stopContainer("trinity", CTID));
    const fields: MigrationFields = {
      backupVolumeID: "pbs:backup/vzdump-lxc-1100-2026_01_01-00_00_00.tar.zst",
      deleteAfterTime: new Date(Date.now() - 2_000).toISOString(),
      proxmoxNode: "trinity",
    };
    const upid = await s.client.deleteContainer("trinity", CTID, { purge: true });
    expect(await retireStep.run(await runOf(fields))).toMatchObject({ done: false, reason: "Deleting" });
    expect(fields.deleteTask).toBe(upid.raw);
    await s.client.waitForTask(upid);
    const lost: MigrationFields = { ...fields, deleteTask: undefined };
    expect(
      await confirmRetired({ fields: lost, proxmox: s.client, vmid: CTID, type: "lxc", now: new Date() }),
    ).toEqual({ state: "retired" });
    // Looked up as a VM's delete (qmdestroy), the same record explains nothing: the type matters.
    const asVm: MigrationFields = { ...fields, deleteTask: undefined };
    expect(
      await confirmRetired({ fields: asVm, proxmox: s.client, vmid: CTID, type: "qemu", now: new Date() }),
    ).toEqual({ state: "unexplained" });
    expect(asked("vm-delete")).toHaveLength(1);
  });

  it("retire deletes with the container endpoint and records RAM and disk freed", async () => {
    await s.client.waitForTask(await s.client.stopContainer("trinity", CTID));
    const fields: MigrationFields = {
      backupVolumeID: "pbs:backup/vzdump-lxc-1100-x.tar.zst",
      deleteAfterTime: new Date(Date.now() - 2_000).toISOString(),
      proxmoxNode: "trinity",
    };
    expect(await retireStep.run(await runOf(fields))).toMatchObject({ reason: "Deleting" });
    expect(fields.deleteTask).toMatch(/:vzdestroy:1100:/);
    expect(fields.ramFreedMiB).toBe(512);
    expect(fields.diskFreedGiB).toBe(4);
  });
});
