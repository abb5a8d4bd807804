// What machine-config generation needs, and nothing more. The HomelabCluster controller maps its CRD
// spec onto this (see /work/shared/design/api.md); keeping it plain keeps generation a pure function.

export type NodeRole = "controlplane" | "worker";

export interface TalosNodeInput {
  /** Hostname and Kubernetes node name. */
  name: string;
  /** Static IPv4 address (without prefix length). */
  ip: string;
  role: NodeRole;
}

export interface OidcInput {
  issuerURL: string;
  clientID: string;
  usernameClaim?: string;
  groupsClaim?: string;
  /**
   * Unset: kube-apiserver's default, `<issuerURL>#` unless usernameClaim is `email` (then none), the same
   * under both contracts. "" means no prefix.
   */
  usernamePrefix?: string;
  /** Default "" (no prefix). */
  groupsPrefix?: string;
}

export interface Json6902Operation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: unknown;
  from?: string;
}

/** A strategic-merge patch as YAML text (may hold several documents), or a JSON 6902 operation list. */
export type ConfigPatch = string | readonly Json6902Operation[];

export interface TalosClusterInput {
  clusterName: string;
  /** Kubernetes API endpoint, e.g. https://10.0.3.16:6443 */
  endpoint: string;
  kubernetesVersion: string;
  talosVersion: string;
  /** Image Factory schematic id (64 hex). */
  schematic: string;
  /** Default https://factory.talos.dev */
  imageFactory?: string;
  installDisk: string;
  podSubnet: string;
  serviceSubnet: string;
  allowSchedulingOnControlPlanes: boolean;
  /** Cilium is installed as the CNI: Talos' CNI becomes `none` and kube-proxy is disabled. */
  ciliumCNI: boolean;
  network: {
    gateway: string;
    nameservers: readonly string[];
    /** Prefix length of the node subnet, e.g. 24. */
    prefixLength: number;
    /** Link name (e.g. eth0); without it the first physical link is selected. */
    interface?: string;
    /**
     * Talos' shared layer-2 VIP for the Kubernetes API, put on every control plane's interface. Not
     * Cilium's LoadBalancer VIP (that one must never be on a node's interface).
     */
    controlPlaneVip?: string;
  };
  nodes: readonly TalosNodeInput[];
  oidc?: OidcInput;
  configPatches?: readonly ConfigPatch[];
}

export const DEFAULT_IMAGE_FACTORY = "https://factory.talos.dev";
