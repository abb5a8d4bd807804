// The seed's homelab on loopback for the HomelabCluster suites: a Proxmox VE simulator with the seed's
// nodes and storages, one Talos simulator node per VM whose power follows its Proxmox VM (a stopped or
// absent VM does not answer, as a real machine would not), an Image Factory stand-in serving a qcow2 the
// simulator really downloads and checksums, the address map the operator is given, and the workload
// control plane of local mode (kube-scheduler, default controllers, KWOK as every Node's kubelet) that
// the Talos machines hand out and register their Nodes in.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { followVmPower } from "../../src/local/power.ts";
import { talosWorkloadHook } from "../../src/local/talos-hook.ts";
import { startWorkloadCluster, type WorkloadCluster } from "../../src/local/workload-cluster.ts";
import { startProxmoxSimulator } from "../../src/proxmox/simulator/server.ts";
import { startTalosSimulator, type TalosSimulator } from "../../src/talos/simulator/simulator.ts";

export type ProxmoxSimulator = Awaited<ReturnType<typeof startProxmoxSimulator>>;

/** The seed's VMs (config/vm.yml) and the loopback address each Talos node listens on. */
export const SEED = [
  { name: "talos-trinity", ip: "10.0.3.16", proxmoxNode: "trinity", loopback: "127.0.3.16" },
  { name: "talos-neo", ip: "10.0.3.17", proxmoxNode: "neo", loopback: "127.0.3.17" },
  { name: "talos-niobe", ip: "10.0.3.18", proxmoxNode: "niobe", loopback: "127.0.3.18" },
];

export interface AddressMap {
  proxmoxUrl: string;
  /** Seed IP → host:port of its Talos simulator node. */
  talos: Record<string, string>;
}

export interface Homelab {
  proxmox: ProxmoxSimulator;
  talos: TalosSimulator;
  /** The cluster the Talos machines run: its kubeconfig is what Talos hands out after bootstrap. */
  workload: WorkloadCluster;
  image: { baseUrl: string; sha256: string; served: () => number };
  addresses: AddressMap;
  /** Bootstrap RPCs the Talos nodes answered (AlreadyExists included). */
  bootstrapCalls(): number;
  /** download-url requests Proxmox accepted. */
  downloads(): number;
  /** VM creations Proxmox accepted. */
  vmCreates(): number;
  stop(): Promise<void>;
}

/** What the stand-in Image Factory lists: two patches per minor and a pre-release, as the real one does. */
export const TALOS_VERSIONS = ["v1.11.0", "v1.12.0", "v1.12.1", "v1.13.0", "v1.13.1", "v1.14.0-beta.1"];

const IMAGE = Buffer.alloc(2 * 1024 * 1024, 0x54); // stands in for nocloud-amd64.qcow2

export type Machine = (typeof SEED)[number];

export async function startHomelab(
  options: {
    taskDurationMs?: number | Record<string, number>;
    rebootDelayMs?: number;
    /** Machines besides the seed's three (a cluster scaled up needs them). */
    extraMachines?: readonly Machine[];
    /** A destroyed VM's machine loses its disk, so one created again boots from the image. */
    wipeDisks?: boolean;
    /**
     * Listen on `<prefix><last octet of the machine's IP>` instead of the machines' own loopback
     * addresses: a suite that may run while another engineer's homelab holds 127.0.3.x:50000 (a machine
     * powered on later would find its port taken).
     */
    loopbackPrefix?: string;
  } = {},
): Promise<Homelab> {
  const prefix = options.loopbackPrefix;
  const machines = [...SEED, ...(options.extraMachines ?? [])].map((m) =>
    prefix ? { ...m, loopback: `${prefix}${m.ip.split(".")[3]}` } : m,
  );
  let served = 0;
  const server: Server = createServer((req, res) => {
    // The Image Factory's version list (GET /versions), which a Talos upgrade plans its path from.
    if (req.url === "/versions") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(TALOS_VERSIONS));
      return;
    }
    if (!/^\/image\/[0-9a-f]{64}\/v[0-9.]+\/nocloud-amd64\.qcow2$/.test(req.url ?? "")) {
      res.writeHead(404).end();
      return;
    }
    served++;
    res.writeHead(200, { "content-length": IMAGE.length }).end(IMAGE);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const proxmox = await startProxmoxSimulator({
    nodes: ["trinity", "neo", "niobe", "smith"],
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
    taskDurationMs: options.taskDurationMs ?? 20,
  });
  const workloadDir = await mkdtemp(join(tmpdir(), "homelab-workload-"));
  const workload = await startWorkloadCluster({ dir: workloadDir, apiAddresses: SEED.map((n) => n.ip) });
  const talos = await startTalosSimulator({
    nodes: machines.map((n) => ({
      name: n.name,
      ip: n.loopback,
      advertisedIp: n.ip,
      talosVersion: "v1.11.0",
    })),
    workloadCluster: talosWorkloadHook(workload),
    rebootDelayMs: options.rebootDelayMs ?? 100,
  });
  // Power follows Proxmox: a node answers only while its VM runs.
  const power = followVmPower(
    proxmox,
    talos,
    machines.map((n) => n.name),
    () => {},
    50,
    { wipeDisks: options.wipeDisks ?? false },
  );
  await power.ready;

  const talosAddresses = Object.fromEntries(machines.map((n) => [n.ip, talos.endpoint(n.name)]));
  return {
    proxmox,
    talos,
    workload,
    image: { baseUrl, sha256: createHash("sha256").update(IMAGE).digest("hex"), served: () => served },
    addresses: { proxmoxUrl: proxmox.url, talos: talosAddresses },
    bootstrapCalls: () =>
      machines.reduce(
        (sum, n) =>
          sum + talos.node(n.name).calls.filter((c) => c === "/machine.MachineService/Bootstrap").length,
        0,
      ),
    downloads: () =>
      proxmox.requests.filter(
        (r) => r.method === "POST" && r.path.endsWith("/download-url") && r.status === 200,
      ).length,
    vmCreates: () =>
      proxmox.requests.filter(
        (r) => r.method === "POST" && /^\/nodes\/[^/]+\/qemu$/.test(r.path) && r.status === 200,
      ).length,
    async stop() {
      await power.stop();
      await Promise.allSettled([talos.stop(), proxmox.stop()]);
      await new Promise<void>((r) => server.close(() => r()));
      await workload.stop();
      await rm(workloadDir, { recursive: true, force: true });
    },
  };
}
