// Deletion behind the finalizer. Retain: the VMs keep running and the Secrets stay (they are the keys to
// those VMs); an Event says so. Delete: HA entries first (HA would restart a stopped VM), then each VM
// stopped and purged (fenced), then the HA rule and the Secrets, then the finalizer.
import { removeFinalizer } from "../../runtime/index.ts";
import { FINALIZER, haRuleName, haSid, secretNames } from "./names.ts";
import { taggedNodeName } from "./scale-down.ts";
import type { Scope } from "./scope.ts";
import { SECRET_GVK } from "./secrets.ts";

/** Returns a delay to look again, or undefined once the finalizer is removed. */
export async function reconcileDelete(scope: Scope): Promise<number | undefined> {
  const { spec, ctx } = scope;
  if (spec.deletionPolicy === "Retain") {
    const vms = spec.nodes.map((n) => `${n.vmid} (${n.name})`).join(", ");
    await ctx.recorder.record(scope.cached, {
      type: "Normal",
      reason: "VMsRetained",
      action: "Delete",
      note: `deletionPolicy Retain: VMs ${vms} keep running; Secrets ${Object.values(secretNames(scope.name)).join(", ")} kept in ${scope.opts.namespace}`,
    });
    await removeFinalizer(ctx.client, scope.cached, FINALIZER);
    return undefined;
  }

  const pve = await scope.proxmox();
  // The spec's VMs, and those of nodes scaled away whose removal had not finished (still tagged ours).
  const ours = (await scope.vms()).filter((vm) => {
    const node = taggedNodeName(vm.tags, scope.name);
    return node !== undefined && (spec.nodes.find((n) => n.vmid === vm.vmid)?.name ?? node) === node;
  });
  const ha = new Set((await pve.listHaResources()).map((r) => r.sid));
  const remaining: string[] = [];
  for (const vm of ours) {
    if (ha.has(haSid(vm.vmid))) await pve.deleteHaResource(haSid(vm.vmid), { purge: true });
    if (vm.lock) {
      remaining.push(`${vm.vmid}: locked (${vm.lock})`);
    } else if (vm.status === "running") {
      await ctx.fence(`stop VM ${vm.vmid}`);
      await pve.stop(vm.node, vm.vmid);
      remaining.push(`${vm.vmid}: stopping`);
    } else {
      await ctx.fence(`delete VM ${vm.vmid}`);
      await pve.deleteVm(vm.node, vm.vmid, { purge: true, destroyUnreferencedDisks: true });
      remaining.push(`${vm.vmid}: deleting`);
    }
  }
  if (remaining.length) {
    scope.deleting = remaining.join("; ");
    return scope.opts.timings.pollMs;
  }
  const rule = haRuleName(scope.name);
  if ((await pve.listHaRules()).some((r) => r.rule === rule)) await pve.deleteHaRule(rule);
  for (const name of Object.values(secretNames(scope.name))) {
    await ctx.client.delete(SECRET_GVK, { namespace: scope.opts.namespace, name }, { ignoreNotFound: true });
  }
  await ctx.recorder.record(scope.cached, {
    type: "Normal",
    reason: "VMsDeleted",
    action: "Delete",
    note: `deletionPolicy Delete: VMs ${spec.nodes.map((n) => n.vmid).join(", ")}, their HA entries and the Secrets removed`,
  });
  await removeFinalizer(ctx.client, scope.cached, FINALIZER);
  return undefined;
}
