// Local mode's stand-ins for the homelab: a Proxmox VE simulator with the seed's three nodes and
// storages, and a Talos simulator with one node per seed VM (each on its own loopback address). Their
// connection details go into the operator's namespace, the way a user would store the real ones.
import type { KubeConfig } from "@kubernetes/client-node";
import { startProxmoxSimulator } from "../proxmox/simulator/server.ts";
import { KubeClient } from "../runtime/index.ts";
import { startTalosSimulator } from "../talos/simulator/simulator.ts";

/** The seed's Proxmox nodes and the Talos VM on each (kubernetes-exploration.md). */
export const SEED_NODES = [
  { proxmoxNode: "trinity", talos: "talos-trinity", loopback: "127.0.0.16" },
  { proxmoxNode: "neo", talos: "talos-neo", loopback: "127.0.0.17" },
  { proxmoxNode: "niobe", talos: "talos-niobe", loopback: "127.0.0.18" },
];

export interface LocalSimulators {
  proxmoxUrl: string;
  talosEndpoints: Record<string, string>;
  stop(): Promise<void>;
}

export async function startLocalSimulators(
  kubeConfig: KubeConfig,
  namespace: string,
): Promise<LocalSimulators> {
  const proxmox = await startProxmoxSimulator({
    nodes: SEED_NODES.map((n) => n.proxmoxNode),
    storages: [
      {
        storage: "local",
        type: "dir",
        content: ["iso", "import", "backup", "snippets"],
        shared: false,
        total: 100 * 2 ** 30,
      },
      {
        storage: "cephfs",
        type: "nfs",
        content: ["iso", "import", "backup"],
        shared: true,
        total: 2 * 2 ** 40,
      },
      { storage: "ceph-vm-disks", type: "rbd", content: ["images"], shared: true, total: 4 * 2 ** 40 },
    ],
  });
  let talos: Awaited<ReturnType<typeof startTalosSimulator>>;
  try {
    // The Talos "kubeconfig" is the local control plane's own, so what comes after bootstrap runs on a
    // real API server.
    talos = await startTalosSimulator({
      nodes: SEED_NODES.map((n) => ({ name: n.talos, ip: n.loopback })),
      kubeconfig: kubeConfig.exportConfig(),
    });
  } catch (err) {
    await proxmox.stop();
    throw err;
  }
  const client = new KubeClient(kubeConfig);
  const labels = {
    "app.kubernetes.io/managed-by": "homelab-operator",
    "homelab.shdr.ch/component": "local-simulators",
  };
  // Named as in examples/secrets-homelab-system.yaml, so the example HomelabCluster finds them.
  await client.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-token", namespace, labels },
    type: "Opaque",
    stringData: { tokenID: proxmox.tokenId, secret: proxmox.tokenSecret },
  });
  await client.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-ca", namespace, labels },
    type: "Opaque",
    stringData: { "ca.crt": proxmox.caPem },
  });
  const talosEndpoints = Object.fromEntries(talos.nodes.map((n) => [n.name, n.endpoint]));
  await client.apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "local-simulators", namespace, labels },
    data: {
      "proxmox.url": proxmox.url,
      "proxmox.fingerprint": proxmox.fingerprint,
      "talos.endpoints": JSON.stringify(talosEndpoints),
    },
  });
  return {
    proxmoxUrl: proxmox.url,
    talosEndpoints,
    async stop() {
      await Promise.allSettled([talos.stop(), proxmox.stop()]);
    },
  };
}
