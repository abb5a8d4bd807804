// Local mode's workload cluster: the Kubernetes that the simulated Talos machines "run". A second
// control plane (etcd, kube-apiserver, kube-controller-manager with its default controllers,
// kube-scheduler) plus KWOK, which plays every Node's kubelet: Nodes registered here become NotReady
// and then Ready once a CNI runs on them (kwok-stages.ts, cni-readiness.ts), and pods bound to Ready
// nodes run; what the platform charts' containers would do to the API at start is played for their
// running pods (container-stand-ins.ts). State lives in `dir`, so a restart resumes the same cluster.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAlreadyExists, KubeClient, type KubeObject } from "../runtime/index.ts";
import { watchCniReadiness } from "./cni-readiness.ts";
import { watchContainerStandIns } from "./container-stand-ins.ts";
import { ensureKwokBinary } from "./control-plane/binaries.ts";
import { type ControlPlane, startControlPlane } from "./control-plane/control-plane.ts";
import { startProcess, waitUntilReady } from "./control-plane/managed-process.ts";
import { freePort } from "./control-plane/ports.ts";
import { kwokConfigYaml, NOT_READY, PRESSURE_CONDITIONS } from "./kwok-stages.ts";

export interface NodeRegistration {
  /** The Node's name: the machine's hostname, as the kubelet uses it. */
  name: string;
  /** InternalIP. */
  address: string;
  roles: readonly ("control-plane" | "worker")[];
  /** e.g. v1.34.0 (from the machine config's kubelet image). */
  kubeletVersion: string;
  /** Taints the kubelet registers with (Talos: control planes get NoSchedule unless allowed). */
  taints?: { key: string; value?: string; effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute" }[];
  /** What Talos reports as the node's OS image. */
  osImage?: string;
  /** Static pods the kubelet runs from its machine config: published as mirror pods in kube-system. */
  staticPods?: readonly { name: string; image: string }[];
}

export interface WorkloadCluster {
  controlPlane: ControlPlane;
  /** The admin kubeconfig (YAML), what Talos' Kubeconfig call hands out. */
  kubeconfig(): Promise<string>;
  client(): KubeClient;
  registerNode(node: NodeRegistration): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkloadClusterOptions {
  /** Kept folder (control plane data and kwok's config). */
  dir: string;
  /** Addresses the cluster's API is known by besides loopback (the seed's control-plane IPs). */
  apiAddresses?: string[];
  onError?: (err: unknown) => void;
  /** How long the control plane may take to come up (default: the control plane's own, 60 s). */
  startTimeoutMs?: number;
}

export async function startWorkloadCluster(options: WorkloadClusterOptions): Promise<WorkloadCluster> {
  const kwokBinary = await ensureKwokBinary();
  const controlPlane = await startControlPlane({
    name: "workload",
    dir: options.dir,
    // Everything kube-controller-manager runs by default: the node lifecycle controller (not-ready
    // taints), DaemonSets, Deployments and ReplicaSets, garbage collection, and so on.
    controllers: ["*"],
    scheduler: true,
    servingNames: { ipAddresses: options.apiAddresses ?? [] },
    handleSignals: false,
    ...(options.startTimeoutMs ? { startTimeoutMs: options.startTimeoutMs } : {}),
  });
  let cni: { stop(): Promise<void> } | undefined;
  let containers: { stop(): Promise<void> } | undefined;
  try {
    const configFile = join(options.dir, "kwok.yaml");
    await writeFile(configFile, kwokConfigYaml());
    const kwokPort = await freePort();
    const kwok = startProcess(
      "kwok",
      kwokBinary.binary,
      [
        `--kubeconfig=${controlPlane.kubeconfigPath}`,
        // Our node Stages, and kwok's own pod Stages (scheduled pods run, complete, are deleted).
        `--config=${configFile}`,
        ...kwokBinary.podStages.map((f) => `--config=${f}`),
        "--manage-all-nodes=true",
        // Pod IPs come from this range (the seed's Cilium pod CIDR is Talos' default 10.244.0.0/16).
        "--cidr=10.244.0.0/16",
        `--server-address=127.0.0.1:${kwokPort}`,
        "--node-port=0",
      ],
      join(options.dir, "kwok.log"),
    );
    await controlPlane.adopt(kwok);
    await waitUntilReady(
      kwok,
      async () =>
        (await fetch(`http://127.0.0.1:${kwokPort}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok,
      60_000,
    );
    const client = new KubeClient(controlPlane.kubeConfig());
    cni = watchCniReadiness(client, options.onError ?? (() => {}));
    containers = watchContainerStandIns(client, options.onError ?? (() => {}));
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
  const client = () => new KubeClient(controlPlane.kubeConfig());
  return {
    controlPlane,
    kubeconfig: () => readFile(controlPlane.kubeconfigPath, "utf8"),
    client,
    registerNode: (node) => registerNode(client(), node),
    async stop() {
      await containers?.stop();
      await cni?.stop();
      await controlPlane.stop();
    },
  };
}

/**
 * Registers a Node as the kubelet does at start: create it with the well-known labels, its addresses
 * and nodeInfo, or, when it exists (a reboot), update what the kubelet owns and leave the rest.
 */
export async function registerNode(client: KubeClient, node: NodeRegistration): Promise<void> {
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": node.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
  };
  for (const role of node.roles) labels[`node-role.kubernetes.io/${role}`] = "";
  const status = {
    addresses: [
      { type: "InternalIP", address: node.address },
      { type: "Hostname", address: node.name },
    ],
    capacity: { cpu: "4", memory: "16Gi", pods: "110", "ephemeral-storage": "100Gi" },
    allocatable: { cpu: "4", memory: "15Gi", pods: "110", "ephemeral-storage": "95Gi" },
    nodeInfo: {
      kubeletVersion: node.kubeletVersion,
      kubeProxyVersion: "",
      containerRuntimeVersion: "containerd://2.1.4",
      operatingSystem: "linux",
      architecture: "amd64",
      osImage: node.osImage ?? "Talos",
      kernelVersion: "",
      machineID: "",
      systemUUID: "",
      bootID: "",
    },
  };
  const gvk = { apiVersion: "v1", kind: "Node" };
  const existing = await client.getOrUndefined<KubeObject>(gvk, { name: node.name });
  if (!existing) {
    // The kubelet fills in its whole status before registering (initialNode ends in setNodeStatus), the
    // conditions included. A Node without a Ready condition makes the node lifecycle controller take off
    // the not-ready:NoSchedule taint that admission (TaintNodesByCondition) put on at create, judged from
    // its cache; that removal can land after KWOK's first Ready=False, leaving a NotReady Node without the
    // taint until the controller sees its mistake - long enough for kube-scheduler to bind a pod there.
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const conditions = [{ type: "Ready", ...NOT_READY }, ...PRESSURE_CONDITIONS].map((c) => ({
      ...c,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    }));
    try {
      // One request with the status, as the kubelet registers: KWOK never sees a Node without nodeInfo.
      await client.create<KubeObject>({
        ...gvk,
        metadata: {
          name: node.name,
          labels,
          annotations: {
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
          },
        },
        spec: { ...(node.taints?.length ? { taints: node.taints } : {}) },
        status: { ...status, conditions },
      });
      await syncMirrorPods(client, node);
      return;
    } catch (err) {
      // Another registration of the same kubelet got there first: update it as below.
      if (!isAlreadyExists(err)) throw err;
    }
  }
  // A kubelet that starts again finds its Node: it updates its labels and what it reports about itself.
  await client.patch(gvk, { name: node.name }, { metadata: { labels } }, "merge");
  await client.patchStatus(gvk, { name: node.name }, status);
  await syncMirrorPods(client, node);
}

const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";

/**
 * The kubelet's mirror pods for its static pods: `<name>-<node>` in kube-system, annotated as mirrors,
 * owned by the Node. A static pod whose manifest changed is a new pod to the kubelet, so its mirror is
 * deleted and created again (with the new image); one no longer in the config goes.
 */
export async function syncMirrorPods(client: KubeClient, node: NodeRegistration): Promise<void> {
  const pods = node.staticPods ?? [];
  const POD = { apiVersion: "v1", kind: "Pod" };
  const owner = await client.get<KubeObject>({ apiVersion: "v1", kind: "Node" }, { name: node.name });
  const existing = await client.list<KubeObject & { spec?: { containers?: { image?: string }[] } }>(POD, {
    namespace: "kube-system",
    fieldSelector: `spec.nodeName=${node.name}`,
  });
  const mirrors = existing.items.filter((p) => p.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined);
  for (const m of mirrors) {
    const want = pods.find((p) => `${p.name}-${node.name}` === m.metadata?.name);
    if (want && m.spec?.containers?.[0]?.image === want.image && !m.metadata?.deletionTimestamp) continue;
    const key = { namespace: "kube-system", name: m.metadata?.name ?? "" };
    await client.delete(POD, key, { ignoreNotFound: true });
    // KWOK finishes the deletion; the new mirror takes the same name, so wait for the old one to go.
    for (let i = 0; i < 100 && (await client.getOrUndefined(POD, key)); i++)
      await new Promise((r) => setTimeout(r, 100));
  }
  for (const p of pods) {
    const name = `${p.name}-${node.name}`;
    const current = mirrors.find((m) => m.metadata?.name === name);
    if (current && current.spec?.containers?.[0]?.image === p.image && !current.metadata?.deletionTimestamp)
      continue;
    try {
      await client.create<KubeObject>({
        ...POD,
        metadata: {
          name,
          namespace: "kube-system",
          labels: { component: p.name, tier: "control-plane" },
          annotations: { [MIRROR_ANNOTATION]: p.image, "kubernetes.io/config.source": "file" },
          ownerReferences: [
            {
              apiVersion: "v1",
              kind: "Node",
              name: node.name,
              uid: owner.metadata?.uid ?? "",
              controller: true,
            },
          ],
        },
        spec: {
          nodeName: node.name,
          hostNetwork: true,
          priorityClassName: "system-node-critical",
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: p.name, image: p.image }],
        },
      });
    } catch (err) {
      // Another registration of the same kubelet made it meanwhile.
      if (!isAlreadyExists(err)) throw err;
    }
  }
}
