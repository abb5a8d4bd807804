// Local mode's workload cluster as kube-scheduler sees it: a Node registered the way the Talos hook
// registers it is NotReady and carries node.kubernetes.io/not-ready:NoSchedule in every version the API
// server ever stores, until a CNI agent runs on it, whatever order admission, the node lifecycle
// controller and KWOK act in. A pod without that toleration, created before the Nodes exist (so the
// scheduler retries it on every Node event), is bound only once its node is Ready.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { CNI_READY_ANNOTATION, NOT_READY_MESSAGE } from "../../src/local/kwok-stages.ts";
import { startWorkloadCluster, type WorkloadCluster } from "../../src/local/workload-cluster.ts";
import type { KubeClient, KubeObject } from "../../src/runtime/index.ts";
import { ciliumAgentDaemonSet } from "../harness/cilium.ts";
import { waitFor } from "../harness/wait.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Node extends KubeObject {
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { conditions?: Condition[] };
}
interface Pod extends KubeObject {
  spec?: { nodeName?: string; containers?: { name: string; image: string }[] };
  status?: { phase?: string; conditions?: Condition[] };
}

const NODE = { apiVersion: "v1", kind: "Node" };
const POD = { apiVersion: "v1", kind: "Pod" };
const NAMES = ["wl-a", "wl-b", "wl-c"];
const TIMEOUT = 180_000;

const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === "Ready");
const notReadyTainted = (n: Node) =>
  n.spec?.taints?.some((t) => t.key === "node.kubernetes.io/not-ready" && t.effect === "NoSchedule") ?? false;

let dir: string;
let workload: WorkloadCluster;
let client: KubeClient;
const seen: Node[] = [];
const stopWatch = new AbortController();
let watching: Promise<void>;

/** Every Node version from `resourceVersion` on, in order, into `seen`. */
async function recordNodes(resourceVersion: string): Promise<void> {
  for await (const event of client.watch<Node>(NODE, { resourceVersion, signal: stopWatch.signal })) {
    if (event.type === "ADDED" || event.type === "MODIFIED") seen.push(event.object);
  }
}

const register = (name: string) =>
  workload.registerNode({ name, address: "10.0.3.16", roles: ["control-plane"], kubeletVersion: "v1.34.0" });

beforeAll(async () => {
  await ensureKwokBinary();
  dir = await mkdtemp(join(tmpdir(), "homelab-workload-e2e-"));
  workload = await startWorkloadCluster({ dir });
  client = workload.client();
  const { resourceVersion } = await client.list<Node>(NODE);
  watching = recordNodes(resourceVersion);
  watching.catch(() => {});
}, 600_000);

afterAll(async () => {
  stopWatch.abort();
  await watching?.catch(() => {});
  await workload?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the workload cluster's Nodes and kube-scheduler", () => {
  it("a registered Node is NotReady and tainted not-ready in every stored version; a pod without the toleration waits", async () => {
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    await client.create<Pod>({
      ...POD,
      metadata: { name: "web", namespace: "apps" },
      spec: { containers: [{ name: "web", image: "registry.example/web:1" }] },
    });
    // All at once, as three Talos machines joining after the bootstrap do.
    await Promise.all(NAMES.map(register));
    // KWOK has posted its own NotReady status on each (its status write), and the node lifecycle
    // controller has had time to act on every version it cached.
    await waitFor(
      "KWOK's NotReady status on every Node",
      async () => {
        const nodes = (await client.list<Node>(NODE)).items;
        return (
          nodes.length === NAMES.length &&
          nodes.every((n) =>
            (n.metadata?.managedFields as { manager?: string }[] | undefined)?.some(
              (f) => f.manager === "kwok",
            ),
          )
        );
      },
      TIMEOUT,
      250,
    );
    // A kubelet that starts again (a reboot) registers once more: its Node keeps its conditions and taint.
    await Promise.all(NAMES.map(register));
    await new Promise((r) => setTimeout(r, 10_000));

    for (const name of NAMES) {
      const versions = seen.filter((n) => n.metadata?.name === name);
      expect(versions.length, name).toBeGreaterThan(1);
      // From the very first stored version: conditions as the kubelet registers them, and the taint.
      for (const v of versions) {
        expect(ready(v), `${name}@${v.metadata?.resourceVersion}`).toMatchObject({
          status: "False",
          reason: "KubeletNotReady",
          message: NOT_READY_MESSAGE,
        });
        expect(notReadyTainted(v), `${name}@${v.metadata?.resourceVersion} tainted`).toBe(true);
      }
    }
    const pod = await client.get<Pod>(POD, { namespace: "apps", name: "web" });
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.status?.conditions?.find((c) => c.type === "PodScheduled")).toMatchObject({
      status: "False",
      reason: "Unschedulable",
    });
  }, 300_000);

  it("once a CNI agent runs on the Nodes they turn Ready and lose the taint, and the pod is bound to a Ready one", async () => {
    await client.create(ciliumAgentDaemonSet());
    const running = await waitFor(
      "the pod to run",
      async () => {
        const p = await client.get<Pod>(POD, { namespace: "apps", name: "web" });
        return p.status?.phase === "Running" ? p : undefined;
      },
      TIMEOUT,
      500,
    );
    expect(NAMES).toContain(running.spec?.nodeName);
    const node = await client.get<Node>(NODE, { name: running.spec?.nodeName ?? "" });
    expect(ready(node)?.status).toBe("True");
    expect(node.metadata?.annotations?.[CNI_READY_ANNOTATION]).toMatch(/^kube-system\/cilium-/);
    // Not once did a Node that was not Ready stand without the taint (the scheduler's only guard).
    const untaintedNotReady = seen.filter((n) => ready(n)?.status !== "True" && !notReadyTainted(n));
    expect(untaintedNotReady.map((n) => `${n.metadata?.name}@${n.metadata?.resourceVersion}`)).toEqual([]);
  }, 300_000);
});
