// The seed's VMs that Phase 5 retires (kubernetes-exploration.md, "Resource Impact": ~51 GB freed), in
// local mode's Proxmox, so the examples' WorkloadMigrations find the VM each one names (id, name, node
// as in examples/workload-migration-*.yaml) with the seed's RAM, running under HA. Created once, on the
// first start of a state folder: a VM a migration retired stays retired after a restart. The seed gives
// no disk sizes (32 GiB each is a placeholder) and no ids (the examples' placeholders are used). Smallweb
// is an LXC container on trinity (the seed gives no RAM for it: 1 GiB is a placeholder), made from a
// Debian template downloaded to cephfs first, as `pveam download` would.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProxmoxClient } from "../proxmox/index.ts";

export interface SeedVm {
  vmid: number;
  name: string;
  node: string;
  memoryGiB: number;
  /** qemu (default) or lxc: a container, as the seed's Smallweb is. */
  type?: "qemu" | "lxc";
}

export const SEED_VMS: readonly SeedVm[] = [
  { vmid: 1010, name: "ups-stack", node: "niobe", memoryGiB: 1 },
  { vmid: 1020, name: "ai-tool-stack", node: "neo", memoryGiB: 8 },
  { vmid: 1040, name: "dokku", node: "neo", memoryGiB: 8 },
  { vmid: 1050, name: "dokploy", node: "trinity", memoryGiB: 16 },
  { vmid: 1060, name: "media-stack", node: "trinity", memoryGiB: 4 },
  { vmid: 1070, name: "messaging-stack", node: "niobe", memoryGiB: 2 },
  { vmid: 1080, name: "coupe-sandbox", node: "niobe", memoryGiB: 4 },
  { vmid: 1090, name: "gitlab", node: "trinity", memoryGiB: 8 },
  { vmid: 1100, name: "smallweb", node: "trinity", memoryGiB: 1, type: "lxc" },
];

/** The container template Smallweb is made from (Proxmox's own image server; the simulator has no internet). */
export const SEED_CT_TEMPLATE = {
  storage: "cephfs",
  filename: "debian-12-standard_12.12-1_amd64.tar.zst",
  url: "http://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst",
} as const;

const DISK_GIB = 32;
const MARKER = "seed-vms-created";

/** Creates and starts the seed's VMs (HA state started) unless this state folder did so before. */
export async function ensureSeedVms(proxmox: ProxmoxClient, stateDir: string): Promise<"created" | "kept"> {
  const marker = join(stateDir, MARKER);
  if (existsSync(marker)) return "kept";
  const ha = new Set((await proxmox.listHaResources()).map((r) => r.sid));
  for (const vm of SEED_VMS) {
    const lxc = vm.type === "lxc";
    // A start interrupted half-way left some: those are taken as they are.
    if (!(await proxmox.locateVm(vm.vmid))) {
      await proxmox.waitForTask(
        lxc
          ? await proxmox.createContainer(vm.node, vm.vmid, {
              ostemplate: await ensureTemplate(proxmox, vm.node),
              hostname: vm.name,
              memory: vm.memoryGiB * 1024,
              cores: 2,
              rootfs: `ceph-vm-disks:${DISK_GIB}`,
              net0: "name=eth0,bridge=vmbr0,ip=dhcp",
              unprivileged: 1,
            })
          : await proxmox.createVm(vm.node, vm.vmid, {
              name: vm.name,
              memory: vm.memoryGiB * 1024,
              cores: 2,
              scsi0: `ceph-vm-disks:${DISK_GIB}`,
            }),
      );
    }
    if ((await proxmox.locateVm(vm.vmid))?.status !== "running")
      await proxmox.waitForTask(
        lxc ? await proxmox.startContainer(vm.node, vm.vmid) : await proxmox.start(vm.node, vm.vmid),
      );
    const sid = `${lxc ? "ct" : "vm"}:${vm.vmid}`;
    if (!ha.has(sid)) await proxmox.addHaResource({ sid, state: "started" });
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return "created";
}

/** The container template's volume id, downloaded to cephfs unless an earlier start did so. */
async function ensureTemplate(proxmox: ProxmoxClient, node: string): Promise<string> {
  const { storage, filename, url } = SEED_CT_TEMPLATE;
  const volid = `${storage}:vztmpl/${filename}`;
  const present = await proxmox.storageContent(node, storage, { content: "vztmpl" });
  if (!present.some((v) => v.volid === volid))
    await proxmox.waitForTask(await proxmox.downloadUrl(node, storage, { url, content: "vztmpl", filename }));
  return volid;
}
