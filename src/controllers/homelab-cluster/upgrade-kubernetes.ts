// Phase KubernetesUpToDate: the Kubernetes upgrade `talosctl upgrade-k8s` runs from the client
// (pkg/cluster/kubernetes/talos_managed.go; ../shared/research/cluster-lifecycle.md §3.4), one step per
// pass: on each control plane in spec order the API server, then the controller manager, then the
// scheduler get the new image in the node's machine config (ApplyConfiguration NO_REBOOT), and each
// static pod is waited for (its mirror pod in kube-system running the new image) before the next; only
// then the kubelet of every node, waited for as its Node reporting the new version. Before the first
// patch, every new image is pulled on every node (upgrade-prepull.ts). Every decision is
// read live (mirror pods, Nodes), so a restart resumes at the first component not on the target, and a
// repeated apply of the same config changes nothing (no fence: it is not a once-only call).
import type { KubeObject } from "../../runtime/index.ts";
import { generateNodeConfig, renderDocuments } from "../../talos/config/machine-config.ts";
import { parseVersion } from "../../talos/config/version.ts";
import { parseDuration } from "../workload-migration/duration.ts";
import { describeSick, unhealthyEtcd } from "./etcd-members.ts";
import { controlPlanes } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import type { Scope } from "./scope.ts";
import { adminClient, talosInput, withClient } from "./talos.ts";
import { syncBootstrapManifests } from "./upgrade-manifests.ts";
import { upgradeOrder } from "./upgrade-plan.ts";
import { imagesToPull, prePull } from "./upgrade-prepull.ts";
import { currentUpgrade, setUpgradePart } from "./upgrade-status.ts";

/** The control-plane static pods in the order they are upgraded, with their image repositories. */
export const CONTROL_PLANE_COMPONENTS = [
  { name: "kube-apiserver", repository: "registry.k8s.io/kube-apiserver" },
  { name: "kube-controller-manager", repository: "registry.k8s.io/kube-controller-manager" },
  { name: "kube-scheduler", repository: "registry.k8s.io/kube-scheduler" },
] as const;
const KUBELET_REPOSITORY = "ghcr.io/siderolabs/kubelet";
const KUBE_PROXY_REPOSITORY = "registry.k8s.io/kube-proxy";
/** status.upgrade.kubernetes.step while the bootstrap manifests are synced and kube-proxy rolls out. */
const MANIFESTS_STEP = "bootstrap-manifests";
/** Kubelets may be up to three minors older than the API server (Kubernetes version skew policy). */
const KUBELET_MAX_SKEW = 3;

type Component = (typeof CONTROL_PLANE_COMPONENTS)[number]["name"];
type Versions = Partial<Record<Component | "kubelet", string>>;
type SpecNode = Scope["spec"]["nodes"][number];
type Pod = KubeObject & {
  spec?: { nodeName?: string; containers?: { image?: string }[] };
  status?: { phase?: string };
};
type Node = KubeObject & {
  status?: { conditions?: { type: string; status: string }[]; nodeInfo?: { kubeletVersion?: string } };
};

const tagOf = (image: string | undefined) => /:(v[^:@/]+)$/.exec(image ?? "")?.[1];

// biome-ignore lint/suspicious/noExplicitAny: machine-config documents are walked as YAML maps
type Doc = Record<string, any>;

/** The node's config as generated from the spec, with each Kubernetes image at the given version. */
export function configWithVersions(scope: Scope, node: SpecNode, versions: Versions): string {
  if (!scope.secrets) throw new Error("secrets not loaded (the Secrets phase runs first)");
  const { documents } = generateNodeConfig(talosInput(scope.spec), scope.secrets, node.name);
  const docs = documents as Doc[];
  const v1 = docs.find((d) => d.version === "v1alpha1" && d.kind === undefined);
  if (versions.kubelet && v1?.machine?.kubelet)
    v1.machine.kubelet.image = `${KUBELET_REPOSITORY}:${versions.kubelet}`;
  // kube-proxy's image rides with the control plane's kubelet patch: Talos renders the kube-proxy
  // manifest from it, and the manifests are applied only after every kubelet is on the target.
  if (versions.kubelet && node.role === "controlplane" && v1?.cluster?.proxy?.image)
    v1.cluster.proxy.image = `${KUBE_PROXY_REPOSITORY}:${versions.kubelet}`;
  for (const c of CONTROL_PLANE_COMPONENTS) {
    const version = versions[c.name];
    if (!version || node.role !== "controlplane") continue;
    const image = `${c.repository}:${version}`;
    if (c.name === "kube-apiserver") {
      const doc = docs.find((d) => d.kind === "KubeAPIServerConfig");
      if (doc) doc.image = image;
      else if (v1?.cluster?.apiServer) v1.cluster.apiServer.image = image;
    } else if (c.name === "kube-controller-manager" && v1?.cluster?.controllerManager)
      v1.cluster.controllerManager.image = image;
    else if (c.name === "kube-scheduler" && v1?.cluster?.scheduler) v1.cluster.scheduler.image = image;
  }
  return renderDocuments(docs);
}

export interface Live {
  /** Per control plane: each component's mirror pod (version, running). */
  staticPods: Map<string, Map<Component, { version: string | undefined; running: boolean }>>;
  nodes: Map<string, { kubelet: string | undefined; ready: boolean }>;
  readinessMatters: boolean;
}

async function readLive(scope: Scope): Promise<Live> {
  const client = scope.workload(scope.kubeconfig ?? "");
  const pods = await client.list<Pod>({ apiVersion: "v1", kind: "Pod" }, { namespace: "kube-system" });
  const staticPods: Live["staticPods"] = new Map();
  for (const cp of controlPlanes(scope.spec)) {
    const byComponent = new Map<Component, { version: string | undefined; running: boolean }>();
    for (const c of CONTROL_PLANE_COMPONENTS) {
      const pod = pods.items.find(
        (p) =>
          p.metadata?.name === `${c.name}-${cp.name}` &&
          p.spec?.nodeName === cp.name &&
          p.metadata?.annotations?.["kubernetes.io/config.mirror"] !== undefined,
      );
      if (pod)
        byComponent.set(c.name, {
          version: tagOf(pod.spec?.containers?.[0]?.image),
          running: pod.status?.phase === "Running" && !pod.metadata?.deletionTimestamp,
        });
    }
    staticPods.set(cp.name, byComponent);
  }
  const list = await client.list<Node>({ apiVersion: "v1", kind: "Node" });
  const nodes: Live["nodes"] = new Map();
  for (const n of list.items)
    nodes.set(n.metadata?.name ?? "", {
      kubelet: n.status?.nodeInfo?.kubeletVersion,
      ready: n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    });
  return { staticPods, nodes, readinessMatters: [...nodes.values()].some((n) => n.ready) };
}

/** Whether any static pod or kubelet already runs `target` (the rollout has begun). */
export function anyOnTarget(live: Live, target: string): boolean {
  for (const comps of live.staticPods.values())
    for (const c of comps.values()) if (c.version === target) return true;
  for (const n of live.nodes.values()) if (n.kubelet === target) return true;
  return false;
}

function minor(v: string) {
  return parseVersion(v);
}

/** Refuses what the version skew policy forbids: a downgrade, more than one minor, kubelets too old. */
export function skewProblem(
  target: string,
  live: Live,
  spec: Scope["spec"],
): { reason: string; message: string } | undefined {
  const t = minor(target);
  for (const [node, comps] of live.staticPods)
    for (const [name, c] of comps) {
      if (!c.version) continue;
      const v = minor(c.version);
      const newer =
        v.major > t.major ||
        (v.major === t.major && (v.minor > t.minor || (v.minor === t.minor && v.patch > t.patch)));
      if (newer)
        return {
          reason: "KubernetesDowngradeRefused",
          message: `${name} on ${node} runs ${c.version}, newer than kubernetes.version ${target}; Kubernetes does not support downgrades`,
        };
      if (v.major !== t.major || t.minor > v.minor + 1)
        return {
          reason: "KubernetesSkewRefused",
          message: `${name} on ${node} runs ${c.version}: Kubernetes upgrades one minor version at a time, ${target} is further`,
        };
    }
  for (const n of spec.nodes) {
    const kubelet = live.nodes.get(n.name)?.kubelet;
    if (kubelet && minor(kubelet).minor + KUBELET_MAX_SKEW < t.minor)
      return {
        reason: "KubernetesSkewRefused",
        message: `the kubelet of ${n.name} runs ${kubelet}, more than ${KUBELET_MAX_SKEW} minors older than ${target}: upgrade it first`,
      };
  }
  return undefined;
}

export async function upgradeKubernetes(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const target = spec.kubernetes.version;
  const poll = scope.opts.timings.pollMs;
  const live = await readLive(scope);
  const problem = skewProblem(target, live, spec);
  if (problem) return blocked(problem.reason, problem.message, scope.opts.timings.blockedMs);

  // The next step: the first control-plane component not on the target, else the first kubelet.
  let step: { node: SpecNode; component: Component | "kubelet"; current: string | undefined } | undefined;
  for (const cp of controlPlanes(spec)) {
    const comps = live.staticPods.get(cp.name)!;
    for (const c of CONTROL_PLANE_COMPONENTS) {
      const pod = comps.get(c.name);
      if (!pod)
        return waiting("StaticPodMissing", `no mirror pod ${c.name}-${cp.name} in kube-system yet`, poll);
      if (pod.version !== target || !pod.running) {
        step = { node: cp, component: c.name, current: pod.version };
        break;
      }
    }
    if (step) break;
  }
  if (!step)
    for (const n of upgradeOrder(spec.nodes)) {
      const node = live.nodes.get(n.name);
      if (node?.kubelet !== target || (live.readinessMatters && !node.ready)) {
        step = { node: n, component: "kubelet", current: node?.kubelet };
        break;
      }
    }
  if (!step) {
    // Every kubelet is on the target: last, Talos' bootstrap manifests (kube-proxy at the new version).
    // Re-applied every pass (a no-op for SSA when nothing differs), so a hand edit is put back.
    const ready = new Set(
      [...live.nodes].filter(([, n]) => n.ready || !live.readinessMatters).map(([k]) => k),
    );
    const synced = await syncBootstrapManifests(scope, ready);
    if (synced.kind !== "synced") {
      const since = currentUpgrade(scope)?.kubernetes;
      const startedTime =
        since?.step === MANIFESTS_STEP && since.target === target
          ? since.startedTime
          : new Date().toISOString();
      setUpgradePart(scope, "kubernetes", { target, step: MANIFESTS_STEP, startedTime });
      if (Date.now() - Date.parse(startedTime) > parseDuration(spec.upgrade.healthTimeout))
        return blocked(
          "UpgradeStalled",
          `${MANIFESTS_STEP}: ${synced.message} for longer than ${spec.upgrade.healthTimeout}`,
          poll,
        );
      return waiting("SyncingBootstrapManifests", `${MANIFESTS_STEP}: ${synced.message}`, poll);
    }
    setUpgradePart(scope, "kubernetes", undefined);
    return done(
      "UpToDate",
      `control plane and ${spec.nodes.length} kubelet(s) on Kubernetes ${target}; ${synced.objects} bootstrap manifest object(s) applied (${synced.changed} changed)`,
    );
  }

  // Workers' kubelets go up to upgrade.maxUnavailable at once: the ones after the step's node in its
  // batch get their config now too (each pass re-applies what has not reached the target yet, as the
  // step's node is re-applied; applying the same config twice changes nothing). Control planes stay
  // one at a time. The kubelet step comes only after every control-plane component is on the target,
  // so the pre-pull below has happened already.
  let companions = "";
  if (step.component === "kubelet" && !spec.upgrade.paused) {
    const batch = workerKubeletBatch(upgradeOrder(spec.nodes), live, target, spec.upgrade.maxUnavailable);
    const others = batch.filter(
      (n) => n.name !== step.node.name && live.nodes.get(n.name)?.kubelet !== target,
    );
    for (const n of others) await applyVersions(scope, n, { kubelet: target });
    if (others.length) companions = `; with it: ${others.map((n) => n.name).join(", ")}`;
  }

  const id = `${step.node.name}/${step.component}`;
  const previous = currentUpgrade(scope)?.kubernetes;
  const since =
    previous?.step === id && previous.target === target ? previous.startedTime : new Date().toISOString();
  setUpgradePart(scope, "kubernetes", { target, step: id, startedTime: since });
  const waitingFor = (what: string): Outcome => {
    if (Date.now() - Date.parse(since) > parseDuration(spec.upgrade.healthTimeout))
      return blocked("UpgradeStalled", `${id}: ${what} for longer than ${spec.upgrade.healthTimeout}`, poll);
    return waiting("UpgradingKubernetes", `${id}: ${what}`, poll);
  };

  // Applied already (the image is on target): the kubelet restarts the pod or itself; wait for it.
  if (step.current === target)
    return waitingFor(
      `${step.component === "kubelet" ? "Node" : "static pod"} not running yet on ${target}${companions}`,
    );
  if (spec.upgrade.paused)
    return waiting(
      "UpgradePaused",
      `upgrade.paused is set; next: ${id} to ${target}`,
      scope.opts.timings.blockedMs,
    );

  // Review L2: a control plane is patched only while every etcd member is healthy and the control
  // plane patched before it is Ready again (its static pods restarted may have taken its API down).
  if (step.node.role === "controlplane") {
    const gate = await controlPlaneGate(scope, live, step.node);
    if (gate) return blocked(gate.reason, `${id} held: ${gate.message}`, poll);
  }

  // Nothing on the target anywhere yet: this would be the rollout's first patch. Pre-pull every new
  // image on every node first, as talosctl does; a failed pull patches nothing. Decided from the live
  // versions, so a pass after a crash between the pulls and the patch pulls again (a no-op for
  // containerd) instead of trusting memory.
  let prePulled = "";
  if (!anyOnTarget(live, target)) {
    const repositories = {
      controlPlane: CONTROL_PLANE_COMPONENTS.map((c) => c.repository),
      kubelet: KUBELET_REPOSITORY,
    };
    const result = await prePull(
      scope,
      upgradeOrder(spec.nodes).map((n) => ({
        name: n.name,
        ip: n.ip,
        images: imagesToPull(n.role === "controlplane" ? "controlplane" : "worker", target, repositories),
      })),
    );
    if (!result.ok)
      return blocked(
        "ImagePullFailed",
        `pre-pulling ${result.image} on ${result.node} failed (no node patched yet): ${result.message}`,
        scope.opts.timings.blockedMs,
      );
    prePulled = `; ${result.pulled} image(s) pre-pulled`;
    if (result.skipped.length)
      prePulled += `, not on ${result.skipped.join(", ")} (no image pull API: skipped, as talosctl does)`;
  }

  // The versions the node runs now, with this step's component and every earlier one on the target
  // (the kubelet step comes after all of them), the later ones as they are.
  const comps = live.staticPods.get(step.node.name);
  const stepIndex =
    step.component === "kubelet"
      ? CONTROL_PLANE_COMPONENTS.length
      : CONTROL_PLANE_COMPONENTS.findIndex((c) => c.name === step.component);
  const versions: Versions = {
    kubelet: step.component === "kubelet" ? target : live.nodes.get(step.node.name)?.kubelet,
  };
  CONTROL_PLANE_COMPONENTS.forEach((c, i) => {
    versions[c.name] = i <= stepIndex ? target : comps?.get(c.name)?.version;
  });
  await applyVersions(scope, step.node, versions);
  return waiting(
    "UpgradingKubernetes",
    `${id}: ${step.current ?? "?"} → ${target} applied (no reboot)${prePulled}${companions}`,
    poll,
  );
}

/** Why a control plane may not be patched now (undefined: it may), from live etcd and Node reads. */
async function controlPlaneGate(
  scope: Scope,
  live: Live,
  node: SpecNode,
): Promise<{ reason: string; message: string } | undefined> {
  const cps = controlPlanes(scope.spec);
  const sick = await unhealthyEtcd(scope, cps);
  if (sick.size) return { reason: "EtcdUnhealthy", message: `etcd not healthy on ${describeSick(sick)}` };
  const index = cps.findIndex((cp) => cp.name === node.name);
  const previous = index > 0 ? cps[index - 1] : undefined;
  if (previous && live.readinessMatters && !live.nodes.get(previous.name)?.ready)
    return { reason: "PreviousNodeNotReady", message: `${previous.name}, patched before, is not Ready` };
  return undefined;
}

async function applyVersions(scope: Scope, node: SpecNode, versions: Versions) {
  const yaml = configWithVersions(scope, node, versions);
  await withClient(adminClient(scope, node.ip), (c) => c.applyConfiguration(yaml, { mode: "NO_REBOOT" }));
}

/**
 * The workers whose kubelet may be upgraded now: once every control plane's kubelet is done (control
 * planes go one at a time), the first `maxUnavailable` workers in order that are not on the target
 * and Ready yet. A worker stays in the batch until it is, so the batch never holds more than that.
 */
export function workerKubeletBatch(
  order: readonly SpecNode[],
  live: Pick<Live, "nodes" | "readinessMatters">,
  target: string,
  maxUnavailable: number,
): SpecNode[] {
  const pending = order.filter((n) => {
    const node = live.nodes.get(n.name);
    return node?.kubelet !== target || (live.readinessMatters && !node.ready);
  });
  if (pending.some((n) => n.role === "controlplane")) return [];
  return pending.slice(0, Math.max(1, maxUnavailable));
}
