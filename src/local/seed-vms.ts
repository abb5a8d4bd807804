// The seed's VMs that Phase 5 retires (kubernetes-exploration.md, "Resource Impact": ~51 GB freed), in
// local mode's Proxmox, so the examples' WorkloadMigrations find the VM each one names (id, name, node
// as in examples/workload-migration-*.yaml) with the seed's RAM, running under HA. Created once, on the
// first start of a state folder: a VM a migration retired stays retired after a restart. The seed gives
// no disk sizes (32 GiB each is a placeholder) and no ids (the examples' placeholders are used). Smallweb
// is an LXC container, which the simulator does not model, so it is not here.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProxmoxClient } from "../proxmox/index.ts";

export interface SeedVm {
  vmid: number;
  name: string;
  node: string;
  memoryGiB: number;
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
];

const DISK_GIB = 32;
const MARKER = "seed-vms-created";

/** Creates and starts the seed's VMs (HA state started) unless this state folder did so before. */
export async function ensureSeedVms(proxmox: ProxmoxClient, stateDir: string): Promise<"created" | "kept"> {
  const marker = join(stateDir, MARKER);
  if (existsSync(marker)) return "kept";
  const ha = new Set((await proxmox.listHaResources()).map((r) => r.sid));
  for (const vm of SEED_VMS) {
    // A start interrupted half-way left some: those are taken as they are.
    if (!(await proxmox.locateVm(vm.vmid))) {
      await proxmox.waitForTask(
        await proxmox.createVm(vm.node, vm.vmid, {
          name: vm.name,
          memory: vm.memoryGiB * 1024,
          cores: 2,
          scsi0: `ceph-vm-disks:${DISK_GIB}`,
        }),
      );
    }
    if ((await proxmox.locateVm(vm.vmid))?.status !== "running")
      await proxmox.waitForTask(await proxmox.start(vm.node, vm.vmid));
    if (!ha.has(`vm:${vm.vmid}`)) await proxmox.addHaResource({ sid: `vm:${vm.vmid}`, state: "started" });
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return "created";
}
