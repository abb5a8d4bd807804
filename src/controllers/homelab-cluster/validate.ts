// Phase 1: check the spec against reality before anything is created, so a typo never leaves a
// half-built cluster. Each finding is a message a user can act on. Runs once per generation (and again
// whenever a later phase finds the connection itself broken), not on every resync.
import type { ProxmoxClient } from "../../proxmox/index.ts";
import { isConditionTrue } from "../../runtime/index.ts";
import { tcpAnswers } from "./connections.ts";
import { isOurVm } from "./names.ts";
import { blocked, done, type Outcome } from "./outcome.ts";
import type { Scope } from "./scope.ts";

/** A privilege the operator needs, where Proxmox checks it, and why (for the message). */
interface Need {
  path: string;
  privileges: string[];
  /** Proxmox also accepts these on `/` instead (download-url: Sys.AccessNetwork or Sys.Audit+Sys.Modify). */
  orOnRoot?: string[];
  why: string;
}

/** What each call the phases make requires (PVE 9 permission checks; research/cluster-lifecycle.md). */
export function requiredPrivileges(spec: Scope["spec"]): Need[] {
  const { proxmox } = spec;
  const needs: Need[] = [];
  for (const n of spec.nodes) {
    needs.push({
      path: `/vms/${n.vmid}`,
      privileges: [
        "VM.Allocate",
        "VM.Audit",
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Disk",
        "VM.Config.Network",
        "VM.Config.Cloudinit",
        "VM.Config.Options",
        "VM.PowerMgmt",
      ],
      why: `to create and run VM ${n.vmid} (${n.name})`,
    });
  }
  needs.push({
    path: `/storage/${proxmox.diskStorage}`,
    privileges: ["Datastore.AllocateSpace", "Datastore.Audit"],
    why: "to allocate the VM disks and cloud-init drives",
  });
  needs.push({
    path: `/storage/${proxmox.imageStorage}`,
    privileges: ["Datastore.AllocateTemplate", "Datastore.Audit"],
    why: "to download the Talos image",
  });
  needs.push({
    path: `/nodes/${imageNodeOf(spec)}`,
    privileges: ["Sys.AccessNetwork"],
    orOnRoot: ["Sys.Audit", "Sys.Modify"],
    why: "to let the node download from the Image Factory",
  });
  needs.push({
    path: `/sdn/zones/localnetwork/${proxmox.bridge}`,
    privileges: ["SDN.Use"],
    why: `to attach the VMs to bridge ${proxmox.bridge}`,
  });
  if (proxmox.ha.enabled) {
    needs.push({ path: "/", privileges: ["Sys.Console"], why: "to manage HA resources and rules" });
  }
  return needs;
}

async function missingPrivileges(pve: ProxmoxClient, path: string, privileges: string[]): Promise<string[]> {
  const granted = (await pve.permissions(path))[path] ?? {};
  return privileges.filter((p) => !(p in granted));
}

export function imageNodeOf(spec: Scope["spec"]): string {
  return spec.proxmox.imageNode ?? spec.nodes[0]!.proxmoxNode;
}

export async function validate(scope: Scope): Promise<Outcome> {
  const validated = scope.previous.conditions?.find((c) => c.type === "Validated");
  if (
    isConditionTrue(scope.previous.conditions, "Validated") &&
    validated?.observedGeneration === scope.generation
  ) {
    return done(validated.reason, validated.message);
  }
  const pve = await scope.proxmox();
  const { spec } = scope;
  const version = await pve.version(); // 401 / TLS / unreachable surface here, named by describeFailure

  const problems: string[] = [];
  for (const need of requiredPrivileges(spec)) {
    const missing = await missingPrivileges(pve, need.path, need.privileges);
    if (missing.length === 0) continue;
    if (need.orOnRoot && (await missingPrivileges(pve, "/", need.orOnRoot)).length === 0) continue;
    const alternative = need.orOnRoot ? ` (or ${need.orOnRoot.join(" + ")} on /)` : "";
    problems.push(`the API token lacks ${missing.join(", ")} on ${need.path}${alternative} ${need.why}`);
  }
  if (problems.length)
    return blocked("ProxmoxPrivilegeMissing", problems.join("; "), scope.opts.timings.blockedMs);

  const nodes = new Map((await pve.listNodes()).map((n) => [n.node, n.status]));
  const wanted = new Set([...spec.nodes.map((n) => n.proxmoxNode), imageNodeOf(spec)]);
  for (const node of wanted) {
    const state = nodes.get(node);
    if (!state) problems.push(`Proxmox node ${node} does not exist (nodes: ${[...nodes.keys()].join(", ")})`);
    else if (state !== "online") problems.push(`Proxmox node ${node} is ${state}`);
  }
  if (problems.length)
    return blocked("ProxmoxNodeMissing", problems.join("; "), scope.opts.timings.blockedMs);

  for (const node of wanted) {
    const storages = new Map((await pve.listStorages(node)).map((s) => [s.storage, s]));
    const disk = storages.get(spec.proxmox.diskStorage);
    if (!disk) problems.push(`storage ${spec.proxmox.diskStorage} is not available on node ${node}`);
    else if (!disk.content.split(",").includes("images"))
      problems.push(
        `storage ${spec.proxmox.diskStorage} does not allow content images (has ${disk.content})`,
      );
    const image = storages.get(spec.proxmox.imageStorage);
    if (!image) problems.push(`storage ${spec.proxmox.imageStorage} is not available on node ${node}`);
    else if (!image.content.split(",").includes("import"))
      problems.push(
        `storage ${spec.proxmox.imageStorage} does not allow content import (has ${image.content}); enable it for the Talos disk image`,
      );
  }
  if (problems.length) return blocked("StorageUnsuitable", problems.join("; "), scope.opts.timings.blockedMs);

  for (const node of new Set(spec.nodes.map((n) => n.proxmoxNode))) {
    const bridges = (await pve.listNetworks(node, { type: "any_bridge" })).map((i) => i.iface);
    if (!bridges.includes(spec.proxmox.bridge))
      problems.push(
        `bridge ${spec.proxmox.bridge} does not exist on node ${node} (bridges: ${bridges.join(", ") || "none"})`,
      );
  }
  if (problems.length) return blocked("BridgeMissing", problems.join("; "), scope.opts.timings.blockedMs);

  const vms = await scope.vms();
  const absent: typeof spec.nodes = [];
  for (const n of spec.nodes) {
    const vm = vms.find((v) => v.vmid === n.vmid);
    if (!vm) absent.push(n);
    else if (!isOurVm(vm.tags, scope.name, n.name))
      problems.push(
        `VM id ${n.vmid} is taken by VM '${vm.name ?? vm.vmid}' on ${vm.node}, which is not this cluster's ${n.name}; choose another vmid or remove that VM`,
      );
  }
  if (problems.length) return blocked("VMIDTaken", problems.join("; "), scope.opts.timings.blockedMs);

  // Addresses of VMs not created yet must be free: something answering there is another machine.
  for (const n of absent) {
    for (const t of scope.opts.connections.probeTargets(n.ip)) {
      if (await tcpAnswers(t.host, t.port))
        problems.push(
          `address ${n.ip} of ${n.name} already answers on port ${t.port}: another machine uses it`,
        );
    }
  }
  if (problems.length) return blocked("AddressInUse", problems.join("; "), scope.opts.timings.blockedMs);

  return done(
    "Validated",
    `Proxmox VE ${version.version}: token privileges, nodes, storages, bridge and VM ids checked; ${absent.length} address(es) free`,
  );
}
