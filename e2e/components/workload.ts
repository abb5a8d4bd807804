// The workload cluster of the components e2e: local mode's (src/local/workload-cluster.ts), a control
// plane with kube-scheduler and every kube-controller-manager controller, and KWOK playing the kubelet of
// each Node. Pods the charts create are scheduled and run there, Nodes turn Ready once a Cilium agent pod
// runs on them, and Deployment/DaemonSet status is written by the real controllers.
//
// What KWOK cannot do is run a container: the few things the charts' processes do to the API at start
// are played by local mode's workload cluster itself (src/local/container-stand-ins.ts), each only once
// the pod that does it runs. Readiness comes from the objects' own status.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import { startWorkloadCluster, type WorkloadCluster } from "../../src/local/workload-cluster.ts";
import type { KubeClient } from "../../src/runtime/client.ts";
import type { KubeObject } from "../../src/runtime/object.ts";

export const CRDS_DIR = fileURLToPath(new URL("./crds/", import.meta.url));

export async function helmBinary(): Promise<string> {
  const script = fileURLToPath(new URL("../../deploy/helm/build-helm.sh", import.meta.url));
  const { stdout } = await promisify(execFile)("bash", [script], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim().split("\n").slice(-1)[0] as string;
}

export async function applyCrdFile(client: KubeClient, file: string): Promise<void> {
  const crd = parse(await readFile(`${CRDS_DIR}${file}`, "utf8")) as KubeObject;
  await client.apply(crd, { force: true });
}

export interface KwokWorkload {
  cluster: WorkloadCluster;
  client: KubeClient;
  kubeconfigPath: string;
  kubeconfigYaml: string;
  nodes: string[];
  stop(): Promise<void>;
}

/** A KWOK workload cluster with `nodeCount` worker Nodes (NotReady until Cilium runs on them). */
export async function startKwokWorkload(name: string, nodeCount = 2): Promise<KwokWorkload> {
  const dir = await mkdtemp(join(tmpdir(), `homelab-${name}-`));
  let cluster: WorkloadCluster;
  try {
    // A loaded machine has taken more than the default 60 s to bring the API server up.
    cluster = await startWorkloadCluster({ dir, startTimeoutMs: 240_000 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const nodes = Array.from({ length: nodeCount }, (_, i) => `${name}-worker-${i + 1}`);
  for (const [i, node] of nodes.entries()) {
    await cluster.registerNode({
      name: node,
      address: `10.0.3.${30 + i}`,
      roles: ["worker"],
      kubeletVersion: "v1.36.3",
    });
  }
  const client = cluster.client();
  return {
    cluster,
    client,
    kubeconfigPath: cluster.controlPlane.kubeconfigPath,
    kubeconfigYaml: await cluster.kubeconfig(),
    nodes,
    async stop() {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

type Pod = KubeObject & { spec: { nodeName?: string }; status?: { phase?: string } };

/** The Ready condition of every Node, by name. */
export async function nodeReadiness(client: KubeClient): Promise<Record<string, string>> {
  const nodes = await client.list<KubeObject>({ apiVersion: "v1", kind: "Node" });
  return Object.fromEntries(
    nodes.items.map((n) => [
      n.metadata?.name as string,
      ((n.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).find(
        (c) => c.type === "Ready",
      )?.status ?? "Unknown",
    ]),
  );
}

/** Running pods of a namespace, with the Node each is bound to (what KWOK runs). */
export async function runningPods(client: KubeClient, namespace: string): Promise<Pod[]> {
  const pods = await client.list<Pod>({ apiVersion: "v1", kind: "Pod" }, { namespace });
  return pods.items.filter((p) => p.status?.phase === "Running" && p.spec.nodeName);
}
