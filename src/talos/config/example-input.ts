import type { TalosClusterInput } from "./input.ts";

/**
 * The seed homelab's cluster (shared/design/api.md) as the controller maps it: tests, the simulator CLI
 * and docs use it. The seed has no control-plane VIP (10.0.3.19 is Cilium's LoadBalancer VIP).
 */
export const exampleClusterInput: TalosClusterInput = {
  clusterName: "k8s",
  endpoint: "https://10.0.3.16:6443",
  kubernetesVersion: "v1.34.1",
  // The seed's Talos release; its config contract is the pre-1.14 one (one v1alpha1 document).
  talosVersion: "v1.11.0",
  schematic: "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba",
  imageFactory: "https://factory.talos.dev",
  installDisk: "/dev/vda",
  podSubnet: "10.244.0.0/16",
  serviceSubnet: "10.96.0.0/12",
  allowSchedulingOnControlPlanes: true,
  ciliumCNI: true,
  network: {
    gateway: "10.0.3.1",
    nameservers: ["10.0.3.1"],
    prefixLength: 24,
    interface: "eth0",
  },
  nodes: [
    { name: "talos-trinity", ip: "10.0.3.16", role: "controlplane" },
    { name: "talos-neo", ip: "10.0.3.17", role: "controlplane" },
    { name: "talos-niobe", ip: "10.0.3.18", role: "controlplane" },
  ],
  oidc: {
    issuerURL: "https://auth.shdr.ch/realms/aether",
    clientID: "kubernetes",
    usernameClaim: "preferred_username",
    groupsClaim: "groups",
  },
};
