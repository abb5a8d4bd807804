// Rolling Talos upgrades of the seed's three control planes on the simulators, the operator as its own
// process. What is asserted comes from the Talos simulator's own record of node states over time (mode,
// version, healthy etcd members at each change), the RPCs each machine received, and the pods as the
// workload control plane holds them.
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import type { NodeStateRecord } from "../../src/talos/simulator/simulator.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { type Homelab, SEED, startHomelab } from "./homelab.ts";
import {
  type Cond,
  conditionOf,
  HC,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  prepareCluster,
  removeCluster,
  removeCredentials,
  seedCluster,
  startOperator,
  waitCondition,
} from "./operator.ts";

// biome-ignore lint/suspicious/noExplicitAny: objects as read back, walked freely by tests
type Loose = Record<string, any>;

const NAMES = SEED.map((n) => n.name);
const UPGRADE_RPCS = ["/machine.MachineService/Upgrade", "/machine.LifecycleService/Upgrade"];
const SCHEMATIC_B = "b".repeat(64);
const SCHEMATIC_C = "c".repeat(64);

let homelab: Homelab;
let client: KubeClient;
let workload: KubeClient;
let operator: OperatorProcess;

beforeAll(async () => {
  // A reboot long enough that every poll of the record sees a node down while it is.
  homelab = await startHomelab({ rebootDelayMs: 1_500 });
  client = await prepareCluster(adminKubeConfig(), homelab);
  operator = startOperator(homelab);
  await client.create(
    seedCluster(homelab, (o) => {
      o.spec.upgrade = { healthTimeout: "8s" };
    }),
  );
  await waitCondition(client, "k8s", "Ready", (c) => c.status === "True", 150_000).catch(failWithStatus);
  const secret = await client.get<Loose>(
    { apiVersion: "v1", kind: "Secret" },
    { namespace: OPERATOR_NAMESPACE, name: "k8s-kubeconfig" },
  );
  const kc = new KubeConfig();
  kc.loadFromString(Buffer.from(secret.data.value, "base64").toString());
  workload = new KubeClient(kc);
  await startWorkloads();
}, 600_000);

afterAll(async () => {
  if (client && operator) await removeCluster(client).catch(() => {});
  await operator?.kill();
  if (client) await removeCredentials(client);
  await homelab?.stop();
});

async function failWithStatus(err: unknown): Promise<never> {
  const hc = await client.getOrUndefined<Loose>(HC, { name: "k8s" });
  throw new Error(
    `${(err as Error).message}\n${JSON.stringify(hc?.status, null, 1)}\n${operator?.output().slice(-4000)}`,
  );
}

/** A CNI agent on every node (so the Nodes turn Ready, as with Cilium) and a 3-replica app behind a PDB. */
async function startWorkloads() {
  await workload.create({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "cilium", namespace: "kube-system" },
    spec: {
      selector: { matchLabels: { "k8s-app": "cilium" } },
      template: {
        metadata: { labels: { "k8s-app": "cilium" } },
        spec: {
          hostNetwork: true,
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "cilium-agent", image: "quay.io/cilium/cilium:v1.18.1" }],
        },
      },
    },
  });
  await workload.create({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default" },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          // One per node while it can, so every drain has a pod to evict.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: { app: "web" } },
            },
          ],
          containers: [{ name: "web", image: "nginx:1.27" }],
        },
      },
    },
  });
  await workload.create({
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: "web", namespace: "default" },
    spec: { minAvailable: 2, selector: { matchLabels: { app: "web" } } },
  });
  await waitFor(
    "3 Ready Nodes and 3 running web pods",
    async () => {
      const hc = await client.get<Loose>(HC, { name: "k8s" });
      return hc.status?.nodesReady === "3/3" && (await webPods()).filter((p) => p.running).length === 3;
    },
    240_000,
    500,
  );
}

async function webPods(): Promise<{ name: string; node: string; running: boolean }[]> {
  const pods = await workload.list<Loose>(
    { apiVersion: "v1", kind: "Pod" },
    { namespace: "default", labelSelector: "app=web" },
  );
  return pods.items.map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName ?? "",
    running: p.status?.phase === "Running" && !p.metadata.deletionTimestamp,
  }));
}

/** Samples the workload cluster: which web pods sit on which node, and which nodes are cordoned. */
function sampleWorkload() {
  const samples: { at: number; pods: { name: string; node: string }[]; cordoned: string[] }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const nodes = await workload.list<Loose>({ apiVersion: "v1", kind: "Node" });
        samples.push({
          at: Date.now(),
          pods: await webPods(),
          cordoned: nodes.items.filter((n) => n.spec?.unschedulable).map((n) => n.metadata.name),
        });
      } catch {
        // a sample lost to a slow API server is just a gap
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const upgradeCalls = (name: string) =>
  homelab.talos.node(name).calls.filter((c) => UPGRADE_RPCS.includes(c)).length;

/** Replays the record from `since`: the most nodes not running at once, the fewest healthy members. */
function replay(history: readonly NodeStateRecord[], since: number) {
  const mode = new Map<string, string>();
  for (const r of history) if (r.at < since) mode.set(r.node, r.mode);
  let maxDown = 0;
  let minEtcd = Number.POSITIVE_INFINITY;
  for (const r of history) {
    if (r.at < since) continue;
    mode.set(r.node, r.mode);
    maxDown = Math.max(maxDown, [...mode.values()].filter((m) => m !== "running").length);
    if (r.etcdHealthy !== null) minEtcd = Math.min(minEtcd, r.etcdHealthy);
  }
  return { maxDown, minEtcd };
}

/** Each node's versions in the order it booted them, from `since`. */
function versionsBooted(history: readonly NodeStateRecord[], since: number, name: string): string[] {
  const out: string[] = [];
  for (const r of history)
    if (r.node === name && r.at >= since && r.mode === "running" && out.at(-1) !== r.version)
      out.push(r.version);
  return out;
}

async function patchSpec(patch: Loose) {
  await client.patch(HC, { name: "k8s" }, { spec: patch }, "merge");
}

async function waitUpToDate(timeoutMs: number, what: (c: Cond) => boolean = () => true) {
  return waitCondition(
    client,
    "k8s",
    "TalosUpToDate",
    (c) => c.status === "True" && what(c),
    timeoutMs,
  ).catch(failWithStatus);
}

describe("HomelabCluster rolling Talos upgrade on the simulators", () => {
  it("goes v1.11.0 → v1.12.1 → v1.13.1 one node at a time, etcd never below 2, drained pods evicted", async () => {
    const since = Date.now();
    const callsBefore = NAMES.map(upgradeCalls);
    const podsBefore = await webPods();
    const sampler = sampleWorkload();
    await patchSpec({ talos: { version: "v1.13.1" } });
    // The plan is visible while it runs: the first step is the latest v1.12 the Image Factory lists.
    const rolling = await waitCondition(client, "k8s", "TalosUpToDate", (c) => c.status === "False", 60_000);
    expect(rolling.message).toMatch(/v1\.12\.1/);
    await waitUpToDate(300_000, (c) => c.message.includes("v1.13.1"));
    await sampler.stop();

    const history = homelab.talos.history();
    // Every node booted exactly the path, one minor at a time.
    for (const name of NAMES)
      expect(versionsBooted(history, since, name), name).toEqual(["v1.12.1", "v1.13.1"]);
    // One upgrade request per node per step, never a second.
    expect(NAMES.map(upgradeCalls).map((n, i) => n - callsBefore[i]!)).toEqual([2, 2, 2]);
    const { maxDown, minEtcd } = replay(history, since);
    expect(maxDown).toBe(1);
    expect(minEtcd).toBeGreaterThanOrEqual(2);
    // Steps do not overlap: the first v1.13.1 boot comes after the last v1.12.1 boot.
    const boots = history.filter((r) => r.at >= since && r.mode === "running");
    const last112 = Math.max(...boots.filter((r) => r.version === "v1.12.1").map((r) => r.at));
    const first113 = Math.min(...boots.filter((r) => r.version === "v1.13.1").map((r) => r.at));
    expect(first113).toBeGreaterThan(last112);
    // Control planes in spec order within a step.
    const order = boots.filter((r) => r.version === "v1.12.1").map((r) => r.node);
    expect([...new Set(order)]).toEqual(NAMES);

    // Drained: before each node went down it was cordoned with no web pod on it.
    for (const name of NAMES) {
      const down = history.find((r) => r.node === name && r.at >= since && r.mode === "rebooting");
      expect(down, name).toBeDefined();
      const before = sampler.samples.filter((s) => s.at < (down?.at ?? 0)).at(-1);
      expect(before?.cordoned, name).toContain(name);
      expect(
        before?.pods.filter((p) => p.node === name),
        name,
      ).toEqual([]);
    }
    // The pods that ran before were evicted (their ReplicaSet replaced them), and 3 run again.
    const after = await webPods();
    for (const p of podsBefore) expect(after.map((a) => a.name)).not.toContain(p.name);
    expect(after.filter((p) => p.running)).toHaveLength(3);
    // Uncordoned again, and the status says what runs.
    expect(sampler.samples.at(-1)?.cordoned).toEqual([]);
    const hc = await client.get<Loose>(HC, { name: "k8s" });
    expect(hc.status.talosVersion).toBe("v1.13.1");
    expect(hc.status.upgrade?.talos?.node).toBeUndefined();
    for (const n of hc.status.nodes as Loose[]) expect(n.talosVersion).toBe("v1.13.1");
  }, 420_000);
});
