// LXC containers, attacked: each case tries what a simulator that treats a container as a VM (or a VM
// as a container) would let through, and checks Proxmox's answer (pve-container's texts and split
// between API-call refusals and worker failures).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxmoxClient } from "../client.ts";
import { ProxmoxApiError, ProxmoxPermissionError } from "../errors.ts";
import type { Upid } from "../upid.ts";
import type { ProxmoxSimulator } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient, taskOutcome } from "./test-support.ts";

const TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";
let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;

beforeAll(async () => {
  rig = await startSimulatorWithClient({ taskDurationMs: 20 }, { timeoutMs: 10_000 });
  ({ sim, client } = rig);
  await client.waitForTask(
    await client.downloadUrl("pve1", "local", {
      url: "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
      content: "vztmpl",
      filename: "debian-12-standard_12.7-1_amd64.tar.zst",
    }),
  );
});
afterAll(() => rig.stop());

async function ct(vmid: number, running = false) {
  await client.waitForTask(
    await client.createContainer("pve1", vmid, {
      ostemplate: TEMPLATE,
      hostname: `ct${vmid}`,
      memory: 256,
      rootfs: "local-lvm:2",
      unprivileged: 1,
    }),
  );
  if (running) await client.waitForTask(await client.startContainer("pve1", vmid));
}
const outcome = (task: Promise<Upid>) => taskOutcome(client, task);
async function refusal(call: Promise<unknown>): Promise<[number, string]> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return [(err as ProxmoxApiError).status, (err as ProxmoxApiError).proxmoxMessage];
}
const status = async (vmid: number) => (await client.containerStatus("pve1", vmid)).status;

describe("LXC containers", () => {
  it("are created from a template: listed as type lxc with their hostname, RAM and rootfs size", async () => {
    await ct(4001);
    const listed = await client.locateVm(4001);
    expect(listed).toMatchObject({ id: "lxc/4001", type: "lxc", name: "ct4001", status: "stopped" });
    expect(listed?.maxmem).toBe(256 * 2 ** 20);
    expect(listed?.maxdisk).toBe(2 * 2 ** 30);
    const config = await client.getContainerConfig("pve1", 4001);
    expect(config["rootfs"]).toBe("local-lvm:vm-4001-disk-0,size=2G");
    expect(config["swap"]).toBe("512");
    const volumes = await client.storageContent("pve1", "local-lvm", { vmid: 4001 });
    expect(volumes.map((v) => [v.volid, v.content])).toEqual([["local-lvm:vm-4001-disk-0", "rootdir"]]);
  });

  it("refuses a rootfs on a storage without rootdir, and a template that is not one", async () => {
    expect(
      await refusal(
        client.createContainer("pve1", 4002, { ostemplate: TEMPLATE, rootfs: "local:2", unprivileged: 1 }),
      ),
    ).toEqual([400, "Parameter verification failed."]);
    const missing = await outcome(
      client.createContainer("pve1", 4003, {
        ostemplate: "local:vztmpl/absent.tar.zst",
        rootfs: "local-lvm:1",
        unprivileged: 1,
      }),
    );
    expect(missing).toBe("unable to create CT 4003 - volume 'local:vztmpl/absent.tar.zst' does not exist");
    expect(await client.locateVm(4003)).toBeUndefined();
    expect(await client.storageContent("pve1", "local-lvm", { vmid: 4003 })).toEqual([]);
  });

  it("shares the id space with VMs: a VM's id is taken for a container and the other way round", async () => {
    await client.waitForTask(await client.createVm("pve1", 4010, { name: "a-vm", scsi0: "local-lvm:1" }));
    expect(
      await refusal(client.createContainer("pve1", 4010, { ostemplate: TEMPLATE, unprivileged: 1 })),
    ).toEqual([500, "VM 4010 already exists on node 'pve1'"]);
    await ct(4011);
    expect(await refusal(client.createVm("pve1", 4011, { name: "x" }))).toEqual([
      500,
      "unable to create VM 4011 - CT 4011 already exists on node 'pve1'",
    ]);
  });

  it("are not VMs: qemu endpoints on a container id (and container endpoints on a VM id) find no config", async () => {
    await ct(4020, true);
    await client.waitForTask(await client.createVm("pve1", 4021, { name: "vm", scsi0: "local-lvm:1" }));
    expect(await refusal(client.status("pve1", 4020))).toEqual([
      500,
      "Configuration file 'nodes/pve1/qemu-server/4020.conf' does not exist",
    ]);
    expect(await refusal(client.deleteVm("pve1", 4020, { purge: true }))).toEqual([
      500,
      "Configuration file 'nodes/pve1/qemu-server/4020.conf' does not exist",
    ]);
    // qemu's shutdown worker finds no VM config: the container keeps running.
    expect(await outcome(client.shutdown("pve1", 4020))).toBe(
      "unable to find configuration file for VM 4020 on node 'pve1'",
    );
    expect(await status(4020)).toBe("running");
    expect(await refusal(client.containerStatus("pve1", 4021))).toEqual([
      500,
      "Configuration file 'nodes/pve1/lxc/4021.conf' does not exist",
    ]);
    expect(await refusal(client.deleteContainer("pve1", 4021))).toEqual([
      500,
      "Configuration file 'nodes/pve1/lxc/4021.conf' does not exist",
    ]);
    expect(await client.locateVm(4021)).toMatchObject({ type: "qemu" });
  });

  it("power: start of a running one and stop/shutdown of a stopped one are refused up front", async () => {
    await ct(4030);
    expect(await refusal(client.shutdownContainer("pve1", 4030))).toEqual([500, "CT 4030 not running"]);
    expect(await refusal(client.stopContainer("pve1", 4030))).toEqual([500, "CT 4030 not running"]);
    const start = await client.startContainer("pve1", 4030);
    expect(start.type).toBe("vzstart");
    await client.waitForTask(start);
    expect(await refusal(client.startContainer("pve1", 4030))).toEqual([500, "CT 4030 already running"]);
    const shutdown = await client.shutdownContainer("pve1", 4030, { timeoutSeconds: 30, forceStop: true });
    expect(shutdown.type).toBe("vzshutdown");
    await client.waitForTask(shutdown);
    expect(await status(4030)).toBe("stopped");
    expect(await refusal(client.shutdownContainer("pve1", 4999))).toEqual([500, "CT 4999 not running"]);
  });

  it("a locked container's shutdown task fails with the lock and it keeps running", async () => {
    await ct(4040, true);
    sim.faults.set({ hangTasks: [{ type: "vzdump", id: "4040" }] });
    const backup = await client.backup("pve1", { vmid: 4040, storage: "local", mode: "snapshot" });
    expect(await outcome(client.shutdownContainer("pve1", 4040))).toBe("CT is locked (backup)");
    expect(await status(4040)).toBe("running");
    sim.faults.reset();
    await client.waitForTask(backup);
    const [archive] = await client.storageContent("pve1", "local", { content: "backup", vmid: 4040 });
    expect(archive?.volid).toMatch(
      /^local:backup\/vzdump-lxc-4040-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$/,
    );
    expect(archive?.format).toBe("tar.zst");
    const log = await client.taskLog(backup, { limit: 100 });
    expect(log).toContain("INFO: Starting Backup of VM 4040 (lxc)");
  });

  it("destroy: refused while running, HA-managed without purge; purge removes the ct: service", async () => {
    await ct(4050, true);
    expect(await refusal(client.deleteContainer("pve1", 4050, { purge: true }))).toEqual([
      500,
      "unable to destroy CT 4050 - container is running",
    ]);
    await client.addHaResource({ sid: "ct:4050", state: "started" });
    expect((await client.locateVm(4050))?.hastate).toBe("started");
    // HA-managed: the shutdown is a request to the HA manager (hastop), which also keeps it stopped.
    const stop = await client.shutdownContainer("pve1", 4050);
    expect(stop.type).toBe("hastop");
    await client.waitForTask(stop);
    expect(await client.getHaResource("ct:4050")).toMatchObject({ state: "stopped" });
    expect(await refusal(client.deleteContainer("pve1", 4050))).toEqual([
      500,
      "unable to remove CT 4050 - used in HA resources and purge parameter not set.",
    ]);
    const del = await client.deleteContainer("pve1", 4050, { purge: true, destroyUnreferencedDisks: true });
    expect(del.type).toBe("vzdestroy");
    await client.waitForTask(del);
    expect(await client.locateVm(4050)).toBeUndefined();
    expect((await client.listHaResources()).map((r) => r.sid)).not.toContain("ct:4050");
    expect(await client.storageContent("pve1", "local-lvm", { vmid: 4050 })).toEqual([]);
  });

  it("slowAnswers: the shutdown has taken effect (recorded, its task running) before its answer arrives", async () => {
    await ct(4080, true);
    sim.faults.set({
      slowAnswers: [{ method: "POST", path: "/lxc/4080/status/shutdown$", delayMs: 1_500, count: 1 }],
    });
    let answered = false;
    const request = client.shutdownContainer("pve1", 4080).then((u) => {
      answered = true;
      return u;
    });
    const seen = async () => {
      for (;;) {
        const r = sim.records().find((x) => x.vmid === 4080 && x.action === "shutdown");
        if (r) return r;
        await new Promise((res) => setTimeout(res, 10));
      }
    };
    const record = await seen();
    expect(answered).toBe(false);
    const upid = await request;
    expect(upid.raw).toBe(record.upid);
    await client.waitForTask(upid);
    expect(sim.faults.current().slowAnswers).toEqual([]);
  });

  it("HA: a container is ct:<id>, never vm:<id>; a bare id resolves by the guest's type", async () => {
    await ct(4060);
    expect(await refusal(client.addHaResource({ sid: "vm:4060" }))).toEqual([
      500,
      "unable to find VM '4060'",
    ]);
    await client.addHaResource({ sid: "4060", state: "stopped" });
    expect((await client.listHaResources()).map((r) => r.sid)).toContain("ct:4060");
  });

  it("checks privileges: VM.PowerMgmt, VM.Allocate, VM.Backup, Sys.Modify for a privileged container", async () => {
    await ct(4070, true);
    const token = { tokenId: "audit@pve!ro", secret: "ro-secret", acl: { "/": ["VM.Audit", "Sys.Audit"] } };
    sim.addToken(token);
    const ro = new ProxmoxClient({
      url: sim.url,
      tokenId: token.tokenId,
      tokenSecret: token.secret,
      tls: { caPem: sim.caPem },
    });
    try {
      const denied = async (call: Promise<unknown>) => {
        const err = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ProxmoxPermissionError);
        return (err as ProxmoxApiError).proxmoxMessage;
      };
      expect(await denied(ro.shutdownContainer("pve1", 4070))).toBe(
        "Permission check failed (/vms/4070, VM.PowerMgmt)",
      );
      expect(await denied(ro.deleteContainer("pve1", 4070))).toBe(
        "Permission check failed (/vms/4070, VM.Allocate)",
      );
      expect(await denied(ro.backup("pve1", { vmid: 4070, storage: "local" }))).toBe(
        "Permission check failed (/vms/4070, VM.Backup)",
      );
      // A token that may allocate but not modify the host: a privileged container is refused.
      sim.addToken({
        tokenId: "alloc@pve!ct",
        secret: "ct-secret",
        acl: { "/vms": ["VM.Allocate"], "/storage": ["Datastore.AllocateSpace"] },
      });
      const alloc = new ProxmoxClient({
        url: sim.url,
        tokenId: "alloc@pve!ct",
        tokenSecret: "ct-secret",
        tls: { caPem: sim.caPem },
      });
      try {
        expect(await denied(alloc.createContainer("pve1", 4071, { ostemplate: TEMPLATE }))).toBe(
          "Permission check failed (/, Sys.Modify)",
        );
      } finally {
        await alloc.close();
      }
      expect(await status(4070)).toBe("running");
    } finally {
      await ro.close();
    }
  });
});
