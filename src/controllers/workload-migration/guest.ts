// The source guest's Proxmox operations by its type: a VM (qemu) and a container (lxc) have their own
// endpoints, task types and HA service ids, and a migration uses only those of the type it names
// (source.type, checked against the live guest in source-vm.ts).
import type { ProxmoxClient, Upid } from "../../proxmox/index.ts";

export type GuestType = "qemu" | "lxc";

/** Proxmox's task types for what this controller asks of a guest, by guest type. */
export const TASK_TYPES = {
  qemu: { shutdown: "qmshutdown", start: "qmstart", destroy: "qmdestroy", backup: "vzdump" },
  lxc: { shutdown: "vzshutdown", start: "vzstart", destroy: "vzdestroy", backup: "vzdump" },
} as const;

/**
 * For a guest HA manages, Proxmox answers a shutdown or start request with a task of HA's own type
 * (it records the request for the HA stack), whatever the guest's type.
 */
export const HA_TASK_TYPES = { shutdown: "hastop", start: "hastart" } as const;
export type GuestTaskType =
  | (typeof TASK_TYPES)[GuestType][keyof (typeof TASK_TYPES)["qemu"]]
  | (typeof HA_TASK_TYPES)[keyof typeof HA_TASK_TYPES];

/** The guest type a migration names (the CRD's default is qemu). */
export const sourceType = (source: { type?: GuestType }): GuestType => source.type ?? "qemu";

/** HA service id: `vm:<id>` for a VM, `ct:<id>` for a container. */
export const haSidOf = (type: GuestType, vmid: number) => `${type === "lxc" ? "ct" : "vm"}:${vmid}`;

/** "VM 1010" or "CT 1100", as Proxmox itself names them in messages. */
export const guestLabel = (type: GuestType, vmid: number) => `${type === "lxc" ? "CT" : "VM"} ${vmid}`;

export function shutdownGuest(
  proxmox: ProxmoxClient,
  type: GuestType,
  node: string,
  vmid: number,
  options: { timeoutSeconds: number; forceStop: boolean },
): Promise<Upid> {
  return type === "lxc"
    ? proxmox.shutdownContainer(node, vmid, options)
    : proxmox.shutdown(node, vmid, options);
}

export function startGuest(
  proxmox: ProxmoxClient,
  type: GuestType,
  node: string,
  vmid: number,
): Promise<Upid> {
  return type === "lxc" ? proxmox.startContainer(node, vmid) : proxmox.start(node, vmid);
}

export function deleteGuest(
  proxmox: ProxmoxClient,
  type: GuestType,
  node: string,
  vmid: number,
  options: { purge: boolean; destroyUnreferencedDisks: boolean },
): Promise<Upid> {
  return type === "lxc"
    ? proxmox.deleteContainer(node, vmid, options)
    : proxmox.deleteVm(node, vmid, options);
}
