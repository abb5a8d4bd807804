// Local mode's stand-ins for the homelab: a Proxmox VE simulator with the seed's nodes and storages,
// and a Talos simulator with one machine per seed VM (each on its own loopback address, known by its
// seed address). The Talos machines' Kubernetes is the workload cluster (workload-cluster.ts). Their
// credentials go into the operator's namespace, the way a user stores the real ones.
import { join } from "node:path";
import { startProxmoxSimulator } from "../proxmox/simulator/server.ts";
import type { Dial } from "../proxmox/transport.ts";
import { startTalosSimulator } from "../talos/simulator/simulator.ts";
import { SEED_NODES, SEED_PROXMOX, seedDial } from "./seed-addresses.ts";
import type { WorkloadCluster } from "./workload-cluster.ts";

export interface LocalSimulators {
  proxmox: { url: string; tokenId: string; tokenSecret: string; caPem: string; fingerprint: string };
  /** Seed address → where that machine's simulator listens. */
  talosEndpoints: Record<string, string>;
  dial: Dial;
  stop(): Promise<void>;
}

export async function startLocalSimulators(options: {
  /** Kept folder for the simulators' state. */
  dir: string;
  workload: WorkloadCluster;
  log?: (line: string) => void;
}): Promise<LocalSimulators> {
  const proxmox = await startProxmoxSimulator({
    nodes: SEED_NODES.map((n) => n.proxmoxNode),
    certificateNames: [SEED_PROXMOX.host],
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
    talos = await startTalosSimulator({
      nodes: SEED_NODES.map((n) => ({ name: n.talos, ip: n.loopback, advertisedIp: n.address })),
      stateFile: join(options.dir, "talos.json"),
      log: options.log,
      workloadCluster: {
        kubeconfig: () => options.workload.kubeconfig(),
        nodeJoined: (node) =>
          options.workload.registerNode({
            name: node.hostname,
            address: node.address,
            roles: node.role === "controlplane" ? ["control-plane"] : [],
            kubeletVersion: node.kubeletVersion,
            taints: node.schedulable
              ? []
              : [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
          }),
      },
    });
  } catch (err) {
    await proxmox.stop();
    throw err;
  }
  const proxmoxUrl = new URL(proxmox.url);
  const talosAddresses = new Map(
    SEED_NODES.map((n) => {
      const sim = talos.nodes.find((t) => t.name === n.talos);
      return [n.address, { host: n.loopback, port: sim?.port ?? 50000 }] as const;
    }),
  );
  return {
    proxmox: {
      url: proxmox.url,
      tokenId: proxmox.tokenId,
      tokenSecret: proxmox.tokenSecret,
      caPem: proxmox.caPem,
      fingerprint: proxmox.fingerprint,
    },
    talosEndpoints: Object.fromEntries(talos.nodes.map((n) => [n.name, n.endpoint])),
    dial: seedDial({
      proxmox: { host: proxmoxUrl.hostname, port: Number(proxmoxUrl.port) },
      talos: talosAddresses,
    }),
    async stop() {
      await Promise.allSettled([talos.stop(), proxmox.stop()]);
    },
  };
}
