// Every name the controller gives to things outside the HomelabCluster object: Proxmox tags, the image
// file, HA ids, Secrets. Derived from the spec alone, so a restarted operator finds them again.
import type { HomelabCluster, HomelabClusterNode } from "../../crds/homelab-cluster.ts";

export const FINALIZER = "homelab.shdr.ch/homelabcluster";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "homelab-operator";
export const CLUSTER_LABEL = "homelab.shdr.ch/cluster";

/** Marks a VM as created by this operator for this cluster; Proxmox tags allow [a-z0-9_+.-]. */
export function clusterTag(cluster: string): string {
  return `homelab-cluster.${cluster}`;
}

export function nodeTag(node: string): string {
  return `homelab-node.${node}`;
}

export function vmTags(cluster: string, node: string): string[] {
  return [MANAGED_BY, clusterTag(cluster), nodeTag(node)];
}

/** Whether a VM's tags (Proxmox's `;`-separated list) say it is this cluster's VM for `node`. */
export function isOurVm(tags: string | undefined, cluster: string, node: string): boolean {
  const set = new Set((tags ?? "").split(/[;,\s]+/).filter(Boolean));
  return set.has(clusterTag(cluster)) && set.has(nodeTag(node));
}

export const haSid = (vmid: number) => `vm:${vmid}`;

/** PVE 9 HA rule ids: letters, digits, '-', '_' (the seed's cluster: `homelab-k8s-control-planes`). */
export const haRuleName = (cluster: string) => `homelab-${cluster}-control-planes`.replace(/\./g, "-");

export interface ImageRef {
  url: string;
  filename: string;
  /** Proxmox volume id the disks are imported from. */
  volid(storage: string): string;
}

/**
 * The Talos nocloud disk image as qcow2 (Image Factory serves it uncompressed): Proxmox stores it as
 * content `import` and creates each VM disk from it with `import-from`. Named by version and schematic,
 * so a changed schematic is a new file and an existing file is never overwritten.
 */
export function talosImage(spec: HomelabCluster["spec"]): ImageRef {
  const { version, schematic, imageFactory } = spec.talos;
  const filename = `talos-${version}-${schematic}-nocloud-amd64.qcow2`;
  return {
    url: `${imageFactory.replace(/\/+$/, "")}/image/${schematic}/${version}/nocloud-amd64.qcow2`,
    filename,
    volid: (storage) => `${storage}:import/${filename}`,
  };
}

export const secretNames = (cluster: string) => ({
  talosSecrets: `${cluster}-talos-secrets`,
  talosconfig: `${cluster}-talosconfig`,
  /** Cluster API's name and key (`value`), so existing tools find the admin kubeconfig. */
  kubeconfig: `${cluster}-kubeconfig`,
});

export function controlPlanes(spec: HomelabCluster["spec"]): HomelabClusterNode[] {
  return spec.nodes.filter((n) => n.role === "controlplane");
}

/** etcd is bootstrapped on the first control plane in spec order, and only there (never on a VIP). */
export function bootstrapNode(spec: HomelabCluster["spec"]): HomelabClusterNode {
  return controlPlanes(spec)[0]!;
}
