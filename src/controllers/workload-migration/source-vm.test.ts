// The blast-radius guard, attacked: every way a VM other than the named one could slip through.
import { describe, expect, it } from "vitest";
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { VmResource } from "../../proxmox/index.ts";
import { judgeSourceVm } from "./source-vm.ts";

const wm = { spec: { source: { vmid: 1010, name: "ups-stack" } } } as unknown as WorkloadMigration;
const vm = (over: Partial<VmResource> = {}): VmResource => ({
  id: "qemu/1010",
  type: "qemu",
  vmid: 1010,
  node: "niobe",
  name: "ups-stack",
  status: "running",
  ...over,
});
const clusterWith = (vmid: number) =>
  ({
    metadata: { name: "k8s" },
    spec: { nodes: [{ name: "talos-niobe", vmid }] },
  }) as unknown as HomelabCluster;

describe("judgeSourceVm", () => {
  it("accepts the VM whose id and name both match", () => {
    expect(judgeSourceVm(wm, vm(), [clusterWith(1030)])).toMatchObject({ ok: true });
  });
  it("refuses a VM whose name differs, even by case or a suffix", () => {
    for (const name of ["UPS-stack", "ups-stack-old", "", undefined])
      expect(judgeSourceVm(wm, vm({ name }), [])).toMatchObject({ ok: false, reason: "NameMismatch" });
  });
  it("refuses a VM tagged as a HomelabCluster's, whatever the separator", () => {
    for (const tags of ["homelab-cluster.k8s", "homelab-operator;homelab-cluster.k8s", "a,homelab-cluster.x"])
      expect(judgeSourceVm(wm, vm({ tags }), [])).toMatchObject({ ok: false, reason: "BelongsToCluster" });
  });
  it("refuses a VM a HomelabCluster lists as a node even without its tags", () => {
    expect(judgeSourceVm(wm, vm(), [clusterWith(1010)])).toMatchObject({
      ok: false,
      reason: "BelongsToCluster",
    });
  });
  it("refuses a container when it names a VM (type unset or qemu), and an absent VM", () => {
    for (const source of [
      { vmid: 1010, name: "ups-stack" },
      { vmid: 1010, name: "ups-stack", type: "qemu" },
    ])
      expect(
        judgeSourceVm(
          { spec: { source } } as unknown as WorkloadMigration,
          vm({ id: "lxc/1010", type: "lxc" }),
          [],
        ),
      ).toMatchObject({ ok: false, reason: "TypeMismatch" });
    expect(judgeSourceVm(wm, undefined, [])).toMatchObject({ ok: false, absent: true, reason: "VMNotFound" });
  });
  it("accepts a container named by type lxc, id and name; refuses a VM of that id and name", () => {
    const ct = {
      spec: { source: { vmid: 1100, name: "smallweb", type: "lxc" } },
    } as unknown as WorkloadMigration;
    const live = vm({ id: "lxc/1100", type: "lxc", vmid: 1100, name: "smallweb", node: "trinity" });
    expect(judgeSourceVm(ct, live, [])).toMatchObject({ ok: true });
    expect(judgeSourceVm(ct, { ...live, id: "qemu/1100", type: "qemu" }, [])).toMatchObject({
      ok: false,
      reason: "TypeMismatch",
    });
    expect(judgeSourceVm(ct, { ...live, name: "smallweb2" }, [])).toMatchObject({
      ok: false,
      reason: "NameMismatch",
    });
    expect(judgeSourceVm(ct, { ...live, tags: "homelab-cluster.k8s" }, [])).toMatchObject({
      ok: false,
      reason: "BelongsToCluster",
    });
    expect(judgeSourceVm(ct, live, [clusterWith(1100)])).toMatchObject({
      ok: false,
      reason: "BelongsToCluster",
    });
  });
});
