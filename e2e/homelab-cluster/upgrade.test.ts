// Rolling Talos upgrades of the seed's three control planes on the simulators, the operator as its own
// process. What is asserted comes from the Talos simulator's own record of node states over time (mode,
// version, healthy etcd members at each change), the RPCs each machine received, and the pods as the
// workload control plane holds them.
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import { atLeastMinor } from "../../src/talos/config/version.ts";
import type { NodeStateRecord } from "../../src/talos/simulator/simulator.ts";
import { ciliumAgentDaemonSet } from "../harness/cilium.ts";
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
const SCHEMATIC_D = "d".repeat(64);

let homelab: Homelab;
let client: KubeClient;
let workload: KubeClient;
let operator: OperatorProcess;
let podsReady: { stop(): Promise<void> } | undefined;

beforeAll(async () => {
  // A reboot long enough that every poll of the record sees a node down while it is.
  homelab = await startHomelab({ rebootDelayMs: 1_500 });
  client = await prepareCluster(adminKubeConfig(), homelab);
  operator = startOperator(homelab);
  await client.create(
    seedCluster(homelab, (o) => {
      o.spec.upgrade = { healthTimeout: "30s" };
    }),
  );
  await waitCondition(client, "k8s", "Ready", (c) => c.status === "True", 300_000).catch(failWithStatus);
  const secret = await client.get<Loose>(
    { apiVersion: "v1", kind: "Secret" },
    { namespace: OPERATOR_NAMESPACE, name: "k8s-kubeconfig" },
  );
  const kc = new KubeConfig();
  kc.loadFromString(Buffer.from(secret.data.value, "base64").toString());
  workload = new KubeClient(kc);
  podsReady = reportPodsReady();
  await startWorkloads();
}, 600_000);

afterAll(async () => {
  await podsReady?.stop();
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
  await workload.create(ciliumAgentDaemonSet());
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
      return (
        hc.status?.nodesReady === "3/3" && (await webPods()).filter((p) => p.running && p.ready).length === 3
      );
    },
    240_000,
    500,
  );
}

async function webPods(): Promise<{ name: string; node: string; running: boolean; ready: boolean }[]> {
  const pods = await workload.list<Loose>(
    { apiVersion: "v1", kind: "Pod" },
    { namespace: "default", labelSelector: "app=web" },
  );
  return pods.items.map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName ?? "",
    running: p.status?.phase === "Running" && !p.metadata.deletionTimestamp,
    ready:
      (p.status?.conditions as Cond[] | undefined)?.some((c) => c.type === "Ready" && c.status === "True") ??
      false,
  }));
}

/**
 * The part of a kubelet KWOK leaves out that these tests lean on: a pod whose containers are ready is
 * reported Ready. On a loaded machine a KWOK heartbeat can come late enough for the node lifecycle
 * controller to mark every pod NotReady once, and KWOK never reports them Ready again, so every PDB
 * would count no healthy pod and allow no eviction at all. Like the kubelet, this sets Ready back
 * (status only: the pods stay where they are, nothing bypasses a budget).
 */
function reportPodsReady() {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const pods = await workload.list<Loose>(
          { apiVersion: "v1", kind: "Pod" },
          { namespace: "default", labelSelector: "app=web" },
        );
        for (const p of pods.items) {
          const conds = (p.status?.conditions ?? []) as Cond[];
          const containersReady = conds.some((c) => c.type === "ContainersReady" && c.status === "True");
          const ready = conds.some((c) => c.type === "Ready" && c.status === "True");
          if (p.status?.phase !== "Running" || !containersReady || ready || p.metadata.deletionTimestamp)
            continue;
          await workload.patch(
            { apiVersion: "v1", kind: "Pod" },
            { namespace: "default", name: p.metadata.name },
            {
              status: {
                conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date().toISOString() }],
              },
            },
            "strategic",
            "status",
          );
        }
      } catch {
        // the next pass looks again
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
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
  }, 600_000);

  it("halts on a node whose upgrade fails or that does not come back, and resumes once it is fixed", async () => {
    const since = Date.now();
    const callsBefore = NAMES.map(upgradeCalls);
    const image = (name: string) => homelab.talos.node(name).image ?? "";
    homelab.talos.faults.failUpgrade("talos-neo", "install");
    await patchSpec({ talos: { schematic: SCHEMATIC_B } });

    // trinity goes first and gets the new schematic; neo's installer fails: the rollout stops there.
    const failed = await waitCondition(
      client,
      "k8s",
      "TalosUpToDate",
      (c) => c.reason === "UpgradeFailed",
      180_000,
    );
    expect(failed.message).toMatch(/^talos-neo: .*installer exited with 1/);
    expect(image("talos-trinity")).toContain(SCHEMATIC_B);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await conditionOf(client, "k8s", "TalosUpToDate")).toMatchObject({ reason: "UpgradeFailed" });
    expect(upgradeCalls("talos-niobe")).toBe(callsBefore[2]);
    expect(image("talos-niobe")).not.toContain(SCHEMATIC_B);

    // Fixed: neo upgrades. niobe is powered off while it reboots into its upgrade and stays off: past
    // healthTimeout the rollout says so, naming it; powered on, it boots the new system and the rollout ends.
    homelab.talos.faults.failUpgrade("talos-neo", null);
    await waitFor(
      "niobe to reboot into its upgrade",
      () => homelab.talos.node("talos-niobe").mode === "rebooting",
      120_000,
      20,
    );
    await homelab.talos.faults.nodeDown("talos-niobe");
    const stalled = await waitCondition(
      client,
      "k8s",
      "TalosUpToDate",
      (c) => c.reason === "UpgradeStalled",
      180_000,
    );
    expect(stalled.message).toMatch(/^talos-niobe not back within 30s .*unavailable/);
    const hc = await client.get<Loose>(HC, { name: "k8s" });
    expect(hc.status.phase).toBe("Upgrading");
    expect(hc.status.upgrade.talos).toMatchObject({ node: "talos-niobe", stage: "Upgrading" });
    await homelab.talos.faults.nodeDown("talos-niobe", false);
    await waitUpToDate(120_000, (c) => c.message.includes(SCHEMATIC_B));

    for (const name of NAMES) expect(image(name), name).toContain(SCHEMATIC_B);
    const calls = NAMES.map(upgradeCalls).map((n, i) => n - callsBefore[i]!);
    expect(calls[0]).toBe(1);
    expect(calls[1]).toBeGreaterThanOrEqual(2); // failed, asked again after the fix
    expect(calls[2]).toBe(1);
    const { maxDown, minEtcd } = replay(homelab.talos.history(), since);
    expect(maxDown).toBe(1);
    expect(minEtcd).toBeGreaterThanOrEqual(2);
  }, 600_000);

  it("waits while upgrade.paused is set, and a drain a PodDisruptionBudget blocks pauses instead of forcing", async () => {
    const callsBefore = NAMES.map(upgradeCalls);
    await workload.patch(
      { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
      { namespace: "default", name: "web" },
      { spec: { minAvailable: 3 } },
      "merge",
    );
    await patchSpec({ talos: { schematic: SCHEMATIC_D }, upgrade: { paused: true } });
    const paused = await waitCondition(
      client,
      "k8s",
      "TalosUpToDate",
      (c) => c.reason === "UpgradePaused",
      180_000,
    );
    expect(paused.message).toMatch(/talos-trinity is next/);
    await new Promise((r) => setTimeout(r, 2_000));
    const nodes = await workload.list<Loose>({ apiVersion: "v1", kind: "Node" });
    expect(nodes.items.filter((n) => n.spec?.unschedulable)).toEqual([]);

    const podsOnTrinity = (await webPods()).filter((p) => p.node === "talos-trinity").map((p) => p.name);
    expect(podsOnTrinity.length).toBeGreaterThan(0);
    await patchSpec({ upgrade: { paused: false } });
    const stuck = await waitCondition(
      client,
      "k8s",
      "TalosUpToDate",
      (c) => c.reason === "DrainTimeout",
      180_000,
    );
    expect(stuck.message).toMatch(
      /^talos-trinity not drained within 30s: eviction refused: default\/web-.*disruption budget/,
    );
    // Not forced: the pods are where they were, and no node was sent an upgrade.
    expect((await webPods()).filter((p) => p.node === "talos-trinity").map((p) => p.name)).toEqual(
      podsOnTrinity,
    );
    expect(NAMES.map(upgradeCalls)).toEqual(callsBefore);

    await workload.patch(
      { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
      { namespace: "default", name: "web" },
      { spec: { minAvailable: 2 } },
      "merge",
    );
    await waitUpToDate(180_000, (c) => c.message.includes(SCHEMATIC_D));
    expect(NAMES.map(upgradeCalls).map((n, i) => n - callsBefore[i]!)).toEqual([1, 1, 1]);
  }, 600_000);

  it("an operator killed again and again mid-rollout resumes it and never upgrades a node twice", async () => {
    // Stopped first, so nothing it was doing lands inside the counts.
    await operator.kill("SIGKILL");
    const since = Date.now();
    const callsBefore = NAMES.map(upgradeCalls);
    const rebootsBefore = NAMES.map((n) => homelab.talos.node(n).reboots);
    const onC = () => NAMES.filter((n) => homelab.talos.node(n).image?.includes(SCHEMATIC_C)).length;
    await patchSpec({ talos: { schematic: SCHEMATIC_C } });
    const kills: { onC: number; stage: string }[] = [];
    for (let i = 0; i < 25 && onC() < 3; i++) {
      const healthPort = await freePort();
      operator = startOperator(homelab, { HEALTH_PORT: String(healthPort) });
      await waitFor(
        "the operator to be ready",
        async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok,
        60_000,
        50,
      );
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 2_000));
      await operator.kill("SIGKILL");
      const hc = await client.get<Loose>(HC, { name: "k8s" });
      const r = hc.status?.upgrade?.talos;
      kills.push({ onC: onC(), stage: r?.node ? `${r.node}:${r.stage}` : "none" });
    }
    operator = startOperator(homelab);
    await waitUpToDate(180_000, (c) => c.message.includes(SCHEMATIC_C));
    console.log(`kills: ${kills.map((k) => `${k.onC}/3 ${k.stage}`).join(", ")}`);

    for (const name of NAMES) expect(homelab.talos.node(name).image, name).toContain(SCHEMATIC_C);
    // Exactly one upgrade request and one reboot per node, however often the operator died.
    expect(NAMES.map(upgradeCalls).map((n, i) => n - callsBefore[i]!)).toEqual([1, 1, 1]);
    expect(NAMES.map((n, i) => homelab.talos.node(n).reboots - rebootsBefore[i]!)).toEqual([1, 1, 1]);
    const { maxDown, minEtcd } = replay(homelab.talos.history(), since);
    expect(maxDown).toBe(1);
    expect(minEtcd).toBeGreaterThanOrEqual(2);
    // Most kills landed while a node was in the middle of its upgrade, or the test proves little.
    expect(kills.filter((k) => k.stage !== "none").length, JSON.stringify(kills)).toBeGreaterThanOrEqual(3);
  }, 600_000);

  it("upgrades Kubernetes v1.34.1 → v1.35.0: pre-pulls, then per control plane API server, controller manager, scheduler, then kubelets", async () => {
    const since = Date.now();
    const rebootsBefore = NAMES.map((n) => homelab.talos.node(n).reboots);
    // The last node's registry lacks the new scheduler: the pre-pull fails there, naming node and
    // image, and no node's config is patched, not even the ones whose pulls succeeded.
    const missing = "registry.k8s.io/kube-scheduler:v1.35.0";
    homelab.talos.faults.missingImage("talos-niobe", missing);
    await patchSpec({ kubernetes: { version: "v1.35.0" } });
    const pullFailed = await waitCondition(
      client,
      "k8s",
      "KubernetesUpToDate",
      (c) => c.reason === "ImagePullFailed",
      180_000,
    ).catch(failWithStatus);
    expect(pullFailed.status).toBe("False");
    expect(pullFailed.message).toContain(`${missing} on talos-niobe`);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await conditionOf(client, "k8s", "KubernetesUpToDate")).toMatchObject({
      reason: "ImagePullFailed",
    });
    expect(NAMES.map((n) => homelab.talos.node(n).applied.filter((a) => a.at >= since).length)).toEqual([
      0, 0, 0,
    ]);
    homelab.talos.faults.missingImage("talos-niobe", missing, false);
    await waitCondition(
      client,
      "k8s",
      "KubernetesUpToDate",
      (c) => c.status === "True" && c.message.includes("v1.35.0"),
      240_000,
    ).catch(failWithStatus);

    // The configs each node was given, as the node recorded them: one component per apply, in order.
    const applies = NAMES.map((n) =>
      homelab.talos
        .node(n)
        .applied.filter((a) => a.at >= since)
        .map((a) => ({ at: a.at, mode: a.mode, images: imagesOf(a.yaml) })),
    );
    for (const [i, name] of NAMES.entries()) {
      expect(
        applies[i]!.map((a) => a.mode),
        name,
      ).toEqual(["NO_REBOOT", "NO_REBOOT", "NO_REBOOT", "NO_REBOOT"]);
      expect(
        applies[i]!.map((a) => a.images),
        name,
      ).toEqual([
        { apiServer: "v1.35.0", controllerManager: "v1.34.1", scheduler: "v1.34.1", kubelet: "v1.34.1" },
        { apiServer: "v1.35.0", controllerManager: "v1.35.0", scheduler: "v1.34.1", kubelet: "v1.34.1" },
        { apiServer: "v1.35.0", controllerManager: "v1.35.0", scheduler: "v1.35.0", kubelet: "v1.34.1" },
        { apiServer: "v1.35.0", controllerManager: "v1.35.0", scheduler: "v1.35.0", kubelet: "v1.35.0" },
      ]);
    }
    // Control planes one after the other, and kubelets only once every control plane is done.
    const lastControlPlane = Math.max(...applies.map((a) => a[2]!.at));
    const firstKubelet = Math.min(...applies.map((a) => a[3]!.at));
    expect(firstKubelet).toBeGreaterThan(lastControlPlane);
    for (let i = 1; i < NAMES.length; i++) expect(applies[i]![0]!.at).toBeGreaterThan(applies[i - 1]![2]!.at);
    // Pre-pulled (through ImageService on Talos v1.13, which the nodes run after the tests above; the
    // older MachineService.ImagePull before): each node's four images, the control-plane ones into CRI
    // and the kubelet into Talos' system namespace, all of them before the first patch of any node.
    const firstApply = Math.min(...applies.map((a) => a[0]!.at));
    for (const name of NAMES) {
      const pulls = homelab.talos.node(name).pulls.filter((p) => p.at >= since);
      const api = atLeastMinor(homelab.talos.node(name).version, 1, 13) ? "ImageService" : "MachineService";
      expect(new Set(pulls.map((p) => `${p.api} ${p.namespace} ${p.image}`)), name).toEqual(
        new Set([
          `${api} NS_CRI registry.k8s.io/kube-apiserver:v1.35.0`,
          `${api} NS_CRI registry.k8s.io/kube-controller-manager:v1.35.0`,
          `${api} NS_CRI registry.k8s.io/kube-scheduler:v1.35.0`,
          `${api} NS_SYSTEM ghcr.io/siderolabs/kubelet:v1.35.0`,
        ]),
      );
      const allPulledAt = Math.max(
        ...["kube-apiserver", "kube-controller-manager", "kube-scheduler"].map((c) =>
          Math.min(...pulls.filter((p) => p.image.includes(c)).map((p) => p.at)),
        ),
        Math.min(...pulls.filter((p) => p.image.includes("kubelet")).map((p) => p.at)),
      );
      expect(allPulledAt, `${name}: every image pulled before the first patch`).toBeLessThan(firstApply);
    }

    // No reboot: static pods and kubelets restart in place.
    expect(NAMES.map((n, i) => homelab.talos.node(n).reboots - rebootsBefore[i]!)).toEqual([0, 0, 0]);

    // What the workload cluster shows: mirror pods on the new images, kubelets reporting v1.35.0.
    const pods = await workload.list<Loose>({ apiVersion: "v1", kind: "Pod" }, { namespace: "kube-system" });
    for (const name of NAMES)
      for (const c of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        const pod = pods.items.find((p) => p.metadata.name === `${c}-${name}`);
        expect(pod?.spec.containers[0].image, `${c}-${name}`).toBe(`registry.k8s.io/${c}:v1.35.0`);
      }
    const nodes = await workload.list<Loose>({ apiVersion: "v1", kind: "Node" });
    expect(nodes.items.map((n) => n.status.nodeInfo.kubeletVersion)).toEqual([
      "v1.35.0",
      "v1.35.0",
      "v1.35.0",
    ]);
    const hc = await client.get<Loose>(HC, { name: "k8s" });
    expect(hc.status.kubernetesVersion).toBe("v1.35.0");
    expect(hc.status.upgrade).toBeUndefined();

    // Talos' bootstrap manifests, read over COSI from a control plane, applied under field manager "talos".
    const crb = await workload.get<Loose>(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding" },
      { name: "system-bootstrap-node-bootstrapper" },
    );
    const byTalos = (o: Loose) => (o.metadata.managedFields ?? []).find((f: Loose) => f.manager === "talos");
    // Its content is the same on every version, so its apply time is the first sync's, long before.
    expect(byTalos(crb)?.operation).toBe("Apply");
    // This suite's cluster runs Cilium (cluster.proxy.disabled): Talos renders no kube-proxy for it.
    expect(
      await workload
        .get<Loose>(
          { apiVersion: "apps/v1", kind: "DaemonSet" },
          { name: "kube-proxy", namespace: "kube-system" },
        )
        .catch(() => undefined),
    ).toBeUndefined();
  }, 600_000);

  it("puts back a bootstrap manifest edited by hand in the workload cluster (forced apply as talos)", async () => {
    const key = { name: "system-bootstrap-node-bootstrapper" };
    const CRB = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding" };
    const rendered = await workload.get<Loose>(CRB, key);
    const subjects = rendered.subjects;
    expect(subjects?.length).toBeGreaterThan(0);
    // An admin of the workload cluster (or an attacker with that right) grants node bootstrapping to
    // every authenticated user.
    await workload.patch(
      CRB,
      key,
      { subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:authenticated" }] },
      "merge",
    );
    const deadline = Date.now() + 60_000;
    let now = await workload.get<Loose>(CRB, key);
    while (JSON.stringify(now.subjects) !== JSON.stringify(subjects) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      now = await workload.get<Loose>(CRB, key);
    }
    expect(now.subjects).toEqual(subjects);
    expect(await conditionOf(client, "k8s", "KubernetesUpToDate")).toMatchObject({ status: "True" });
  }, 120_000);
});

function imagesOf(yaml: string) {
  const docs = parseAllDocuments(yaml).map((d) => d.toJS() as Loose);
  const v1 = docs.find((d) => d?.version === "v1alpha1" && d.kind === undefined) ?? {};
  const apiDoc = docs.find((d) => d?.kind === "KubeAPIServerConfig");
  const tag = (image: string | undefined) => image?.split(":").at(-1);
  return {
    apiServer: tag(apiDoc?.image ?? v1.cluster?.apiServer?.image),
    controllerManager: tag(v1.cluster?.controllerManager?.image),
    scheduler: tag(v1.cluster?.scheduler?.image),
    kubelet: tag(v1.machine?.kubelet?.image),
  };
}
