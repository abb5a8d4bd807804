// Scale down: a node taken out of spec.nodes leaves the cluster one at a time, in the order Cluster API
// and Omni use — cordon and drain its Kubernetes Node, remove its etcd member (by id, through a control
// plane that stays), then stop and destroy its VM, then delete the Node object. What is departing is
// read live every pass: VMs tagged as this cluster's with a node name no longer in the spec, etcd
// members of such names, and Nodes this operator cordoned for removal. A VM is only ever destroyed when
// its tags, read again right before, say it is this cluster's VM for that node.
//
// Refused, with nothing touched: a change that keeps fewer control planes than a quorum of the members
// etcd has now (3 → 1 at once), and any step while a control plane that stays has an unhealthy etcd.
import type { VmResource } from "../../proxmox/index.ts";
import { DRAIN_ANNOTATION, drainNode, NODE_GVK, type WorkloadNode } from "./drain.ts";
import { describeSick, liveMembers, memberHex, quorum, unhealthyEtcd } from "./etcd-members.ts";
import { clusterTag, controlPlanes, haSid, isOurVm, nodeTag } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";
import { adminClient, withClient } from "./talos.ts";

export interface DepartingNode {
  name: string;
  /** Its VM, found by this cluster's tags. */
  vm?: VmResource;
  /** Its etcd member id (decimal), when it still is one. */
  memberId?: string;
  /** Its Kubernetes Node still exists. */
  kubernetesNode: boolean;
}

/** The node name a VM's tags give it, when they say it is this cluster's. */
export function taggedNodeName(tags: string | undefined, cluster: string): string | undefined {
  const set = (tags ?? "").split(/[;,\s]+/).filter(Boolean);
  if (!set.includes(clusterTag(cluster))) return undefined;
  const prefix = nodeTag("");
  const names = set.filter((t) => t.startsWith(prefix)).map((t) => t.slice(prefix.length));
  // Two node tags on one VM: someone edited them; which node it is cannot be told, so it is not ours.
  return names.length === 1 ? names[0] : undefined;
}

/**
 * Nodes leaving, in the order they go: those without an etcd member (workers) first, then control
 * planes, each group by name, so every pass picks the same one.
 */
export function orderDeparting(nodes: DepartingNode[]): DepartingNode[] {
  return [...nodes].sort(
    (a, b) =>
      Number(a.memberId !== undefined) - Number(b.memberId !== undefined) || a.name.localeCompare(b.name),
  );
}

/** NodesRemoved's reason while a Talos upgrade holds the scale-down back (the controller finishes it). */
export const UPGRADE_IN_PROGRESS = "UpgradeInProgress";

/** What a recorded Talos upgrade step is doing to its node, when it is doing anything to one. */
export function upgradeHolding(
  rollout: { node?: string; stage?: string; version?: string } | undefined,
): string | undefined {
  if (!rollout?.node) return undefined;
  const doing = rollout.stage === "Upgrading" ? "being upgraded" : "draining";
  return `${rollout.node} is ${doing} for Talos ${rollout.version ?? ""}`;
}

/**
 * Nodes in the spec that still carry this operator's scale-down mark: their removal was cancelled. The
 * node a Talos upgrade is draining keeps its cordon until the upgrade is done with it.
 */
export function cancelledDepartures(
  nodes: readonly WorkloadNode[],
  inSpec: ReadonlySet<string>,
  upgrading: string | undefined,
): string[] {
  return nodes
    .filter((n) => n.metadata?.annotations?.[DRAIN_ANNOTATION] !== undefined)
    .map((n) => n.metadata?.name ?? "")
    .filter((name) => inSpec.has(name) && name !== upgrading);
}

export async function removeDepartedNodes(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const inSpec = new Set(spec.nodes.map((n) => n.name));
  const departing = new Map<string, DepartingNode>();
  const entry = (name: string) => {
    let d = departing.get(name);
    if (!d) {
      d = { name, kubernetesNode: false };
      departing.set(name, d);
    }
    return d;
  };

  for (const vm of await scope.vms()) {
    const name = taggedNodeName(vm.tags, scope.name);
    // A spec node's own VM id is never departing, whatever its tags say.
    if (!name || inSpec.has(name) || spec.nodes.some((n) => n.vmid === vm.vmid)) continue;
    entry(name).vm = vm;
  }
  const { through, members } = await liveMembers(scope);
  for (const m of members) if (!inSpec.has(m.hostname)) entry(m.hostname).memberId = m.id;
  const client = scope.workload(scope.kubeconfig ?? "");
  const nodes = (await client.list<WorkloadNode>(NODE_GVK)).items;
  // A scale-down cancelled part-way (the node put back into spec.nodes): it is given its Node back. Its
  // etcd member, if it had already gone, is KubernetesHealthy's to report (EtcdMemberRemoved).
  for (const name of cancelledDepartures(nodes, inSpec, scope.previous.upgrade?.talos?.node)) {
    await client.patch(
      NODE_GVK,
      { name },
      { spec: { unschedulable: null }, metadata: { annotations: { [DRAIN_ANNOTATION]: null } } },
      "merge",
    );
    milestone(
      scope,
      "NodeUncordoned",
      "ScaleDown",
      `${name} is in spec.nodes again: uncordoned, not removed`,
    );
  }
  for (const node of nodes) {
    const name = node.metadata?.name ?? "";
    if (inSpec.has(name)) continue;
    // A Node this operator did not cordon is only taken out with a VM or member of this cluster.
    if (departing.has(name) || node.metadata?.annotations?.[DRAIN_ANNOTATION])
      entry(name).kubernetesNode = true;
  }
  if (departing.size === 0)
    return done("NoNodeToRemove", "every tagged VM, etcd member and cordoned Node is in spec.nodes");
  // A node mid-upgrade may be about to reboot (MachineService.Upgrade returns before it does): taking a
  // member out meanwhile turns 3 → 2 → 1 of 2 when it goes down. The upgrade finishes first (the
  // controller still runs TalosUpToDate for it); no new one starts while a node is departing, since
  // TalosUpToDate runs only after this phase is done.
  const upgrading = upgradeHolding(scope.previous.upgrade?.talos);
  if (upgrading)
    return waiting(
      UPGRADE_IN_PROGRESS,
      `not removing ${[...departing.keys()].sort().join(", ")} while ${upgrading}; it finishes first`,
      scope.opts.timings.pollMs,
    );

  const cps = controlPlanes(spec);
  const leavingMembers = members.filter((m) => !inSpec.has(m.hostname));
  if (leavingMembers.length > 0 && cps.length < quorum(members.length))
    return blocked(
      "QuorumAtRisk",
      `refusing to shrink etcd from ${members.length} members to ${cps.length}: that many control planes are fewer than the ${quorum(members.length)} a quorum of ${members.length} needs (leaving: ${leavingMembers.map((m) => m.hostname).join(", ")}); nothing was removed — keep at least ${quorum(members.length)} control planes`,
      scope.opts.timings.blockedMs,
    );
  const sick = await unhealthyEtcd(scope, cps);
  const node = orderDeparting([...departing.values()])[0]!;
  if (sick.size > 0)
    return blocked(
      "EtcdUnhealthy",
      `not removing ${node.name} while etcd is unhealthy on a control plane that stays: ${describeSick(sick)}`,
      scope.opts.timings.blockedMs,
    );

  // Only a running machine can let its pods go; on one already stopped or destroyed they would stay
  // terminating for ever, so it is only cordoned, and deleting its Node (last) lets Kubernetes clean up.
  if (node.kubernetesNode) {
    const draining = await drainNode(scope, node.name, { evict: node.vm?.status === "running" });
    if (draining) return draining;
  }

  if (node.memberId) {
    const member = members.find((m) => m.id === node.memberId)!;
    await scope.ctx.fence(`remove etcd member ${memberHex(member)}`);
    const result = await withClient(adminClient(scope, through.ip), (c) => c.etcdRemoveMemberById(member.id));
    milestone(
      scope,
      "EtcdMemberRemoved",
      "ScaleDown",
      `etcd member ${memberHex(member)} (${node.name}) ${result === "removed" ? "removed" : "already gone"}, through ${through.name}; ${members.length - 1} member(s) left`,
    );
    return waiting(
      "RemovingEtcdMember",
      `${node.name}: etcd member ${memberHex(member)} removed through ${through.name}; its VM goes next`,
      scope.opts.timings.pollMs,
    );
  }

  if (node.vm) {
    const vmOutcome = await destroyVm(scope, node.name, node.vm);
    if (vmOutcome) return vmOutcome;
  }

  if (node.kubernetesNode) {
    await client.delete(NODE_GVK, { name: node.name }, { ignoreNotFound: true });
    milestone(scope, "NodeRemoved", "ScaleDown", `Kubernetes Node ${node.name} deleted`);
  }
  return waiting("NodeRemoved", `${node.name} removed; looking for the next`, scope.opts.timings.pollMs);
}

/** Takes the departing VM out of HA, stops it, destroys it; undefined once it is gone. */
async function destroyVm(scope: Scope, name: string, vm: VmResource): Promise<Outcome | undefined> {
  const pve = await scope.proxmox();
  // Read again right before: the VM id must still be this cluster's VM for this node.
  const config = await pve.getConfig(vm.node, vm.vmid).catch((err: unknown) => {
    if (err instanceof Error && /does not exist|unable to find/.test(err.message)) return undefined;
    throw err;
  });
  if (!config) return undefined;
  if (!isOurVm(config["tags"], scope.name, name) || config["name"] !== name)
    return blocked(
      "VMNotOurs",
      `VM ${vm.vmid} on ${vm.node} no longer carries this cluster's tags for ${name} (name '${config["name"] ?? ""}'); not destroying it`,
      scope.opts.timings.blockedMs,
    );
  if ((await pve.listHaResources()).some((r) => r.sid === haSid(vm.vmid))) {
    await scope.ctx.fence(`delete HA resource ${haSid(vm.vmid)}`);
    await pve.deleteHaResource(haSid(vm.vmid), { purge: true });
  }
  if (vm.lock)
    return waiting("DeletingVM", `${name}: VM ${vm.vmid} locked (${vm.lock})`, scope.opts.timings.pollMs);
  if (vm.status === "running") {
    await scope.ctx.fence(`stop VM ${vm.vmid}`);
    await pve.stop(vm.node, vm.vmid);
    return waiting("DeletingVM", `${name}: stopping VM ${vm.vmid}`, scope.opts.timings.pollMs);
  }
  await scope.ctx.fence(`delete VM ${vm.vmid}`);
  await pve.deleteVm(vm.node, vm.vmid, { purge: true, destroyUnreferencedDisks: true });
  milestone(scope, "VMDeleted", "ScaleDown", `VM ${vm.vmid} (${name}) on ${vm.node} destroyed`);
  return waiting("DeletingVM", `${name}: destroying VM ${vm.vmid}`, scope.opts.timings.pollMs);
}
