// Blast radius: the VM a migration may touch is the one whose live id AND name match the spec, that no
// HomelabCluster claims (by its tags or by its spec's node list). Its node is read live every time:
// HA may have moved it since the spec was written.
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { VmResource } from "../../proxmox/index.ts";
import { guestLabel, sourceType } from "./guest.ts";
import { CLUSTER_TAG_PREFIX } from "./names.ts";

export type SourceVerdict =
  | { ok: true; vm: VmResource }
  | { ok: false; absent: boolean; reason: string; message: string };

export function tagsOf(vm: VmResource): string[] {
  return (vm.tags ?? "").split(/[;,\s]+/).filter(Boolean);
}

/** Decides whether `vm` (the live read of spec.source.vmid, undefined if absent) may be touched. */
export function judgeSourceVm(
  wm: WorkloadMigration,
  vm: VmResource | undefined,
  clusters: HomelabCluster[],
): SourceVerdict {
  const { vmid, name } = wm.spec.source!;
  const type = sourceType(wm.spec.source!);
  if (!vm) return { ok: false, absent: true, reason: "VMNotFound", message: `no guest ${vmid} in Proxmox` };
  // A migration never touches a guest of another type than it names: the endpoints it would use are
  // that type's, and a container is not the VM someone wrote down (nor the other way round).
  if (vm.type !== type)
    return {
      ok: false,
      absent: false,
      reason: "TypeMismatch",
      message: `guest ${vmid} is ${vm.type === "lxc" ? "a container (lxc)" : "a VM (qemu)"}, not the ${type} guest source.type names: refusing to touch it`,
    };
  if (vm.name !== name)
    return {
      ok: false,
      absent: false,
      reason: "NameMismatch",
      message: `${guestLabel(type, vmid)} is named ${JSON.stringify(vm.name ?? "")}, not ${JSON.stringify(name)}: refusing to touch it`,
    };
  const clusterTag = tagsOf(vm).find((t) => t.startsWith(CLUSTER_TAG_PREFIX));
  if (clusterTag)
    return {
      ok: false,
      absent: false,
      reason: "BelongsToCluster",
      message: `VM ${vmid} carries tag ${clusterTag}: it is a HomelabCluster's VM and is never migrated`,
    };
  const claimant = clusters.find((c) => (c.spec?.nodes ?? []).some((n) => n.vmid === vmid));
  if (claimant)
    return {
      ok: false,
      absent: false,
      reason: "BelongsToCluster",
      message: `VM ${vmid} is a node of HomelabCluster ${claimant.metadata?.name}: it is never migrated`,
    };
  return { ok: true, vm };
}
