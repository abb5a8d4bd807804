// The local homelab end to end: `npm start` with no cluster brings up both control planes and the
// simulators; Talos machines configured through the real Talos API become Nodes of the workload
// cluster (NotReady without a CNI, Ready once a CNI agent runs on them, and then pods run); a SIGKILLed
// `npm start` resumes the same objects; Ctrl-C keeps the state; --reset clears it.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureControlPlaneBinaries, ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { CNI_READY_ANNOTATION, NOT_READY_MESSAGE } from "../../src/local/kwok-stages.ts";
import { SEED_NODES, SEED_PROXMOX, seedDial } from "../../src/local/seed-addresses.ts";
import { SEED_VMS } from "../../src/local/seed-vms.ts";
import { ProxmoxClient } from "../../src/proxmox/client.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { TalosClient } from "../../src/talos/client/talos-client.ts";
import { exampleClusterInput } from "../../src/talos/config/example-input.ts";
import { generateClusterConfigs } from "../../src/talos/config/machine-config.ts";
import { ensureSecretsBundle } from "../../src/talos/config/secrets.ts";
import { generateAdminTalosconfig } from "../../src/talos/config/talosconfig.ts";
import { ciliumAgentDaemonSet } from "../harness/cilium.ts";
import { waitFor } from "../harness/wait.ts";
import {
  alive,
  applyExamples,
  type LocalProcess,
  recordedPids,
  removeLocal,
  startLocal,
} from "./local-process.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Node extends KubeObject {
  spec?: { taints?: { key: string; effect: string }[] };
  status?: {
    conditions?: Condition[];
    nodeInfo?: { kubeletVersion?: string };
    addresses?: { type: string; address: string }[];
  };
}
interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string };
}

const NODE = { apiVersion: "v1", kind: "Node" };
const POD = { apiVersion: "v1", kind: "Pod" };
const CM = { apiVersion: "v1", kind: "ConfigMap" };
const TIMEOUT = 180_000;

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;
const clients: { close(): unknown }[] = [];
const secrets = ensureSecretsBundle();
const talosconfig = generateAdminTalosconfig(secrets, { contextName: "seed", endpoints: [] });
const configs = new Map(generateClusterConfigs(exampleClusterInput, secrets).map((c) => [c.node, c.yaml]));
const kubeletVersion = exampleClusterInput.kubernetesVersion;

const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === "Ready");

/**
 * A Proxmox client as the controllers make one: the seed's URL, the credentials from the Secrets local
 * mode wrote, and the dial seam built from where local mode says its simulators listen.
 */
async function seedProxmox(kube: KubeClient): Promise<ProxmoxClient> {
  const ns = "homelab-system";
  const data = async (kind: string, name: string) =>
    (
      await kube.get<KubeObject & { data?: Record<string, string> }>(
        { apiVersion: "v1", kind },
        { namespace: ns, name },
      )
    ).data ?? {};
  const token = await data("Secret", "proxmox-token");
  const ca = await data("Secret", "proxmox-ca");
  const sims = await data("ConfigMap", "local-simulators");
  const decode = (b64?: string) => Buffer.from(b64 ?? "", "base64").toString();
  const url = new URL(sims["proxmox.url"] ?? "");
  const client = new ProxmoxClient({
    url: `https://${SEED_PROXMOX.host}:${SEED_PROXMOX.port}`,
    tokenId: decode(token.tokenID),
    tokenSecret: decode(token.secret),
    tls: { caPem: decode(ca["ca.crt"]) },
    dial: seedDial({ proxmox: { host: url.hostname, port: Number(url.port) }, talos: new Map() }),
  });
  clients.push(client);
  return client;
}

/** Where each seed machine's simulator listens, from what local mode published. */
async function talosEndpoints(kube: KubeClient): Promise<Record<string, string>> {
  const cm = await kube.get<KubeObject & { data?: Record<string, string> }>(CM, {
    namespace: "homelab-system",
    name: "local-simulators",
  });
  return JSON.parse(cm.data?.["talos.endpoints"] ?? "{}");
}

function admin(endpoint: string): TalosClient {
  const c = TalosClient.fromTalosconfig(talosconfig, { endpoint, timeoutMs: 10_000 });
  clients.push(c);
  return c;
}

function workloadClient(kubeconfigYaml: string): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml);
  return new KubeClient(kc);
}

beforeAll(async () => {
  // A cold cache builds kwok here (minutes) rather than inside the first test's deadline.
  await ensureKwokBinary();
  dataHome = await mkdtemp(join(tmpdir(), "homelab-local-e2e-"));
  stateDir = join(dataHome, "homelab-operator", "local");
}, 1_200_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await removeLocal(local, stateDir, dataHome);
});

describe("npm start: the local homelab", () => {
  let nodeUids: Record<string, string>;
  let podUid: string;
  let etcdMembers: string[];

  it("starts both control planes with state under XDG_DATA_HOME", async () => {
    local = await startLocal(dataHome);
    expect(local.kubeconfigPath).toBe(join(stateDir, "management", "admin.kubeconfig"));
    for (const d of ["management/etcd", "workload/etcd", "workload/kwok.yaml", "simulators/talos.json"])
      expect(existsSync(join(stateDir, d)), d).toBe(true);
    const workload = workloadClient(readFileSync(join(stateDir, "workload", "admin.kubeconfig"), "utf8"));
    expect((await workload.list<Node>(NODE)).items).toEqual([]);
  }, 900_000);

  it("configured Talos machines become NotReady Nodes of the workload cluster, Ready once a CNI runs; then pods run", async () => {
    const kube = new KubeClient(local!.kubeConfig());
    const endpoints = await talosEndpoints(kube);
    // A machine answers only while its VM runs (local mode's power follows the Proxmox VM): silent first.
    const proxmox = await seedProxmox(kube);
    for (const [i, n] of SEED_NODES.entries()) {
      const silent = TalosClient.maintenance(endpoints[n.talos] ?? "", { timeoutMs: 2_000 });
      clients.push(silent);
      await expect(silent.version()).rejects.toThrow();
      const vmid = 9101 + i;
      await proxmox.waitForTask(
        await proxmox.createVm(n.proxmoxNode, vmid, { name: n.talos, memory: 512, cores: 1 }),
      );
      await proxmox.waitForTask(await proxmox.start(n.proxmoxNode, vmid));
    }
    for (const n of SEED_NODES) {
      const m = TalosClient.maintenance(endpoints[n.talos] ?? "", { timeoutMs: 10_000 });
      clients.push(m);
      await waitFor(
        `${n.talos} to take its config once its VM runs`,
        () => m.applyConfiguration(configs.get(n.talos) ?? "").then(() => true),
        30_000,
        250,
      );
    }
    for (const n of SEED_NODES)
      await waitFor(
        `${n.talos} to run configured`,
        () => admin(endpoints[n.talos] ?? "").version(),
        30_000,
        250,
      );
    const first = admin(endpoints[SEED_NODES[0].talos] ?? "");
    expect(await first.bootstrap()).toBe("bootstrapped");

    // Talos hands out the workload cluster's kubeconfig now, not the management cluster's.
    const kubeconfig = await first.kubeconfig();
    expect(kubeconfig).toBe(readFileSync(join(stateDir, "workload", "admin.kubeconfig"), "utf8"));
    const workload = workloadClient(kubeconfig);

    const names = SEED_NODES.map((n) => n.talos);
    const nodes = await waitFor(
      "three NotReady Nodes (no CNI yet)",
      async () => {
        const list = (await workload.list<Node>(NODE)).items;
        return list.length === 3 && list.every((n) => ready(n)?.reason === "KubeletNotReady")
          ? list
          : undefined;
      },
      TIMEOUT,
      500,
    );
    for (const n of nodes) {
      expect(names).toContain(n.metadata?.name);
      expect(ready(n)).toMatchObject({ status: "False", message: NOT_READY_MESSAGE });
      expect(n.metadata?.labels?.["node-role.kubernetes.io/control-plane"]).toBe("");
      expect(n.status?.nodeInfo?.kubeletVersion).toBe(kubeletVersion);
      const seed = SEED_NODES.find((s) => s.talos === n.metadata?.name);
      expect(n.status?.addresses).toContainEqual({ type: "InternalIP", address: seed?.address });
    }
    // The node lifecycle controller taints NotReady nodes, so ordinary pods wait.
    await waitFor(
      "the not-ready taints",
      async () =>
        (await workload.list<Node>(NODE)).items.every((n) =>
          n.spec?.taints?.some((t) => t.key === "node.kubernetes.io/not-ready" && t.effect === "NoSchedule"),
        ),
      TIMEOUT,
      500,
    );
    await workload.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    await workload.create({
      ...POD,
      metadata: { name: "web", namespace: "apps" },
      spec: { containers: [{ name: "web", image: "registry.example/web:1" }] },
    });
    await new Promise((r) => setTimeout(r, 5_000));
    const waiting = await workload.get<Pod>(POD, { namespace: "apps", name: "web" });
    expect(waiting.spec?.nodeName).toBeUndefined();
    expect(waiting.status?.phase).toBe("Pending");

    // The stand-in CNI: a DaemonSet labelled as Cilium's agent, tolerating everything as Cilium's does.
    await workload.create(ciliumAgentDaemonSet());
    const readyNodes = await waitFor(
      "every Node Ready with a CNI agent on it",
      async () => {
        const list = (await workload.list<Node>(NODE)).items;
        return list.length === 3 && list.every((n) => ready(n)?.status === "True") ? list : undefined;
      },
      TIMEOUT,
      500,
    );
    for (const n of readyNodes) {
      expect(n.metadata?.annotations?.[CNI_READY_ANNOTATION]).toMatch(/^kube-system\/cilium-/);
      expect(ready(n)?.reason).toBe("KubeletReady");
    }
    const running = await waitFor(
      "the pod to run on a Ready node",
      async () => {
        const p = await workload.get<Pod>(POD, { namespace: "apps", name: "web" });
        return p.status?.phase === "Running" ? p : undefined;
      },
      TIMEOUT,
      500,
    );
    expect(names).toContain(running.spec?.nodeName);
    expect(running.status?.podIP).toMatch(/^10\.244\./);

    nodeUids = Object.fromEntries(readyNodes.map((n) => [n.metadata?.name ?? "", n.metadata?.uid ?? ""]));
    podUid = running.metadata?.uid ?? "";
    etcdMembers = (await first.etcdMemberList()).map((m) => m.id).sort();
    expect(etcdMembers).toHaveLength(3);
    await kube.create({
      ...CM,
      metadata: { name: "before-the-crash", namespace: "default" },
      data: { a: "1" },
    });
  }, 600_000);

  it("kubectl apply -f examples/ as the README says: local credentials survive the example placeholders, progress shows", async () => {
    const { kubectl } = await ensureControlPlaneBinaries();
    const kube = new KubeClient(local!.kubeConfig());
    const secretData = async (name: string) =>
      (
        await kube.get<KubeObject & { data?: Record<string, string> }>(
          { apiVersion: "v1", kind: "Secret" },
          { namespace: "homelab-system", name },
        )
      ).data;
    const before = { token: await secretData("proxmox-token"), ca: await secretData("proxmox-ca") };
    const env = { ...process.env, KUBECONFIG: local!.kubeconfigPath };
    const run = (...args: string[]) => promisify(execFile)(kubectl, args, { env });
    // The README's steps: the migrations' namespace first; the AppVending's namespace peers-alice is
    // made by the alice PeerTenant, so the first apply reports it missing and a second one creates it.
    await run("create", "namespace", "infra");
    const failures = await applyExamples(run, () =>
      kube.getOrUndefined({ apiVersion: "v1", kind: "Namespace" }, { name: "peers-alice" }),
    );
    for (const line of failures)
      expect(line).toMatch(/app-vending-portfolio\.yaml": namespaces "peers-alice" not found/);
    await waitFor(
      "local mode to put its Proxmox token and CA back",
      async () => {
        const now = { token: await secretData("proxmox-token"), ca: await secretData("proxmox-ca") };
        return JSON.stringify(now) === JSON.stringify(before);
      },
      30_000,
      250,
    );
    // The token works against the seed's Proxmox address, through the seam.
    const proxmox = await seedProxmox(kube);
    expect((await proxmox.listNodes()).map((n) => n.node).sort()).toEqual([
      "neo",
      "niobe",
      "smith",
      "trinity",
    ]);
    await waitFor("a progress line for the example HomelabCluster", () =>
      /\d\d:\d\d:\d\d {2}HomelabCluster k8s created/.test(local!.output()),
    );
    expect(local!.output()).toMatch(/PeerTenant alice created/);
    // A VM, to find again after the crash below.
    await proxmox.waitForTask(
      await proxmox.createVm("trinity", 9001, { name: "kept-across-restarts", memory: 512, cores: 1 }),
    );
  }, 120_000);

  it("SIGKILL of npm start, then npm start again: the same clusters, machines and objects", async () => {
    local!.child.kill("SIGKILL");
    await local!.exited;
    local = await startLocal(dataHome);
    const kube = new KubeClient(local.kubeConfig());
    expect(
      (
        await kube.get<KubeObject & { data?: Record<string, string> }>(CM, {
          namespace: "default",
          name: "before-the-crash",
        })
      ).data,
    ).toEqual({ a: "1" });

    const endpoints = await talosEndpoints(kube);
    const first = admin(endpoints[SEED_NODES[0].talos] ?? "");
    // Still configured behind mTLS, still the same etcd.
    expect(await first.bootstrap()).toBe("already-bootstrapped");
    expect((await first.etcdMemberList()).map((m) => m.id).sort()).toEqual(etcdMembers);

    const workload = workloadClient(await first.kubeconfig());
    const nodes = await waitFor(
      "the Nodes back and Ready",
      async () => {
        const list = (await workload.list<Node>(NODE)).items;
        return list.length === 3 && list.every((n) => ready(n)?.status === "True") ? list : undefined;
      },
      TIMEOUT,
      500,
    );
    expect(Object.fromEntries(nodes.map((n) => [n.metadata?.name ?? "", n.metadata?.uid ?? ""]))).toEqual(
      nodeUids,
    );
    const pod = await workload.get<Pod>(POD, { namespace: "apps", name: "web" });
    expect(pod.metadata?.uid).toBe(podUid);
    expect(pod.status?.phase).toBe("Running");
    // Proxmox VE kept its VMs, and the stored token still works.
    const proxmox = await seedProxmox(kube);
    expect((await proxmox.listVms()).map((v) => [v.vmid, v.name])).toContainEqual([
      9001,
      "kept-across-restarts",
    ]);
  }, 900_000);

  it("a second npm start on the same state, with or without --reset, is refused and changes nothing", async () => {
    for (const args of [[], ["--reset"]]) {
      const err = await startLocal(dataHome, args).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/exited with 1 before it was ready/);
      expect(err?.message).toMatch(/is in use by process/);
    }
    const kube = new KubeClient(local!.kubeConfig());
    expect(await kube.getOrUndefined(CM, { namespace: "default", name: "before-the-crash" })).toBeDefined();
    expect(recordedPids(stateDir).every(alive)).toBe(true);
  }, 300_000);

  it("Ctrl-C stops every process and keeps the state", async () => {
    const pids = recordedPids(stateDir);
    expect(pids.length).toBeGreaterThanOrEqual(8); // 2 x (etcd, apiserver, controller-manager) + scheduler + kwok
    expect(pids.every(alive)).toBe(true);
    local!.child.kill("SIGINT");
    expect(await local!.exited).toBe(0);
    local = undefined;
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(stateDir, "management", "etcd"))).toBe(true);
    expect(existsSync(join(stateDir, "simulators", "talos.json"))).toBe(true);
  }, 120_000);

  it("--reset starts from nothing", async () => {
    local = await startLocal(dataHome, ["--reset"]);
    const kube = new KubeClient(local.kubeConfig());
    expect(await kube.getOrUndefined(CM, { namespace: "default", name: "before-the-crash" })).toBeUndefined();
    const endpoints = await talosEndpoints(kube);
    const workload = workloadClient(readFileSync(join(stateDir, "workload", "admin.kubeconfig"), "utf8"));
    expect((await workload.list<Node>(NODE)).items).toEqual([]);
    const proxmox = await seedProxmox(kube);
    // Only the seed's VMs that every fresh state starts with (seed-vms.ts); the one made before is gone.
    expect((await proxmox.listVms()).map((v) => v.name).sort()).toEqual(SEED_VMS.map((v) => v.name).sort());
    // Blank machines again: silent without their VMs, and once a VM runs its machine answers in
    // maintenance mode, without a client certificate.
    for (const [i, n] of SEED_NODES.entries()) {
      const m = TalosClient.maintenance(endpoints[n.talos] ?? "", { timeoutMs: 10_000 });
      clients.push(m);
      await expect(m.version()).rejects.toThrow();
      const vmid = 9201 + i;
      await proxmox.waitForTask(
        await proxmox.createVm(n.proxmoxNode, vmid, { name: n.talos, memory: 512, cores: 1 }),
      );
      await proxmox.waitForTask(await proxmox.start(n.proxmoxNode, vmid));
      const version = await waitFor(`${n.talos} to answer once its VM runs`, () => m.version(), 30_000, 250);
      expect(version.tag).toMatch(/^v1\./);
    }
    local.child.kill("SIGTERM");
    expect(await local.exited).toBe(0);
    local = undefined;
  }, 900_000);
});
