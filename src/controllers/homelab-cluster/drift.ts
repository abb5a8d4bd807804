// Drift: a VM changed by hand after it was set up — stopped, resized (cores, memory) or running on
// another Proxmox node than spec.nodes says. Read from the one cluster-wide VM list every reconcile
// already makes (a VM's config is read only when the list shows a difference). Corrected where that
// is safe: a VM stopped through HA is started again through HA, and cores/memory are written back into
// its config. Proxmox applies those to a running VM only if CPU/memory hotplug is enabled for it
// (otherwise they wait as pending changes for the VM's next start); the operator does not restart a
// VM for it, since restarting a cluster node is a rollout's decision (drain, etcd health), not drift's.
// A VM on another Proxmox node is only reported: HA moves VMs off a failed node, and moving one back
// is a live migration its owner should choose.
import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import type { VmResource } from "../../proxmox/index.ts";
import { isOurVm } from "./names.ts";
import { done, type Outcome } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export interface SizeDrift {
  memoryMiB?: { actual: number; spec: number };
  cores?: { actual: number; spec: number };
}

/** What a VM's size differs in from its spec node (cores × sockets is what Proxmox reports as maxcpu). */
export function sizeDrift(vm: Pick<VmResource, "maxmem" | "maxcpu">, node: HomelabClusterNode): SizeDrift {
  const drift: SizeDrift = {};
  if (vm.maxmem !== undefined && vm.maxmem !== node.memoryMiB * MiB)
    drift.memoryMiB = { actual: Math.round(vm.maxmem / MiB), spec: node.memoryMiB };
  if (vm.maxcpu !== undefined && vm.maxcpu !== node.cores)
    drift.cores = { actual: vm.maxcpu, spec: node.cores };
  return drift;
}

export async function checkDrift(scope: Scope): Promise<Outcome> {
  const vms = await scope.vms();
  const findings: string[] = [];
  let uncorrected = 0;
  for (const node of scope.spec.nodes) {
    const vm = vms.find((v) => v.vmid === node.vmid);
    // Absent, someone else's, busy, or still being set up by the VMs phase: not drift.
    if (!vm || !isOurVm(vm.tags, scope.name, node.name) || vm.lock) continue;
    if ((vm.maxdisk ?? 0) < node.diskGiB * GiB) continue;

    if (vm.node !== node.proxmoxNode) {
      uncorrected++;
      findings.push(
        `${node.name}: runs on Proxmox node ${vm.node}, spec.nodes says ${node.proxmoxNode} (reported, not moved back: HA relocates VMs off a failed node; migrate it back or change proxmoxNode)`,
      );
    }
    if (vm.status === "unknown") {
      uncorrected++;
      findings.push(`${node.name}: state unknown (Proxmox node ${vm.node} not answering)`);
    } else if (vm.status !== "running" && vm.hastate === "stopped") {
      // Stopping an HA-managed VM sets its HA state to stopped, so HA will not start it: ask HA to.
      const pve = await scope.proxmox();
      await scope.ctx.fence(`start VM ${vm.vmid} again`);
      await pve.start(vm.node, vm.vmid);
      findings.push(`${node.name}: stopped (HA state stopped) → started again through HA`);
      milestone(
        scope,
        "VMStartedAgain",
        "Drift",
        `VM ${vm.vmid} (${node.name}) was stopped by hand; started again`,
      );
    } else if (vm.status !== "running" && vm.hastate === undefined && !scope.spec.proxmox.ha.enabled) {
      findings.push(`${node.name}: ${vm.status} → started again by the VMs phase`);
    }

    const size = sizeDrift(vm, node);
    if (size.memoryMiB || size.cores) {
      const pve = await scope.proxmox();
      // Confirmed from the VM's own config, whose digest makes the write fail if it changed meanwhile.
      const config = await pve.getConfig(vm.node, vm.vmid);
      const memory = Number(String(config["memory"] ?? "").replace(/^current=/, ""));
      const cores = Number(config["cores"] ?? 1) * Number(config["sockets"] ?? 1);
      const differs: string[] = [];
      if (memory !== node.memoryMiB) differs.push(`memory ${memory} MiB, spec ${node.memoryMiB} MiB`);
      if (cores !== node.cores) differs.push(`cores ${cores}, spec ${node.cores}`);
      if (differs.length) {
        await scope.ctx.fence(`restore VM ${vm.vmid} size`);
        await pve.updateConfig(
          vm.node,
          vm.vmid,
          { memory: node.memoryMiB, cores: node.cores, sockets: 1 },
          { digest: config["digest"] },
        );
        findings.push(
          `${node.name}: ${differs.join(", ")} → restored in its config (a running VM without hotplug takes it at its next start; the operator does not restart it)`,
        );
        milestone(
          scope,
          "VMConfigRestored",
          "Drift",
          `VM ${vm.vmid} (${node.name}): ${differs.join(", ")}; restored`,
        );
      }
    }
  }
  if (findings.length === 0)
    return done(
      "InSync",
      `${scope.spec.nodes.length} VM(s) as spec.nodes says: running, cores, memory, Proxmox node`,
    );
  return {
    done: false,
    reason: uncorrected ? "VMDrift" : "VMDriftCorrected",
    message: findings.join("; "),
    requeueAfterMs: scope.opts.timings.pollMs,
    warn: true,
  };
}
