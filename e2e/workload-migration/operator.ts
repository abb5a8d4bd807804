// What the WorkloadMigration e2e tests share: a Proxmox simulator with the seed's nodes and PBS, the
// controller on the real control plane, the targets in a workload cluster where KWOK runs the pods
// (with the real Gateway API HTTPRoute CRD, v1.6.1), and a local HTTP endpoint for the user's checks.
// The RBAC scenario, which runs targets in the management cluster, keeps a stand-in kubelet.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { workloadMigrationController } from "../../src/controllers/workload-migration/controller.ts";
import { MIGRATION_LABEL } from "../../src/controllers/workload-migration/names.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { startWorkloadCluster, type WorkloadCluster } from "../../src/local/workload-cluster.ts";
import { ProxmoxClient } from "../../src/proxmox/index.ts";
import { type ProxmoxSimulator, startProxmoxSimulator } from "../../src/proxmox/simulator/index.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { ciliumAgentDaemonSet } from "../harness/cilium.ts";
import { waitFor } from "../harness/wait.ts";

// Not the examples' namespace (infra): e2e/crds creates those objects on the same cluster.
export const NAMESPACE = "wm-e2e";
export const OPERATOR_NAMESPACE = "homelab-system";
const GiB = 2 ** 30;

/** The kinds the suites read and write. */
export const WM = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "WorkloadMigration" } as const;
export const ROUTE = { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" } as const;
export const DEPLOYMENT = { apiVersion: "apps/v1", kind: "Deployment" } as const;
export const JOB = { apiVersion: "batch/v1", kind: "Job" } as const;

export interface MigrationEnv {
  admin: KubeClient;
  sim: ProxmoxSimulator;
  /** The workload cluster the targets (and sync Jobs, routes) go to. */
  workload: KubeClient;
  proxmox: ProxmoxClient;
  checksUrl: string;
  stop(): Promise<void>;
}

export async function installHttpRouteCrd(admin: KubeClient): Promise<void> {
  const crd = parse(
    readFileSync(join(import.meta.dirname, "fixtures", "gateway.networking.k8s.io_httproutes.yaml"), "utf8"),
  ) as KubeObject;
  await admin.apply(crd);
  await waitFor("the HTTPRoute CRD to be established", async () => {
    const live = await admin.get<KubeObject>(
      { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
      { name: crd.metadata!.name! },
    );
    const conds = (live.status as { conditions?: { type: string; status: string }[] })?.conditions ?? [];
    return conds.some((c) => c.type === "Established" && c.status === "True");
  });
}

/** Answers /ok with 200 "PeaNUT dashboard" and everything else with 500: a healthy and a broken target. */
export function startChecksServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === "/ok") res.writeHead(200).end("PeaNUT dashboard");
    else res.writeHead(500).end("upstream unavailable");
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${addr.port}` });
    }),
  );
}

/**
 * The shared e2e control plane runs neither the deployment, replicaset and job controllers nor a kubelet
 * (e2e/harness/control-plane.ts DEFAULT_CONTROLLERS), so no Deployment would ever report ready pods.
 * This loop plays their part and only that: it reports each migration Deployment as those controllers
 * would once all its pods are Ready (observedGeneration and replica counts), after it was created or
 * scaled. What the operator decides from that status is the code under test.
 */
export function startDeploymentStandIn(admin: KubeClient, namespace = NAMESPACE): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      for (const kind of ["Deployment", "StatefulSet"]) {
        try {
          const gvk = { apiVersion: "apps/v1", kind };
          const list = await admin.list<KubeObject>(gvk, { namespace, labelSelector: MIGRATION_LABEL });
          for (const d of list.items) {
            const replicas = (d.spec as { replicas?: number }).replicas ?? 1;
            const s = (d.status ?? {}) as { observedGeneration?: number; readyReplicas?: number };
            if (s.observedGeneration === d.metadata?.generation && (s.readyReplicas ?? 0) === replicas)
              continue;
            await admin.patchStatus(
              gvk,
              { namespace, name: d.metadata!.name! },
              {
                observedGeneration: d.metadata?.generation,
                replicas,
                updatedReplicas: replicas,
                readyReplicas: replicas,
                availableReplicas: replicas,
              },
            );
          }
        } catch {
          // An object changed between list and patch: the next round sees the new state.
        }
      }
      // Jobs: reported finished as the job controller would once their one pod succeeded.
      try {
        const gvk = { apiVersion: "batch/v1", kind: "Job" };
        const list = await admin.list<KubeObject>(gvk, { namespace, labelSelector: MIGRATION_LABEL });
        for (const j of list.items) {
          if ((j.status as { completionTime?: string } | undefined)?.completionTime) continue;
          const now = new Date().toISOString();
          const cond = (type: string) => ({
            type,
            status: "True",
            lastProbeTime: now,
            lastTransitionTime: now,
          });
          await admin.patchStatus(
            gvk,
            { namespace, name: j.metadata!.name! },
            {
              startTime: now,
              completionTime: now,
              succeeded: 1,
              ready: 0,
              terminating: 0,
              uncountedTerminatedPods: {},
              conditions: [cond("SuccessCriteriaMet"), cond("Complete")],
            },
          );
        }
      } catch {
        // As above: the next round sees the new state.
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/** The HomelabCluster name migrations point at: only its kubeconfig Secret exists (as that controller writes it). */
export const CLUSTER = "wm-e2e";

/** The seed's three Talos nodes, as their kubelets register in the workload cluster. */
const NODES = ["talos-trinity", "talos-neo", "talos-niobe"];

/**
 * The workload cluster the targets run in: local mode's (kube-scheduler, every default controller,
 * KWOK as each Node's kubelet), with the seed's three nodes registered and a CNI DaemonSet on them (so
 * they turn Ready), the HTTPRoute CRD, and its kubeconfig in `<CLUSTER>-kubeconfig` as a HomelabCluster
 * publishes it. Deployments become ready, and Jobs complete, by the real controllers and KWOK's pods.
 */
export async function startTargetCluster(
  admin: KubeClient,
): Promise<{ workload: WorkloadCluster; client: KubeClient; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "wm-workload-"));
  const workload = await startWorkloadCluster({ dir });
  const client = workload.client();
  await installHttpRouteCrd(client);
  for (const [i, name] of NODES.entries())
    await workload.registerNode({
      name,
      address: `10.0.3.${16 + i}`,
      roles: ["control-plane", "worker"],
      kubeletVersion: "v1.34.0",
    });
  await client.apply(ciliumAgentDaemonSet());
  await waitFor(
    "the workload cluster's nodes to be Ready",
    async () => {
      const nodes = await client.list<KubeObject>({ apiVersion: "v1", kind: "Node" });
      return (
        nodes.items.length === NODES.length &&
        nodes.items.every((n) =>
          ((n.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).some(
            (c) => c.type === "Ready" && c.status === "True",
          ),
        )
      );
    },
    120_000,
    250,
  );
  await admin.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `${CLUSTER}-kubeconfig`, namespace: OPERATOR_NAMESPACE },
    type: "Opaque",
    stringData: { value: await workload.kubeconfig() },
  });
  return {
    workload,
    client,
    async stop() {
      await admin
        .delete(
          { apiVersion: "v1", kind: "Secret" },
          { namespace: OPERATOR_NAMESPACE, name: `${CLUSTER}-kubeconfig` },
        )
        .catch(() => {});
      await workload.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The workload cluster has no storage provisioner (nothing would bind a claim): an admin's static
 * PersistentVolume, pre-bound to the claim a target will make, is what lets its pod schedule.
 */
export async function provideVolume(workload: KubeClient, claimName: string, size = "1Gi"): Promise<void> {
  await workload.apply({
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: `${NAMESPACE}-${claimName}` },
    spec: {
      capacity: { storage: size },
      accessModes: ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "",
      hostPath: { path: `/var/lib/wm-e2e/${claimName}` },
      claimRef: { namespace: NAMESPACE, name: claimName },
    },
  });
}

export interface MigrationEnvOptions {
  /** Run the controller in this process (default); false when the test runs the operator as a process. */
  inProcess?: boolean;
  taskDurationMs?: number | Record<string, number>;
}

export async function startMigrationEnv(
  kc: KubeConfig,
  options: MigrationEnvOptions = {},
): Promise<MigrationEnv> {
  await installCRDs(kc);
  const admin = new KubeClient(kc);
  for (const name of [NAMESPACE, OPERATOR_NAMESPACE])
    await admin.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  const sim = await startProxmoxSimulator({
    nodes: ["trinity", "neo", "niobe"],
    storages: [
      {
        storage: "local",
        type: "dir",
        content: ["iso", "vztmpl", "backup"],
        shared: false,
        total: 100 * GiB,
      },
      // rootdir: containers' volumes too (lxc.test.ts), as the seed's ceph-vm-disks allows.
      {
        storage: "ceph-vm-disks",
        type: "rbd",
        content: ["images", "rootdir"],
        shared: true,
        total: 4096 * GiB,
      },
      { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 8192 * GiB },
    ],
    taskDurationMs: options.taskDurationMs ?? 100,
  });
  const proxmox = new ProxmoxClient({
    url: sim.url,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { caPem: sim.caPem },
  });
  await admin.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-token", namespace: NAMESPACE },
    type: "Opaque",
    stringData: { tokenID: sim.tokenId, secret: sim.tokenSecret },
  });
  await admin.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-ca", namespace: NAMESPACE },
    type: "Opaque",
    stringData: { "ca.crt": sim.caPem },
  });
  const target = await startTargetCluster(admin);
  const checks = await startChecksServer();
  let manager: Manager | undefined;
  if (options.inProcess ?? true) {
    manager = new Manager({
      kubeConfig: kc,
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(workloadMigrationController({ operatorNamespace: OPERATOR_NAMESPACE }));
    await manager.start();
  }
  return {
    admin,
    workload: target.client,
    sim,
    proxmox,
    checksUrl: checks.url,
    async stop() {
      await manager?.stop();
      // The management cluster is every suite's: migrations left here would be reconciled by the next
      // suite's operator against that suite's workload cluster and simulator, crowding out its own.
      const left = await admin.list<KubeObject>(WM, { namespace: NAMESPACE });
      for (const wm of left.items)
        await admin.delete(WM, { namespace: NAMESPACE, name: wm.metadata!.name! }, { ignoreNotFound: true });
      checks.server.close();
      await proxmox.close();
      await sim.stop();
      await target.stop();
    },
  };
}

export interface SourceVm {
  vmid: number;
  name: string;
  node: string;
  memoryMiB: number;
  diskGiB: number;
  tags?: string[];
  ha?: boolean;
}

/** A running VM as the seed has them (created and started through the API, as an admin would). */
export async function createSourceVm(proxmox: ProxmoxClient, vm: SourceVm): Promise<void> {
  const create = await proxmox.createVm(vm.node, vm.vmid, {
    name: vm.name,
    memory: vm.memoryMiB,
    cores: 1,
    scsi0: `ceph-vm-disks:${vm.diskGiB}`,
    ...(vm.tags ? { tags: vm.tags.join(";") } : {}),
  });
  await proxmox.waitForTask(create);
  await proxmox.waitForTask(await proxmox.start(vm.node, vm.vmid));
  if (vm.ha) await proxmox.addHaResource({ sid: `vm:${vm.vmid}`, state: "started" });
}

/** A migration's `spec.proxmox`: the simulator, with the token and CA Secrets startMigrationEnv writes. */
export const proxmoxRef = (env: Pick<MigrationEnv, "sim">) => ({
  endpoint: env.sim.url,
  credentialsRef: { name: "proxmox-token", namespace: NAMESPACE },
  caBundleRef: { name: "proxmox-ca", namespace: NAMESPACE },
});

/** A WorkloadMigration of the UPS stack's shape, pointed at `vm`, with the given overrides. */
export function upsMigration(
  name: string,
  vm: { vmid: number; name: string },
  env: Pick<MigrationEnv, "sim" | "checksUrl">,
  overrides: { spec?: Record<string, unknown> } = {},
): KubeObject {
  return {
    apiVersion: "homelab.shdr.ch/v1alpha1",
    kind: "WorkloadMigration",
    metadata: { name, namespace: NAMESPACE },
    spec: {
      clusterRef: { name: CLUSTER },
      proxmox: proxmoxRef(env),
      source: { vmid: vm.vmid, name: vm.name },
      targets: [
        {
          name: `${name}-nut`,
          kind: "Deployment",
          template: { image: "instantlinux/nut-upsd:2.8.2", port: 3493 },
        },
        {
          name: `${name}-peanut`,
          kind: "Deployment",
          template: { image: "brandawg93/peanut:latest", port: 8080 },
          hostname: `${name}.apps.home.shdr.ch`,
        },
      ],
      verify: {
        successThreshold: 2,
        interval: "1s",
        timeout: "2m",
        checks: [{ name: "peanut-ui", http: { url: `${env.checksUrl}/ok`, bodyContains: "PeaNUT" } }],
      },
      cutover: { mode: "Automatic" },
      decommission: { stopVM: true, backup: { storage: "pbs" }, deleteAfter: "2s", requireApproval: true },
      ...overrides.spec,
    },
  };
}

export interface OperatorProcess {
  child: ChildProcess;
  /** kill -9 of the operator and every process it started (Helm), as a crashed container loses them all. */
  killAll(): Promise<void>;
}

/**
 * The operator as its own process (operator-main.ts) in its own process group, ready on /readyz. A
 * group kill also ends a helm the operator was running, which a kill -9 of the operator alone would
 * leave behind to finish on its own (no container runtime reaps it here).
 */
export async function startOperatorProcess(kubeconfigPath: string): Promise<OperatorProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(import.meta.dirname, "operator-main.ts")], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      HEALTH_PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  const exited = new Promise((r) => child.once("exit", r));
  await waitFor(
    "the operator to be ready",
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
    60_000,
    50,
  );
  return {
    child,
    async killAll() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(-child.pid, "SIGKILL");
      await exited;
    },
  };
}
