// The seed's homelab on loopback for the HomelabCluster suites: a Proxmox VE simulator with the seed's
// nodes and storages, one Talos simulator node per VM whose power follows its Proxmox VM (a stopped or
// absent VM does not answer, as a real machine would not), an Image Factory stand-in serving a qcow2 the
// simulator really downloads and checksums, and the address map the operator is given.
//
// MERGE NOTE: until h-local's workload control plane + KWOK land, `kubelets` registers each configured
// node as a NotReady Node (cni: none) in the workload cluster; KWOK replaces it.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import { startProxmoxSimulator } from "../../src/proxmox/simulator/server.ts";
import { KubeClient } from "../../src/runtime/index.ts";
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

const IMAGE = Buffer.alloc(2 * 1024 * 1024, 0x54); // stands in for nocloud-amd64.qcow2

export async function startHomelab(
  workload: KubeConfig,
  options: { taskDurationMs?: number | Record<string, number>; rebootDelayMs?: number } = {},
): Promise<Homelab> {
  let served = 0;
  const server: Server = createServer((req, res) => {
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
  const talos = await startTalosSimulator({
    nodes: SEED.map((n) => ({ name: n.name, ip: n.loopback, talosVersion: "v1.11.0" })),
    kubeconfig: workload.exportConfig(),
    rebootDelayMs: options.rebootDelayMs ?? 100,
  });
  for (const n of SEED) await talos.faults.nodeDown(n.name, true);

  // Power follows Proxmox: a node answers only while its VM runs.
  const powered = new Map<string, boolean>();
  const kubelet = new KubeClient(workload);
  const registered = new Set<string>();
  let stopping = false;
  const follow = async () => {
    for (const n of SEED) {
      const vm = [...proxmox.cluster.vms.values()].find((v) => v.config["name"] === n.name);
      const running = vm?.status === "running";
      if (powered.get(n.name) !== running) {
        powered.set(n.name, running);
        await talos.faults.nodeDown(n.name, !running);
      }
      const snap = talos.node(n.name);
      if (snap.mode === "running" && snap.etcdMemberId && !registered.has(n.name)) {
        await registerNode(kubelet, n.name);
        registered.add(n.name);
      }
    }
  };
  const loop = (async () => {
    while (!stopping) {
      await follow().catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const loopbackOf = (ip: string) => SEED.find((n) => n.ip === ip)?.loopback;
  const talosAddresses = Object.fromEntries(SEED.map((n) => [n.ip, talos.endpoint(n.name)]));
  void loopbackOf;
  return {
    proxmox,
    talos,
    image: { baseUrl, sha256: createHash("sha256").update(IMAGE).digest("hex"), served: () => served },
    addresses: { proxmoxUrl: proxmox.url, talos: talosAddresses },
    bootstrapCalls: () =>
      SEED.reduce(
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
      stopping = true;
      await loop;
      await Promise.allSettled([talos.stop(), proxmox.stop()]);
      await new Promise<void>((r) => server.close(() => r()));
      for (const name of registered)
        await kubelet.delete({ apiVersion: "v1", kind: "Node" }, { name }, { ignoreNotFound: true });
    },
  };
}

/** What a kubelet does on a Talos node with `cni: none`: register, report its version, stay NotReady. */
async function registerNode(client: KubeClient, name: string): Promise<void> {
  await client
    .create({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { "kubernetes.io/hostname": name } },
    })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await client.patchStatus(
    { apiVersion: "v1", kind: "Node" },
    { name },
    {
      nodeInfo: {
        kubeletVersion: "v1.34.1",
        kubeProxyVersion: "",
        machineID: "",
        systemUUID: "",
        bootID: "",
        kernelVersion: "6.12.43-talos",
        osImage: "Talos (v1.11.0)",
        containerRuntimeVersion: "containerd://2.1.4",
        operatingSystem: "linux",
        architecture: "amd64",
      },
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "KubeletNotReady",
          message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    },
  );
}
