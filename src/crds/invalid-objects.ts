// The table of invalid objects, shared by the unit tests (zod parse must reject each) and the e2e tests
// (the apiserver must reject each, with a message a user understands). Each case starts from a valid
// example and breaks one thing.
import { example } from "./examples.ts";

// biome-ignore lint/suspicious/noExplicitAny: test objects are mutated freely before validation.
type Obj = Record<string, any>;

export interface InvalidCase {
  name: string;
  /** "create" submits the broken object; "update" creates `base` and then submits the broken one. */
  operation: "create" | "update";
  base: () => Obj;
  mutate: (object: Obj) => void;
  /** Substring of the apiserver's rejection. */
  apiMessage: string;
  /** Substring of zod's issue messages; defaults to apiMessage. Absent for update-only rules. */
  zodMessage?: string;
}

function cluster(): Obj {
  return example("HomelabCluster", "k8s");
}
function tenant(): Obj {
  // Named carol so the tenant-name rules are exercised on a name no example uses.
  const t: Obj = example("PeerTenant", "alice");
  t.metadata.name = "carol";
  t.spec.namespaces.additional = ["peers-carol-staging"];
  return t;
}
function app(): Obj {
  return example("AppVending", "portfolio");
}
function migration(): Obj {
  return example("WorkloadMigration", "ups-stack");
}
function aiMigration(): Obj {
  return example("WorkloadMigration", "ai-tool-stack");
}

function mediaMigration(): Obj {
  return example("WorkloadMigration", "media-stack");
}

export const INVALID_CASES: readonly InvalidCase[] = [
  // --- HomelabCluster ---
  {
    name: "two nodes with the same name",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[2].name = "talos-neo";
    },
    apiMessage: "Duplicate value",
    zodMessage: "duplicate name talos-neo",
  },
  {
    name: "two nodes with the same vmid",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[2].vmid = 1031;
    },
    apiMessage: "node vmids must be unique",
  },
  {
    name: "two nodes with the same ip",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[2].ip = "10.0.3.17";
    },
    apiMessage: "node ips must be unique",
  },
  {
    name: "vmid below 100",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[0].vmid = 99;
    },
    apiMessage: "should be greater than or equal to 100",
    zodMessage: ">=100",
  },
  {
    name: "node ip outside the subnet",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[1].ip = "10.0.4.17";
    },
    apiMessage: "every node ip must be inside network.subnet",
  },
  {
    name: "gateway outside the subnet",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.gateway = "10.0.2.1";
    },
    apiMessage: "network.gateway must be inside network.subnet",
  },
  {
    name: "VIP outside the subnet",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.vip = "10.0.30.19";
    },
    apiMessage: "network.vip must be inside network.subnet",
  },
  {
    name: "VIP equal to a node ip",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.vip = "10.0.3.18";
    },
    apiMessage: "network.vip must not be a node ip",
  },
  {
    name: "an even number of control planes",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[2].role = "worker";
    },
    apiMessage: "the number of controlplane nodes must be odd",
  },
  {
    name: "a Talos version without the v",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.talos.version = "1.11.0";
    },
    apiMessage: "must be a version like v1.11.0",
  },
  {
    name: "a schematic that is not 64 hex characters",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.talos.schematic = "376567988ad370138ad8";
    },
    apiMessage: "must be an Image Factory schematic id: 64 lowercase hex characters",
  },
  {
    name: "a malformed node address",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[0].ip = "10.0.3.300";
    },
    apiMessage: "must be an IPv4 address such as 10.0.3.16",
  },
  {
    name: "a subnet with host bits set",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.subnet = "10.0.3.1/24";
    },
    apiMessage: "must be an IPv4 network in CIDR notation without host bits",
  },
  {
    name: "both a CA bundle and a fingerprint",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.proxmox.tls.fingerprint = Array.from({ length: 32 }, () => "AB").join(":");
    },
    apiMessage: "set exactly one of proxmox.tls.caBundleRef or proxmox.tls.fingerprint",
  },
  {
    name: "a pod subnet overlapping the node subnet",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.kubernetes.podSubnet = "10.0.0.0/16";
    },
    apiMessage: "kubernetes.podSubnet must not overlap network.subnet",
  },
  {
    name: "an unknown deletion policy",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.deletionPolicy = "Destroy";
    },
    apiMessage: 'Unsupported value: "Destroy"',
    zodMessage: '"Retain"',
  },
  {
    name: "an unknown platform component",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.components.push({ name: "traefik", version: "3.0.0" });
    },
    apiMessage: 'Unsupported value: "traefik"',
    zodMessage: '"cilium"',
  },
  {
    name: "a plain-http Proxmox endpoint",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.proxmox.endpoint = "http://pve.home.shdr.ch:8006";
    },
    apiMessage: "must be an absolute https URL",
  },
  {
    name: "no workers and no scheduling on control planes",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.kubernetes.allowSchedulingOnControlPlanes = false;
    },
    apiMessage: "a cluster without worker nodes needs kubernetes.allowSchedulingOnControlPlanes: true",
  },
  {
    name: "renaming the cluster",
    operation: "update",
    base: cluster,
    mutate: (o) => {
      o.spec.kubernetes.clusterName = "k9s";
    },
    apiMessage: "kubernetes.clusterName cannot change after creation",
  },
  {
    name: "a control-plane VIP equal to Cilium's VIP",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.controlPlaneVIP = o.spec.network.vip;
    },
    apiMessage: "network.controlPlaneVIP must differ from network.vip",
  },
  {
    name: "a control-plane VIP equal to a node ip",
    operation: "create",
    base: cluster,
    mutate: (o) => {
      o.spec.network.controlPlaneVIP = "10.0.3.17";
    },
    apiMessage: "network.controlPlaneVIP must not be a node ip",
  },
  {
    name: "changing an existing node's vmid",
    operation: "update",
    base: cluster,
    mutate: (o) => {
      o.spec.nodes[0].vmid = 2030;
    },
    apiMessage: "a node's vmid cannot change",
  },
  {
    name: "skipping a Kubernetes minor version",
    operation: "update",
    base: cluster,
    mutate: (o) => {
      o.spec.kubernetes.version = "v1.36.0";
    },
    apiMessage: "kubernetes.version can only move forward, one minor version at a time",
  },
  {
    name: "downgrading Kubernetes",
    operation: "update",
    base: cluster,
    mutate: (o) => {
      o.spec.kubernetes.version = "v1.34.0";
    },
    apiMessage: "kubernetes.version can only move forward, one minor version at a time",
  },
  // --- PeerTenant ---
  {
    name: "a tenant name too long for peers-<name> namespaces",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.metadata.name = "a-very-long-peer-tenant-name-indeed";
      o.spec.namespaces.additional = [];
    },
    apiMessage: "PeerTenant name must be a DNS label of at most 30 characters",
  },
  {
    name: "an additional namespace outside the tenant's prefix",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.spec.namespaces.additional = ["peers-alice-staging"];
    },
    apiMessage: "every namespaces.additional entry must be named peers-<tenant name>-<suffix>",
  },
  {
    name: "a tenant without owners",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.spec.owners = { users: [], groups: [] };
    },
    apiMessage: "owners needs at least one user or group",
  },
  {
    name: "privileged Pod Security",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.spec.podSecurity = "privileged";
    },
    apiMessage: 'Unsupported value: "privileged"',
    zodMessage: '"restricted"',
  },
  {
    name: "a quota key that is not a resource name",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.spec.quota.perNamespace["Requests Memory"] = "4Gi";
    },
    apiMessage: "resource names look like requests.memory, limits.cpu or pods",
  },
  {
    name: "more namespaces than the tenant may have",
    operation: "create",
    base: tenant,
    mutate: (o) => {
      o.spec.namespaces.additional = ["peers-carol-a", "peers-carol-b", "peers-carol-c"];
    },
    apiMessage: "namespaces.additional plus the primary namespace exceed namespaces.max",
  },
  // --- AppVending ---
  {
    name: "an AppVending that asks for nothing",
    operation: "create",
    base: app,
    mutate: (o) => {
      o.spec = {};
    },
    apiMessage: "an AppVending needs at least one of app, bucket, database or oidcClient",
  },
  {
    name: "scale min above max",
    operation: "create",
    base: app,
    mutate: (o) => {
      o.spec.app.scale = { min: 3, max: 1 };
    },
    apiMessage: "app.scale.min must not exceed app.scale.max",
  },
  {
    name: "a bucket Secret name without a bucket",
    operation: "create",
    base: app,
    mutate: (o) => {
      delete o.spec.bucket;
    },
    apiMessage: "connectionSecrets.bucket is set but no bucket is requested",
  },
  {
    name: "an env entry with a value and a Secret key",
    operation: "create",
    base: app,
    mutate: (o) => {
      o.spec.app.env[0].secretKeyRef = { name: "portfolio-env", key: "level" };
    },
    apiMessage: "an env entry takes value or secretKeyRef, not both",
  },
  {
    name: "an image reference with spaces",
    operation: "create",
    base: app,
    mutate: (o) => {
      o.spec.app.image = "my portfolio";
    },
    apiMessage: "must be an image reference",
  },
  // --- WorkloadMigration ---
  {
    name: "a HelmRelease target without helm",
    operation: "create",
    base: migration,
    mutate: (o) => {
      o.spec.targets[1].kind = "HelmRelease";
    },
    apiMessage: "a target of kind HelmRelease takes helm only",
  },
  {
    name: "deleting the VM without a backup",
    operation: "create",
    base: migration,
    mutate: (o) => {
      delete o.spec.decommission.backup;
    },
    apiMessage: "decommission.deleteAfter needs stopVM: true and a backup",
  },
  {
    name: "SSH host keys that are not known_hosts lines",
    operation: "create",
    base: mediaMigration,
    mutate: (o) => {
      o.spec.dataSync.ssh.knownHosts = "10.0.2.20 trust-me-its-fine";
    },
    apiMessage: "must be known_hosts lines",
  },
  {
    name: "Rsync without SSH access",
    operation: "create",
    base: mediaMigration,
    mutate: (o) => {
      delete o.spec.dataSync.ssh;
    },
    apiMessage: "dataSync.method Rsync needs dataSync.ssh",
  },
  {
    name: "a migration that depends on itself",
    operation: "create",
    base: migration,
    mutate: (o) => {
      o.spec.dependsOn = ["ups-stack"];
    },
    apiMessage: "a WorkloadMigration cannot depend on itself",
  },
  {
    name: "a data path into a volume the target lacks",
    operation: "create",
    base: mediaMigration,
    mutate: (o) => {
      o.spec.dataSync.paths[0].volume = "data";
    },
    apiMessage: "every dataSync.paths entry must name a target and one of that target's template.volumes",
  },
  {
    name: "a KnativeService target with a persistent volume",
    operation: "create",
    base: aiMigration,
    mutate: (o) => {
      o.spec.targets[1].template.volumes = [{ name: "data", mountPath: "/app/backend/data", size: "1Gi" }];
    },
    apiMessage: "a KnativeService target cannot have template.volumes",
  },
  {
    name: "a CronJob target without a schedule",
    operation: "create",
    base: migration,
    mutate: (o) => {
      o.spec.targets[1].kind = "CronJob";
    },
    apiMessage: "a CronJob target needs template.schedule",
  },
  {
    name: "a manifest target routing to a Service the operator does not make",
    operation: "create",
    base: migration,
    mutate: (o) => {
      o.spec.targets[0].backend.service = "kube-dns";
    },
    apiMessage: "backend.service may name another Service only for a HelmRelease",
  },
  {
    name: "pointing a migration at another VM",
    operation: "update",
    base: migration,
    mutate: (o) => {
      o.spec.source.vmid = 1011;
    },
    apiMessage: "source.vmid cannot change",
  },
  {
    name: "a grace period that is not a duration",
    operation: "create",
    base: migration,
    mutate: (o) => {
      o.spec.decommission.deleteAfter = "7 days";
    },
    apiMessage: "must be a duration such as 168h",
  },
];
