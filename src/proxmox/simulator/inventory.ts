// The seed homelab's Proxmox cluster (../shared/seed/kubernetes-exploration.md): four nodes, Ceph for
// files (cephfs) and VM disks (RBD), and a Proxmox Backup Server. Local mode starts the simulator with
// it, so the seed's HomelabCluster finds the nodes and storages it names.
import type { StorageSpec } from "./cluster.ts";

const TiB = 1024 ** 4;

export interface SimulatorInventory {
  nodes: string[];
  storages: StorageSpec[];
}

export const SEED_HOMELAB_INVENTORY: SimulatorInventory = {
  nodes: ["trinity", "neo", "niobe", "smith"],
  storages: [
    // Every Proxmox VE install has `local` (a directory on the node's root disk).
    {
      storage: "local",
      type: "dir",
      content: ["iso", "vztmpl", "backup"],
      shared: false,
      total: 100 * 1024 ** 3,
    },
    // The seed downloads the Talos image and its snippets here (datastore_id = "cephfs"); `import` lets
    // download-url store a disk image that `import-from` can read.
    {
      storage: "cephfs",
      type: "cephfs",
      content: ["iso", "vztmpl", "snippets", "import"],
      shared: true,
      total: 4 * TiB,
    },
    // VM disks and Proxmox's cloud-init drives (datastore_id = "ceph-vm-disks").
    { storage: "ceph-vm-disks", type: "rbd", content: ["images", "rootdir"], shared: true, total: 4 * TiB },
    // Backups go to PBS on smith.
    { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 8 * TiB },
  ],
};
