import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { NOT_READY_MESSAGE } from "../../src/local/kwok-stages.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { ciliumAgentDaemonSet } from "../harness/cilium.ts";
import { waitFor } from "../harness/wait.ts";
import {
  applySeedExamples,
  type LocalProcess,
  managementCluster,
  removeLocal,
  startLocal,
} from "./local-process.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Hc extends KubeObject {
  status?: {
    phase?: string;
    nodesReady?: string;
    conditions?: Condition[];
    nodes?: { name: string; ready?: boolean; talosMode?: string; kubeletVersion?: string }[];
  };
}
interface Node extends KubeObject {
  status?: { conditions?: Condition[]; nodeInfo?: { kubeletVersion?: string } };
}

const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };
const SEED_NAMES = ["talos-neo", "talos-niobe", "talos-trinity"];
const TIMEOUT = 600_000;

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;

const condition = (hc: Hc | undefined, type: string) => hc?.status?.conditions?.find((c) => c.type === type);
const nodeReady = (n: Node) => n.status?.conditions?.find((c) => c.type === "Ready");

beforeAll(async () => {
  await ensureKwokBinary();
  dataHome = await mkdtemp(join(tmpdir(), "homelab-local-hc-e2e-"));
  stateDir = join(dataHome, "homelab-operator", "local");
}, 1_200_000);

afterAll(async () => {
  await removeLocal(local, stateDir, dataHome);
});

describe("local mode: the seed's HomelabCluster from kubectl apply -f examples/", () => {
  it("converges on the simulators through the seam; Nodes NotReady until a CNI runs, then Ready", async () => {
    local = await startLocal(dataHome);
    const { kube, run } = await managementCluster(local);
    // The README's steps (the second apply creates the AppVending once alice's namespace exists).
    await applySeedExamples(kube, run);

    // Validate passes only because the machines do not answer before their VMs run (power follows the
    // VM in local mode); the example placeholders' token is put back by local mode.
    const healthy = await waitFor(
      "hc/k8s KubernetesHealthy (VMs, Talos, bootstrap, kubeconfig, Nodes registered)",
      async () => {
        const hc = await kube.getOrUndefined<Hc>(HC, { name: "k8s" });
        return condition(hc, "KubernetesHealthy")?.status === "True" ? hc : undefined;
      },
      TIMEOUT,
      1_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${local?.output().slice(-6000)}`);
    });
    for (const type of ["Validated", "ImageReady", "SecretsReady", "VMsReady", "TalosConfigured"])
      expect(condition(healthy, type)?.status, type).toBe("True");
    expect(condition(healthy, "EtcdBootstrapped")?.status).toBe("True");
    expect(condition(healthy, "Ready")?.status).toBe("True");
    expect(healthy.status?.phase).toBe("Ready");
    expect(healthy.status?.nodes?.map((n) => n.talosMode)).toEqual([
      "Configured",
      "Configured",
      "Configured",
    ]);

    // The kubeconfig the operator stored is the workload control plane's (from the Talos simulator).
    const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: "homelab-system", name: "k8s-kubeconfig" },
    );
    const kc = new KubeConfig();
    kc.loadFromString(Buffer.from(secret.data?.["value"] ?? "", "base64").toString("utf8"));
    const workload = new KubeClient(kc);
    const nodes = (await workload.list<Node>({ apiVersion: "v1", kind: "Node" })).items;
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(SEED_NAMES);
    // cni: none — NotReady until a CNI agent runs (the CNI rule in src/local/README.md).
    for (const n of nodes) {
      expect(nodeReady(n)?.status).toBe("False");
      expect(nodeReady(n)?.message).toBe(NOT_READY_MESSAGE);
      expect(n.status?.nodeInfo?.kubeletVersion).toBe("v1.34.1");
    }
    expect(healthy.status?.nodes?.every((n) => n.ready === false)).toBe(true);

    // What installing Cilium does to the rule: its agent DaemonSet, tolerating every taint as Cilium's.
    await workload.create(ciliumAgentDaemonSet());
    await waitFor(
      "every workload Node Ready",
      async () => {
        const list = (await workload.list<Node>({ apiVersion: "v1", kind: "Node" })).items;
        return list.length === 3 && list.every((n) => nodeReady(n)?.status === "True") ? true : undefined;
      },
      TIMEOUT,
      1_000,
    );
    // The controller's next resync (60 s by default in npm start) reports them.
    const reported = await waitFor(
      "hc/k8s status: 3/3 Nodes ready",
      async () => {
        const hc = await kube.get<Hc>(HC, { name: "k8s" });
        return hc.status?.nodesReady === "3/3" ? hc : undefined;
      },
      TIMEOUT,
      1_000,
    );
    expect(reported.status?.nodes?.every((n) => n.ready === true)).toBe(true);
    expect(local.output()).toMatch(/HomelabCluster k8s/);
  }, 1_800_000);
});
