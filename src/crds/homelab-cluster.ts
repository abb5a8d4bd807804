// HomelabCluster: a Talos Kubernetes cluster on Proxmox VE VMs, from empty hypervisor to platform.
// Field shapes follow the seed's Tofu setup (tofu/home/talos_cluster.tf, config/vm.yml) and the
// providers that do the same job (CAPMOX ProxmoxMachine, CABPT/CACPPT, terraform-provider-talos).
import * as z from "zod";
import { ComponentSpec as Component, PlatformSpec } from "./components.ts";
import {
  deletionPolicy,
  dnsLabel,
  duration,
  ipInside,
  ipInsideCheck,
  ipv4Address,
  ipv4Network,
  mapListOf,
  matching,
  releaseVersion,
  setOf,
  text,
  url,
} from "./fields.ts";
import { cidrsOverlap } from "./ipv4.ts";
import { defineKind } from "./kind.ts";
import { immutable, withRules } from "./rules.ts";
import { conditionStatusPath, statusFields } from "./status.ts";

const PROXMOX_ID = /^[a-zA-Z][-a-zA-Z0-9_.]*[a-zA-Z0-9]$/;
// A Secret's name is a DNS subdomain (dots allowed, up to 253 characters), not a label: references must
// accept every name a Secret can have.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
function secretName() {
  return matching(
    DNS_SUBDOMAIN,
    253,
    "must be a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
  );
}
function secretReference(description: string) {
  return z
    .object({
      name: secretName().describe("Name of the Secret."),
      namespace: dnsLabel().describe("Namespace of the Secret."),
    })
    .describe(description);
}
function proxmoxId(what: string, example: string) {
  return matching(PROXMOX_ID, 64, `must be a Proxmox ${what} id such as ${example}`);
}

const TlsTrust = withRules(
  z
    .object({
      caBundleRef: z
        .object({
          name: secretName().describe("Name of the Secret holding the CA bundle."),
          namespace: dnsLabel().describe("Namespace of the Secret."),
          key: matching(/^[-._a-zA-Z0-9]+$/, 253, "must be a Secret key")
            .default("ca.crt")
            .describe("Key of the PEM CA bundle inside the Secret (default ca.crt)."),
        })
        .optional()
        .describe("Trust the Proxmox API certificate if it chains to this PEM CA bundle."),
      fingerprint: matching(
        /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/,
        95,
        "must be a SHA-256 fingerprint: 32 upper-case hex bytes separated by ':' (as shown by Proxmox)",
      )
        .optional()
        .describe(
          "Trust exactly this certificate, by SHA-256 fingerprint (Datacenter > node > Certificates in the Proxmox UI).",
        ),
    })
    .describe(
      "How to trust the Proxmox API's TLS certificate: a CA bundle or a pinned fingerprint, exactly one.",
    ),
  [
    {
      rule: "has(self.caBundleRef) != has(self.fingerprint)",
      message: "set exactly one of proxmox.tls.caBundleRef or proxmox.tls.fingerprint",
      check: (t) => (t.caBundleRef !== undefined) !== (t.fingerprint !== undefined),
    },
  ],
);

const Proxmox = z
  .object({
    endpoint: url(["https"], "https://pve.home.shdr.ch:8006").describe(
      "Base URL of the Proxmox VE API, e.g. https://pve.home.shdr.ch:8006.",
    ),
    credentialsRef: secretReference(
      "Secret with the API token: key tokenID (user@realm!name) and key secret (the token's UUID secret).",
    ),
    tls: TlsTrust,
    imageNode: proxmoxId("node", "smith")
      .optional()
      .describe(
        "Proxmox node that downloads the Talos image into imageStorage (the seed uses smith); defaults to the first node's proxmoxNode.",
      ),
    imageStorage: proxmoxId("storage", "cephfs").describe(
      "File-based storage with content type import that receives the Talos nocloud disk image (qcow2) the VM disks are imported from, e.g. cephfs; shared storage needs one download, node-local storage one per Proxmox node.",
    ),
    diskStorage: proxmoxId("storage", "ceph-vm-disks").describe(
      "Storage for VM disks and the cloud-init drive, e.g. ceph-vm-disks.",
    ),
    bridge: proxmoxId("bridge", "vmbr0").describe(
      "Linux bridge the VMs' network device attaches to, e.g. vmbr0.",
    ),
    vlan: z
      .number()
      .int()
      .min(1)
      .max(4094)
      .optional()
      .describe(
        "VLAN tag of the VMs' network device (the seed's cluster lives on VLAN 3); untagged when unset.",
      ),
    ha: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe("Register each VM as a Proxmox HA resource (state started)."),
        spreadControlPlanes: z
          .boolean()
          .default(true)
          .describe("Add an HA rule that keeps control-plane VMs on different Proxmox nodes."),
        maxRestart: z
          .number()
          .int()
          .min(0)
          .max(10)
          .default(3)
          .describe("HA max_restart: restarts on the same node before relocating."),
        maxRelocate: z
          .number()
          .int()
          .min(0)
          .max(10)
          .default(2)
          .describe("HA max_relocate: relocations to other nodes before giving up."),
      })
      .default({ enabled: true, spreadControlPlanes: true, maxRestart: 3, maxRelocate: 2 })
      .describe("Proxmox high availability for the VMs."),
  })
  .describe("Where and how the VMs are created on Proxmox VE.");

const Talos = z
  .object({
    version: releaseVersion("v1.11.0").describe(
      "Talos Linux version installed on every node, e.g. v1.11.0. Raising it rolls an upgrade one node at a time.",
    ),
    schematic: matching(
      /^[0-9a-f]{64}$/,
      64,
      "must be an Image Factory schematic id: 64 lowercase hex characters",
    ).describe(
      "Talos Image Factory schematic id (64 hex characters) naming the image's extensions; a new one is rolled out by upgrading the nodes.",
    ),
    imageChecksum: z
      .object({
        algorithm: z.enum(["sha256", "sha512"]).describe("Hash algorithm: sha256 or sha512."),
        value: matching(/^([0-9a-f]{64}|[0-9a-f]{128})$/, 128, "must be a lowercase hex digest").describe(
          "Expected digest of the nocloud-amd64.qcow2 image for this schematic and version.",
        ),
      })
      .optional()
      .describe(
        "Pins the image: Proxmox verifies the download against it and refuses a mismatch. Unset: not verified (Image Factory publishes no checksum outside Enterprise).",
      ),
    imageFactory: url(["https", "http"], "https://factory.talos.dev")
      .default("https://factory.talos.dev")
      .describe("Talos Image Factory base URL (default https://factory.talos.dev)."),
    installDisk: matching(/^\/dev\/[a-z0-9]+$/, 64, "must be a device path such as /dev/vda")
      .default("/dev/vda")
      .describe("Disk Talos installs to inside the VM (default /dev/vda, the virtio disk)."),
    configPatches: z
      .array(text(65536).describe("One patch document."))
      .max(32)
      .default([])
      .describe(
        "Machine-config patches applied to every node after the generated config, as YAML strategic-merge documents.",
      ),
  })
  .describe("The Talos Linux image and machine configuration.");

const Oidc = z
  .object({
    issuerURL: url(["https"], "https://auth.shdr.ch/realms/aether").describe(
      "OIDC issuer whose ID tokens the API server accepts, e.g. https://auth.shdr.ch/realms/aether.",
    ),
    clientID: text(253).min(1).describe("Audience (client id) the tokens must carry, e.g. kubernetes."),
    usernameClaim: text(253).default("sub").describe("Claim used as the Kubernetes user name (default sub)."),
    usernamePrefix: text(64)
      .optional()
      .describe(
        "Prefix added to user names. Unset means what kube-apiserver means: '<issuerURL>#' for a usernameClaim other than email, none for email; empty string: no prefix.",
      ),
    groupsClaim: text(253).optional().describe("Claim holding the user's groups, e.g. groups."),
    groupsPrefix: text(64).optional().describe("Prefix added to group names; RBAC subjects must include it."),
  })
  .describe("OIDC authentication for the API server, so people log in with their identity provider.");

const Kubernetes = z
  .object({
    version: withRules(releaseVersion("v1.34.1"), [
      {
        // Kubernetes supports neither downgrades nor skipping a minor version (version skew policy).
        rule: "!isSemver(self, true) || !isSemver(oldSelf, true) || (semver(self, true).major() == semver(oldSelf, true).major() && semver(self, true).minor() >= semver(oldSelf, true).minor() && semver(self, true).minor() <= semver(oldSelf, true).minor() + 1 && (semver(self, true).minor() > semver(oldSelf, true).minor() || semver(self, true).patch() >= semver(oldSelf, true).patch()))",
        message:
          "kubernetes.version can only move forward, one minor version at a time (e.g. v1.34.x to v1.35.y)",
      },
    ]).describe("Kubernetes version, e.g. v1.34.1. Raising it upgrades the control plane, then kubelets."),
    clusterName: immutable(dnsLabel(), "kubernetes.clusterName cannot change after creation").describe(
      "Cluster name written into the Talos config and kubeconfig, e.g. k8s; immutable.",
    ),
    endpoint: url(["https"], "https://10.0.3.16:6443").describe(
      "URL of the Kubernetes API server the nodes and kubeconfig use, e.g. https://10.0.3.16:6443.",
    ),
    podSubnet: ipv4Network("10.244.0.0/16")
      .default("10.244.0.0/16")
      .describe("Pod network CIDR (default 10.244.0.0/16)."),
    serviceSubnet: ipv4Network("10.96.0.0/12")
      .default("10.96.0.0/12")
      .describe("Service network CIDR (default 10.96.0.0/12)."),
    allowSchedulingOnControlPlanes: z
      .boolean()
      .default(true)
      .describe("Run workloads on control-plane nodes (needed when there are no workers; default true)."),
    oidc: Oidc.optional(),
  })
  .describe("The Kubernetes cluster Talos runs.");

const Network = withRules(
  z
    .object({
      subnet: ipv4Network("10.0.3.0/24").describe(
        "Network the nodes' static addresses live in, e.g. 10.0.3.0/24; node IPs, gateway and VIP must be inside it.",
      ),
      gateway: ipv4Address("10.0.3.1").describe("Default gateway of the nodes, e.g. 10.0.3.1."),
      nameservers: setOf(ipv4Address("10.0.3.1").describe("A DNS server address."), 3)
        .min(1)
        .describe("DNS servers of the nodes (one to three), e.g. [10.0.3.1]."),
      interface: matching(/^[a-z][a-z0-9]*$/, 15, "must be a Linux interface name such as eth0")
        .default("eth0")
        .describe("Node interface that carries the static address (default eth0)."),
      vip: ipv4Address("10.0.3.19")
        .optional()
        .describe(
          "Address announced by Cilium L2 for LoadBalancer services, e.g. 10.0.3.19; not a node IP and never put on a node's interface.",
        ),
      controlPlaneVIP: ipv4Address("10.0.3.20")
        .optional()
        .describe(
          "Optional shared address Talos moves between the control planes for the Kubernetes API (Talos' layer-2 VIP), so the endpoint survives a control plane's reboot; point kubernetes.endpoint at it. Must differ from network.vip.",
        ),
      l2Interfaces: setOf(
        matching(/^[a-z][a-z0-9]*$/, 15, "must be a Linux interface name such as eth0").describe(
          "An interface name.",
        ),
        8,
      )
        .default(["eth0"])
        .describe("Interfaces Cilium announces the VIP on (default [eth0])."),
    })
    .describe("Static addressing of the nodes on their VLAN."),
  [
    {
      rule: ipInside("self.subnet", "self.gateway"),
      message: "network.gateway must be inside network.subnet",
      fieldPath: ".gateway",
      check: (n) => ipInsideCheck(n.subnet, n.gateway),
    },
    {
      rule: `!has(self.vip) || (${ipInside("self.subnet", "self.vip")})`,
      message: "network.vip must be inside network.subnet",
      fieldPath: ".vip",
      check: (n) => n.vip === undefined || ipInsideCheck(n.subnet, n.vip),
    },
    {
      rule: "!has(self.vip) || self.vip != self.gateway",
      message: "network.vip must differ from network.gateway",
      fieldPath: ".vip",
      check: (n) => n.vip !== n.gateway,
    },
    {
      rule: `!has(self.controlPlaneVIP) || (${ipInside("self.subnet", "self.controlPlaneVIP")})`,
      message: "network.controlPlaneVIP must be inside network.subnet",
      fieldPath: ".controlPlaneVIP",
      check: (n) => n.controlPlaneVIP === undefined || ipInsideCheck(n.subnet, n.controlPlaneVIP),
    },
    {
      rule: "!has(self.controlPlaneVIP) || self.controlPlaneVIP != self.gateway",
      message: "network.controlPlaneVIP must differ from network.gateway",
      fieldPath: ".controlPlaneVIP",
      check: (n) => n.controlPlaneVIP !== n.gateway,
    },
    {
      // Both on one segment would answer ARP for the same address: Cilium's and Talos' VIPs are two.
      rule: "!has(self.controlPlaneVIP) || !has(self.vip) || self.controlPlaneVIP != self.vip",
      message: "network.controlPlaneVIP must differ from network.vip (Cilium's LoadBalancer VIP)",
      fieldPath: ".controlPlaneVIP",
      check: (n) => n.controlPlaneVIP === undefined || n.controlPlaneVIP !== n.vip,
    },
  ],
);

const NodeRole = z.enum(["controlplane", "worker"]);

const Node = withRules(
  z
    .object({
      name: dnsLabel().describe("Node name: the VM name and the Talos hostname, e.g. talos-trinity."),
      vmid: z
        .number()
        .int()
        .min(100)
        .max(999999999)
        .describe("Proxmox VM id (100 to 999999999), unique in the Proxmox cluster, e.g. 1030."),
      proxmoxNode: proxmoxId("node", "trinity").describe("Proxmox node the VM is created on, e.g. trinity."),
      role: NodeRole.describe("controlplane (runs etcd and the API server) or worker."),
      cores: z.number().int().min(1).max(256).describe("vCPU cores of the VM, e.g. 8."),
      cpuType: matching(/^[-+a-zA-Z0-9_.]+$/, 64, "must be a Proxmox CPU type such as host or x86-64-v3")
        .default("host")
        .describe("Proxmox CPU type of the VM (default host, as the seed: the host CPU's features)."),
      memoryMiB: z
        .number()
        .int()
        .min(2048)
        .max(4194304)
        .describe("Memory of the VM in MiB (at least 2048), e.g. 16384."),
      diskGiB: z
        .number()
        .int()
        .min(10)
        .max(65536)
        .describe("System disk size in GiB (at least 10), e.g. 100."),
      ip: ipv4Address("10.0.3.16").describe(
        "Static IPv4 address of the node inside network.subnet, e.g. 10.0.3.16.",
      ),
    })
    .describe("One Talos VM."),
  [
    {
      rule: "self.vmid == oldSelf.vmid",
      message: "a node's vmid cannot change; remove the node and add one with a new name instead",
      fieldPath: ".vmid",
    },
    {
      rule: "self.role == oldSelf.role",
      message: "a node's role cannot change; remove the node and add one with a new name instead",
      fieldPath: ".role",
    },
  ],
);
export type HomelabClusterNode = z.infer<typeof Node>;

const Nodes = withRules(
  mapListOf(Node, "name", 32)
    .min(1)
    .describe("The cluster's VMs, keyed by name: at least one, an odd number of control planes."),
  [
    {
      rule: "self.all(a, self.exists_one(b, b.vmid == a.vmid))",
      message: "node vmids must be unique",
      check: (nodes) => new Set(nodes.map((n) => n.vmid)).size === nodes.length,
    },
    {
      rule: "self.all(a, self.exists_one(b, b.ip == a.ip))",
      message: "node ips must be unique",
      check: (nodes) => new Set(nodes.map((n) => n.ip)).size === nodes.length,
    },
    {
      rule: "self.filter(n, n.role == 'controlplane').size() % 2 == 1",
      message: "the number of controlplane nodes must be odd (1, 3, 5, ...) so etcd keeps a quorum",
      check: (nodes) => nodes.filter((n) => n.role === "controlplane").length % 2 === 1,
    },
  ],
);

const Upgrade = z
  .object({
    maxUnavailable: z
      .number()
      .int()
      .min(1)
      .max(32)
      .default(1)
      .describe("Workers upgraded at once (default 1); control planes are always upgraded one at a time."),
    healthTimeout: duration("10m")
      .default("10m")
      .describe("How long a node may take to become healthy after its upgrade before the rollout pauses."),
    paused: z
      .boolean()
      .default(false)
      .describe("Stop starting new node upgrades (one in progress finishes)."),
  })
  .describe("How Talos and Kubernetes version changes roll out.");

const HomelabClusterSpec = withRules(
  z
    .object({
      proxmox: Proxmox,
      talos: Talos,
      kubernetes: Kubernetes,
      network: Network,
      nodes: Nodes,
      platform: PlatformSpec.optional(),
      components: mapListOf(Component, "name", 32)
        .default([])
        .describe(
          "Platform components to install, keyed by name, in dependency order chosen by the operator.",
        ),
      upgrade: Upgrade.default({ maxUnavailable: 1, healthTimeout: "10m", paused: false }),
      deletionPolicy: deletionPolicy("the VMs"),
    })
    .describe("Desired state of a Talos cluster on Proxmox VE."),
  [
    {
      rule: `self.nodes.all(n, ${ipInside("self.network.subnet", "n.ip")})`,
      message: "every node ip must be inside network.subnet",
      fieldPath: ".nodes",
      check: (s) => s.nodes.every((n) => ipInsideCheck(s.network.subnet, n.ip)),
    },
    {
      rule: "!has(self.network.vip) || !self.nodes.exists(n, n.ip == self.network.vip)",
      message: "network.vip must not be a node ip",
      fieldPath: ".network.vip",
      check: (s) => s.network.vip === undefined || !s.nodes.some((n) => n.ip === s.network.vip),
    },
    {
      rule: "!has(self.network.controlPlaneVIP) || !self.nodes.exists(n, n.ip == self.network.controlPlaneVIP)",
      message: "network.controlPlaneVIP must not be a node ip",
      fieldPath: ".network.controlPlaneVIP",
      check: (s) =>
        s.network.controlPlaneVIP === undefined || !s.nodes.some((n) => n.ip === s.network.controlPlaneVIP),
    },
    {
      rule: "!self.nodes.exists(n, n.ip == self.network.gateway)",
      message: "network.gateway must not be a node ip",
      fieldPath: ".network.gateway",
      check: (s) => !s.nodes.some((n) => n.ip === s.network.gateway),
    },
    {
      rule: "self.kubernetes.allowSchedulingOnControlPlanes || self.nodes.exists(n, n.role == 'worker')",
      message: "a cluster without worker nodes needs kubernetes.allowSchedulingOnControlPlanes: true",
      fieldPath: ".kubernetes.allowSchedulingOnControlPlanes",
      check: (s) => s.kubernetes.allowSchedulingOnControlPlanes || s.nodes.some((n) => n.role === "worker"),
    },
    {
      rule: overlapRule("self.kubernetes.podSubnet", "self.network.subnet"),
      message: "kubernetes.podSubnet must not overlap network.subnet",
      fieldPath: ".kubernetes.podSubnet",
      check: (s) => !cidrsOverlap(s.kubernetes.podSubnet, s.network.subnet),
    },
    {
      rule: overlapRule("self.kubernetes.serviceSubnet", "self.network.subnet"),
      message: "kubernetes.serviceSubnet must not overlap network.subnet",
      fieldPath: ".kubernetes.serviceSubnet",
      check: (s) => !cidrsOverlap(s.kubernetes.serviceSubnet, s.network.subnet),
    },
    {
      rule: overlapRule("self.kubernetes.podSubnet", "self.kubernetes.serviceSubnet"),
      message: "kubernetes.podSubnet and kubernetes.serviceSubnet must not overlap",
      fieldPath: ".kubernetes.serviceSubnet",
      check: (s) => !cidrsOverlap(s.kubernetes.podSubnet, s.kubernetes.serviceSubnet),
    },
  ],
);

/** CEL: two well-formed networks overlap exactly when one contains the other's first address. */
function overlapRule(a: string, b: string): string {
  return `!isCIDR(${a}) || !isCIDR(${b}) || !(cidr(${a}).containsIP(cidr(${b}).ip()) || cidr(${b}).containsIP(cidr(${a}).ip()))`;
}

export const HomelabClusterPhase = z.enum([
  "Pending",
  "Provisioning",
  "Bootstrapping",
  "Ready",
  "Upgrading",
  "Degraded",
  "Deleting",
]);

const NodeStatus = z
  .object({
    name: dnsLabel().describe("Node name, as in spec.nodes."),
    vmid: z.number().int().min(100).max(999999999).optional().describe("Proxmox VM id."),
    proxmoxNode: text(64).optional().describe("Proxmox node the VM currently runs on (HA may move it)."),
    vmState: text(32).optional().describe("Proxmox VM state, e.g. running or stopped."),
    talosMode: z
      .enum(["Maintenance", "Configured"])
      .optional()
      .describe("Maintenance (waiting for its config) or Configured (installed, mTLS API)."),
    talosVersion: text(32).optional().describe("Talos version reported by the node."),
    installImage: text(512)
      .optional()
      .describe(
        "Installer image the node's system was last installed or upgraded from (its schematic and version).",
      ),
    kubeletVersion: text(32).optional().describe("Kubelet version reported by the Kubernetes Node."),
    etcdMemberID: text(32).optional().describe("etcd member id of a control-plane node, in hex."),
    ready: z.boolean().default(false).describe("Whether the Kubernetes Node is Ready."),
    message: text(1024).optional().describe("What the node is waiting for, when not ready."),
  })
  .describe("Observed state of one node.");

const TalosRollout = z
  .object({
    target: text(32).describe("The talos.version being rolled out."),
    version: text(32).describe("The version of the current step (one minor at a time)."),
    image: text(512).describe("The installer image of the current step."),
    node: dnsLabel().optional().describe("The node being drained, upgraded or waited for."),
    stage: z
      .enum(["Draining", "Upgrading"])
      .optional()
      .describe(
        "Draining (cordoned, pods being evicted) or Upgrading (upgrade requested, waiting for it back).",
      ),
    startedTime: text(64)
      .optional()
      .describe("When the node's stage began (RFC 3339): healthTimeout counts from it."),
    requestedTime: text(64)
      .optional()
      .describe("When the node's upgrade was requested (RFC 3339), written before the request is sent."),
  })
  .describe("The Talos rollout in progress.");

const ComponentStatus = z
  .object({
    name: text(64).describe("Component name, as in spec.components."),
    version: text(64).optional().describe("Installed version."),
    ready: z.boolean().default(false).describe("Whether the component's workloads are ready."),
    message: text(1024).optional().describe("What the component is waiting for, when not ready."),
  })
  .describe("Observed state of one platform component.");

const HomelabClusterStatus = z
  .object({
    ...statusFields(),
    phase: HomelabClusterPhase.optional().describe(
      "Coarse progress for humans: Pending, Provisioning, Bootstrapping, Ready, Upgrading, Degraded or Deleting.",
    ),
    endpoint: text(2048).optional().describe("Kubernetes API endpoint of the running cluster."),
    talosVersion: text(32).optional().describe("Lowest Talos version running on the nodes."),
    kubernetesVersion: text(32).optional().describe("Lowest kubelet version running on the nodes."),
    nodesReady: text(16).optional().describe("Ready nodes over desired nodes, e.g. 3/3."),
    image: z
      .object({
        url: text(2048).optional().describe("Image Factory URL the nocloud image was downloaded from."),
        volumeID: text(256).optional().describe("Proxmox volume id of the downloaded image."),
        tasks: z
          .array(text(512).describe("A Proxmox task id (UPID)."))
          .max(32)
          .optional()
          .describe("Downloads in progress (Proxmox UPIDs), so a restarted operator waits for them."),
      })
      .optional()
      .describe("The Talos nocloud image on Proxmox."),
    nodes: mapListOf(NodeStatus, "name", 32).optional().describe("Per-node state, keyed by name."),
    upgrade: z
      .object({
        talos: TalosRollout.optional(),
        kubernetes: z
          .object({
            target: text(32).describe("The kubernetes.version being rolled out."),
            step: text(128).describe(
              "node/component being upgraded, e.g. talos-neo/kube-scheduler or talos-neo/kubelet.",
            ),
            startedTime: text(64).describe("When this step began (RFC 3339): healthTimeout counts from it."),
          })
          .optional()
          .describe("The Kubernetes upgrade in progress."),
      })
      .optional()
      .describe("Rollouts in progress, so a restarted operator resumes where it stopped."),
    components: mapListOf(ComponentStatus, "name", 32)
      .optional()
      .describe("Per-component state, keyed by name."),
    secretRefs: z
      .object({
        talosSecrets: secretReference(
          "Secret with the Talos secrets bundle (generated once, never rotated implicitly).",
        ).optional(),
        talosconfig: secretReference("Secret with the talosconfig for talosctl.").optional(),
        kubeconfig: secretReference("Secret with the cluster's admin kubeconfig (key value).").optional(),
      })
      .optional()
      .describe("Secrets the operator created for this cluster."),
  })
  .describe("Observed state of the cluster.");

export const HomelabCluster = defineKind({
  kind: "HomelabCluster",
  plural: "homelabclusters",
  shortName: "hc",
  scope: "Cluster",
  description:
    "HomelabCluster is a Talos Linux Kubernetes cluster on Proxmox VE VMs: the operator downloads the image, creates the VMs, configures and bootstraps Talos, installs the platform components and rolls upgrades.",
  spec: HomelabClusterSpec,
  status: HomelabClusterStatus,
  printerColumns: [
    {
      name: "Ready",
      type: "string",
      jsonPath: conditionStatusPath("Ready"),
      description: "Ready condition.",
    },
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Coarse progress." },
    {
      name: "Endpoint",
      type: "string",
      jsonPath: ".status.endpoint",
      description: "Kubernetes API endpoint.",
    },
    { name: "Talos", type: "string", jsonPath: ".status.talosVersion", description: "Lowest Talos version." },
    {
      name: "Kubernetes",
      type: "string",
      jsonPath: ".status.kubernetesVersion",
      description: "Lowest kubelet version.",
    },
    {
      name: "Nodes Ready",
      type: "string",
      jsonPath: ".status.nodesReady",
      description: "Ready/desired nodes.",
    },
    {
      name: "Age",
      type: "date",
      jsonPath: ".metadata.creationTimestamp",
      description: "Time since creation.",
    },
  ],
});

export type HomelabCluster = z.infer<typeof HomelabCluster.schema>;
export type HomelabClusterSpec = z.infer<typeof HomelabClusterSpec>;
export type HomelabClusterStatus = z.infer<typeof HomelabClusterStatus>;
