// The seed's VMs (and its Smallweb container) in local mode's Proxmox: the ones the examples migrate, with the seed's RAM, created
// once per state folder (a retired VM stays retired across restarts).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadExamples } from "../crds/examples.ts";
import type { WorkloadMigration } from "../crds/workload-migration.ts";
import { SEED_HOMELAB_INVENTORY } from "../proxmox/simulator/inventory.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "../proxmox/simulator/test-support.ts";
import { ensureSeedVms, SEED_CT_TEMPLATE, SEED_VMS } from "./seed-vms.ts";

let s: SimulatorWithClient;
let dir: string;
beforeEach(async () => {
  s = await startSimulatorWithClient({ ...SEED_HOMELAB_INVENTORY, taskDurationMs: 5 });
  dir = await mkdtemp(join(tmpdir(), "seed-vms-"));
});
afterEach(async () => {
  await s.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("the seed's VMs in local mode", () => {
  it("are the 8 VMs Phase 5 retires, running under HA, ~51 GB of RAM between them", async () => {
    expect(await ensureSeedVms(s.client, dir)).toBe("created");
    const vms = (await s.client.listVms()).filter((v) =>
      SEED_VMS.some((x) => x.vmid === v.vmid && x.type !== "lxc"),
    );
    expect(vms).toHaveLength(8);
    expect(vms.every((v) => v.type === "qemu")).toBe(true);
    expect(vms.every((v) => v.status === "running" && v.hastate === "started")).toBe(true);
    expect(vms.reduce((sum, v) => sum + (v.maxmem ?? 0), 0) / 2 ** 30).toBe(51);
  });

  it("hold Smallweb as a running LXC container on trinity under HA (ct:1100), made from a template", async () => {
    await ensureSeedVms(s.client, dir);
    expect(await s.client.locateVm(1100)).toMatchObject({
      type: "lxc",
      name: "smallweb",
      node: "trinity",
      status: "running",
      hastate: "started",
      maxmem: 2 ** 30,
    });
    expect((await s.client.getContainerConfig("trinity", 1100))["rootfs"]).toMatch(
      /^ceph-vm-disks:vm-1100-disk-0,/,
    );
    const templates = await s.client.storageContent("trinity", "cephfs", { content: "vztmpl" });
    expect(templates.map((t) => t.volid)).toEqual([`cephfs:vztmpl/${SEED_CT_TEMPLATE.filename}`]);
  });

  it("match every example migration's source by type, id, name and node", async () => {
    await ensureSeedVms(s.client, dir);
    const sources = loadExamples()
      .filter((d) => d.object.kind === "WorkloadMigration")
      .map((d) => (d.object as unknown as WorkloadMigration).spec.source)
      .filter((src) => src !== undefined);
    expect(sources).toHaveLength(9);
    for (const src of sources) {
      const vm = await s.client.locateVm(src!.vmid);
      expect({ type: vm?.type, name: vm?.name, node: vm?.node }).toEqual({
        type: src!.type ?? "qemu",
        name: src!.name,
        node: src!.proxmoxNode,
      });
    }
  });

  it("are created once: a restart neither recreates a deleted one nor adds another", async () => {
    await ensureSeedVms(s.client, dir);
    await s.client.waitForTask(await s.client.stop("niobe", 1010));
    await s.client.deleteHaResource("vm:1010");
    await s.client.waitForTask(await s.client.deleteVm("niobe", 1010, { purge: true }));
    const creates = s.sim.records().filter((r) => r.kind === "vm-create").length;
    expect(await ensureSeedVms(s.client, dir)).toBe("kept");
    expect(await s.client.locateVm(1010)).toBeUndefined();
    expect(s.sim.records().filter((r) => r.kind === "vm-create")).toHaveLength(creates);
  });
});
