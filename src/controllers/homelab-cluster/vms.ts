// Phase 4: one VM per node, found again by id + tags (never confused with a foreign VM), created from the
// Talos image with Proxmox's own cloud-init drive carrying the static network (Talos' nocloud platform
// reads it and boots into maintenance mode at that address), grown to diskGiB, then started through HA
// (or directly without HA), plus a PVE 9 rule keeping control planes on different Proxmox nodes.
// Each pass does the next step for each VM and comes back; nothing waits on a task.

import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import { cloudInitConfig, formatTags, type VmConfigInput } from "../../proxmox/index.ts";
import { controlPlanes, haRuleName, haSid, isOurVm, talosImage, vmTags } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, nodeStatus, type Scope } from "./scope.ts";

const GiB = 1024 ** 3;

export function vmConfig(scope: Scope, node: HomelabClusterNode): VmConfigInput {
  const { spec } = scope;
  const prefix = spec.network.subnet.split("/")[1];
  const volid = talosImage(spec).volid(spec.proxmox.imageStorage);
  return {
    name: node.name,
    ostype: "l26",
    cores: node.cores,
    sockets: 1,
    cpu: node.cpuType,
    memory: node.memoryMiB,
    // Talos (and etcd) must not have memory taken away under them.
    balloon: 0,
    scsihw: "virtio-scsi-single",
    scsi0: `${spec.proxmox.diskStorage}:0,import-from=${volid}`,
    boot: "order=scsi0",
    net0: `virtio,bridge=${spec.proxmox.bridge}${spec.proxmox.vlan ? `,tag=${spec.proxmox.vlan}` : ""}`,
    ...cloudInitConfig({
      storage: spec.proxmox.diskStorage,
      address: `${node.ip}/${prefix}`,
      gateway: spec.network.gateway,
      nameservers: spec.network.nameservers,
    }),
    onboot: 1,
    tags: formatTags(vmTags(scope.name, node.name)),
  };
}

export async function ensureVms(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const pve = await scope.proxmox();
  const vms = await scope.vms();
  const waits: string[] = [];
  const ha = spec.proxmox.ha;
  let haResources: Set<string> | undefined;
  const haNow = async () => {
    haResources ??= new Set((await pve.listHaResources()).map((r) => r.sid));
    return haResources;
  };
  const settled = isSettled(scope);

  for (const node of spec.nodes) {
    const status = nodeStatus(scope, node.name);
    status.vmid = node.vmid;
    const vm = vms.find((v) => v.vmid === node.vmid);
    if (!vm) {
      await scope.ctx.fence(`create VM ${node.vmid}`);
      // A broken connection after this may or may not have created it: the next pass looks by id + tags.
      await pve.createVm(node.proxmoxNode, node.vmid, vmConfig(scope, node));
      milestone(scope, "VMCreating", "Create", `VM ${node.vmid} (${node.name}) on ${node.proxmoxNode}`);
      status.vmState = "creating";
      waits.push(`${node.name}: creating`);
      continue;
    }
    if (!isOurVm(vm.tags, scope.name, node.name))
      return blocked(
        "VMIDTaken",
        `VM id ${node.vmid} is taken by VM '${vm.name ?? vm.vmid}' on ${vm.node}, not tagged as this cluster's ${node.name}`,
        scope.opts.timings.blockedMs,
      );
    status.proxmoxNode = vm.node;
    status.vmState = vm.status;
    if (vm.lock) {
      waits.push(`${node.name}: locked (${vm.lock})`);
      continue;
    }
    if ((vm.maxdisk ?? 0) < node.diskGiB * GiB) {
      // The imported disk has the image's size; Proxmox only grows disks, so this never shrinks one.
      await pve.resizeDisk(vm.node, node.vmid, "scsi0", `${node.diskGiB}G`);
      waits.push(`${node.name}: growing its disk to ${node.diskGiB} GiB`);
      continue;
    }
    if (ha.enabled && !settled && !(await haNow()).has(haSid(node.vmid))) {
      // HA starts the VM (state started) and restarts or relocates it when its node fails.
      await pve.addHaResource({
        sid: haSid(node.vmid),
        state: "started",
        maxRestart: ha.maxRestart,
        maxRelocate: ha.maxRelocate,
        comment: `homelab-operator: ${scope.name}/${node.name}`,
      });
      (await haNow()).add(haSid(node.vmid));
      milestone(scope, "VMStarting", "Start", `VM ${node.vmid} (${node.name}) added to HA, state started`);
      waits.push(`${node.name}: starting through HA`);
      continue;
    }
    if (vm.status !== "running") {
      if (!ha.enabled) {
        await pve.start(vm.node, node.vmid);
        milestone(scope, "VMStarting", "Start", `VM ${node.vmid} (${node.name})`);
      }
      waits.push(`${node.name}: ${vm.status}`);
    }
  }

  const cps = controlPlanes(spec);
  if (ha.enabled && ha.spreadControlPlanes && cps.length > 1 && !settled && waits.length === 0) {
    const rule = haRuleName(scope.name);
    const existing = (await pve.listHaRules()).find((r) => r.rule === rule);
    const resources = cps.map((n) => haSid(n.vmid));
    const want = { rule, type: "resource-affinity" as const, affinity: "negative" as const, resources };
    if (!existing)
      await pve.addHaRule({ ...want, comment: `homelab-operator: control planes of ${scope.name} apart` });
    else if (existing.resources.split(",").sort().join(",") !== [...resources].sort().join(","))
      await pve.updateHaRule(want);
  }

  if (waits.length) return waiting("VMsProvisioning", waits.join("; "), scope.opts.timings.pollMs);
  return done("VMsRunning", `${spec.nodes.length} VM(s) running${ha.enabled ? " under HA" : ""}`);
}

/** HA resources and the rule were checked for this generation: the steady state reads only the VM list. */
function isSettled(scope: Scope): boolean {
  const c = scope.previous.conditions?.find((x) => x.type === "VMsReady");
  return c?.status === "True" && c.observedGeneration === scope.generation;
}
