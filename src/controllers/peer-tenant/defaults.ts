// Operator-wide settings that fill what a tenant's spec leaves out. Without them a tenant that names only
// memory in its quota could take every CPU, fill the disks with PVCs and etcd with Secrets.
import type { ResourceList } from "../shared/quantity.ts";

export interface TenantDefaults {
  /** ResourceQuota hard limits per namespace for every resource the tenant's perNamespace does not name. */
  quota: ResourceList;
  /** Requests of containers that set none, when the tenant's limits do not say. */
  containerDefaultRequest: ResourceList;
  /** Limits of containers that set none, when the tenant's limits do not say. */
  containerDefault: ResourceList;
  /** Largest storage request of one PersistentVolumeClaim, when the tenant's limits do not say. */
  maxVolumeSize: string;
  /**
   * The cluster's own pod and service networks: the Cilium deny rules keep them reachable while they
   * refuse every other private address (the LAN behind the cluster: Proxmox, PBS, NFS, OpenBao).
   */
  clusterNetworks: string[];
  /** PriorityClasses tenant pods may name (none by default: no system-cluster-critical for tenants). */
  allowedPriorityClasses: string[];
}

export const DEFAULT_TENANT_DEFAULTS: TenantDefaults = {
  quota: {
    "requests.cpu": "4",
    "limits.cpu": "8",
    "requests.memory": "8Gi",
    "limits.memory": "16Gi",
    "requests.storage": "50Gi",
    persistentvolumeclaims: "10",
    "requests.ephemeral-storage": "10Gi",
    "limits.ephemeral-storage": "20Gi",
    pods: "50",
    services: "20",
    "count/secrets": "100",
    "count/configmaps": "100",
  },
  containerDefaultRequest: { cpu: "100m", memory: "128Mi" },
  containerDefault: { cpu: "500m", memory: "512Mi" },
  maxVolumeSize: "20Gi",
  // Talos' defaults (the seed's workload cluster): pods 10.244.0.0/16, services 10.96.0.0/12.
  clusterNetworks: ["10.244.0.0/16", "10.96.0.0/12"],
  allowedPriorityClasses: [],
};
