// Local mode's stand-ins for the homelab: a Proxmox VE simulator with the seed's inventory (nodes
// trinity, neo, niobe, smith; storages cephfs, ceph-vm-disks, pbs; the VMs Phase 5 retires, seed-vms.ts),
// and a Talos simulator with one machine per seed VM (each on its own loopback address, known by its
// seed address). The Talos machines' Kubernetes is the workload cluster (workload-cluster.ts). Their
// credentials go into the operator's namespace, the way a user stores the real ones.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ProxmoxClient } from "../proxmox/index.ts";
import { SEED_HOMELAB_INVENTORY } from "../proxmox/simulator/inventory.ts";
import { startProxmoxSimulator } from "../proxmox/simulator/server.ts";
import type { Dial } from "../proxmox/transport.ts";
import { startTalosSimulator } from "../talos/simulator/simulator.ts";
import { followVmPower } from "./power.ts";
import { SEED_NODES, SEED_PROXMOX, seedDial } from "./seed-addresses.ts";
import { ensureSeedVms, SEED_VMS } from "./seed-vms.ts";
import { talosWorkloadHook } from "./talos-hook.ts";

/** The Talos version of the seed cluster (examples/homelab-cluster-k8s.yaml). */
export const SEED_TALOS_VERSION = "v1.11.0";

import type { WorkloadCluster } from "./workload-cluster.ts";

export interface LocalSimulators {
  proxmox: { url: string; tokenId: string; tokenSecret: string; caPem: string; fingerprint: string };
  /** Seed address → where that machine's simulator listens. */
  talosEndpoints: Record<string, string>;
  dial: Dial;
  stop(): Promise<void>;
}

/** A random secret made once and kept in `file`. */
async function keptSecret(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const secret = randomUUID();
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

export async function startLocalSimulators(options: {
  /** Kept folder for the simulators' state. */
  dir: string;
  workload: WorkloadCluster;
  log?: (line: string) => void;
}): Promise<LocalSimulators> {
  const proxmoxDir = join(options.dir, "proxmox");
  await mkdir(proxmoxDir, { recursive: true, mode: 0o700 });
  const proxmox = await startProxmoxSimulator({
    ...SEED_HOMELAB_INVENTORY,
    certificateNames: [SEED_PROXMOX.host],
    // Kept with the rest of the state, so the token stored in the Secret stays valid across restarts.
    tokenSecret: await keptSecret(join(options.dir, "proxmox-token-secret")),
    stateDir: proxmoxDir,
  });
  let talos: Awaited<ReturnType<typeof startTalosSimulator>>;
  try {
    const client = new ProxmoxClient({
      url: proxmox.url,
      tokenId: proxmox.tokenId,
      tokenSecret: proxmox.tokenSecret,
      tls: { caPem: proxmox.caPem },
    });
    try {
      if ((await ensureSeedVms(client, options.dir)) === "created")
        options.log?.(
          `Proxmox: the seed's ${SEED_VMS.length} guests to migrate (VMs and a container) created and running`,
        );
    } finally {
      await client.close();
    }
    talos = await startTalosSimulator({
      // A machine boots the Talos its image holds: the seed's (examples/homelab-cluster-k8s.yaml,
      // v1.11.0), so the upgrade phase finds the nodes on the spec's version and has nothing to roll.
      nodes: SEED_NODES.map((n) => ({
        name: n.talos,
        ip: n.loopback,
        advertisedIp: n.address,
        talosVersion: SEED_TALOS_VERSION,
      })),
      stateFile: join(options.dir, "talos.json"),
      log: options.log,
      workloadCluster: talosWorkloadHook(options.workload),
    });
  } catch (err) {
    await proxmox.stop();
    throw err;
  }
  // Powered off before anything dials them: a machine answers once its VM runs, as a real one would.
  const power = followVmPower(
    proxmox,
    talos,
    SEED_NODES.map((n) => n.talos),
    (err) => options.log?.(`power follow failed: ${(err as Error).message}`),
  );
  await power.ready;
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
      await power.stop();
      await Promise.allSettled([talos.stop(), proxmox.stop()]);
    },
  };
}
