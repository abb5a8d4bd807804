// Phase 7: the admin kubeconfig in `<cluster>-kubeconfig` (key `value`, Cluster API's convention), then
// the cluster's health: one etcd member per control plane, the API answering, every node registered.
import { createHash } from "node:crypto";
import { KubeClient, type KubeObject, parseKubeconfig } from "../../runtime/index.ts";
import { DRAIN_ANNOTATION } from "./drain.ts";
import { removedMemberMessage } from "./etcd-members.ts";
import { bootstrapNode, controlPlanes, secretNames } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, nodeStatus, type Scope } from "./scope.ts";
import { readOrCreateSecret } from "./secrets.ts";
import { adminClient, withClient } from "./talos.ts";
import { healthCheckNode } from "./upgrade-talos.ts";

export async function ensureKubeconfig(scope: Scope): Promise<Outcome> {
  const name = secretNames(scope.name).kubeconfig;
  const first = bootstrapNode(scope.spec);
  const { data, created } = await readOrCreateSecret(scope, name, async () => ({
    value: await withClient(adminClient(scope, first.ip), (c) => c.kubeconfig()),
  }));
  scope.kubeconfig = data["value"];
  scope.status.secretRefs = {
    ...(scope.status.secretRefs ?? scope.previous.secretRefs ?? {}),
    kubeconfig: { name, namespace: scope.opts.namespace },
  };
  if (created)
    milestone(scope, "KubeconfigStored", "Store", `admin kubeconfig in ${scope.opts.namespace}/${name}`);
  return done("KubeconfigStored", `${scope.opts.namespace}/${name} (key value)`);
}

/**
 * One client per workload kubeconfig, reused across reconciles (a new one only when the Secret changes).
 * MERGE NOTE: h-cache's ClusterCache (per-cluster client + informers) is meant to replace this.
 */
export class WorkloadClients {
  private readonly clients = new Map<string, { hash: string; client: KubeClient }>();

  get(cluster: string, kubeconfig: string): KubeClient {
    const hash = createHash("sha256").update(kubeconfig).digest("hex");
    const cached = this.clients.get(cluster);
    if (cached?.hash === hash) return cached.client;
    const client = new KubeClient(parseKubeconfig(kubeconfig), { requestTimeoutMs: 10_000 });
    this.clients.set(cluster, { hash, client });
    return client;
  }

  forget(cluster: string): void {
    this.clients.delete(cluster);
  }
}

type Node = KubeObject & {
  status?: { conditions?: { type: string; status: string }[]; nodeInfo?: { kubeletVersion?: string } };
};

export async function checkHealth(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const cps = controlPlanes(spec);
  // Never through a node that is being upgraded: it is about to go down.
  const members = await withClient(adminClient(scope, healthCheckNode(scope).ip), (c) => c.etcdMemberList());
  const missingMembers: string[] = [];
  for (const cp of cps) {
    const m = members.find((x) => x.hostname === cp.name);
    if (m) nodeStatus(scope, cp.name).etcdMemberID = BigInt(m.id).toString(16);
    else missingMembers.push(cp.name);
  }

  const client = scope.workload(scope.kubeconfig ?? "");
  const version = await client.request<{ gitVersion?: string }>("GET", "/version");
  const list = await client.list<Node>({ apiVersion: "v1", kind: "Node" });
  const byName = new Map(list.items.map((n) => [n.metadata?.name ?? "", n]));
  const unregistered: string[] = [];
  let ready = 0;
  for (const node of spec.nodes) {
    const status = nodeStatus(scope, node.name);
    const k8sNode = byName.get(node.name);
    if (!k8sNode) {
      unregistered.push(node.name);
      status.ready = false;
      status.message = "not registered as a Kubernetes Node yet";
      continue;
    }
    status.kubeletVersion = k8sNode.status?.nodeInfo?.kubeletVersion;
    status.ready =
      k8sNode.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    if (status.ready) {
      ready++;
      delete status.message;
    } else status.message = "Node NotReady (Talos with cni: none stays NotReady until a CNI is installed)";
  }
  scope.status.nodesReady = `${ready}/${spec.nodes.length}`;

  // A member removed by a scale-down that was then cancelled (the node put back into spec.nodes) never
  // comes back on its own: etcd refuses a removed member for good. Said plainly; nothing is wiped for
  // it (that is the owner's decision).
  const removed: string[] = [];
  const marked: string[] = [];
  for (const name of missingMembers) {
    const said = await removedMemberMessage(scope, cps.find((n) => n.name === name)!);
    if (said) removed.push(`${name} (its etcd: ${said})`);
    else if (byName.get(name)?.metadata?.annotations?.[DRAIN_ANNOTATION]) marked.push(name);
  }
  if (removed.length)
    return blocked(
      "EtcdMemberRemoved",
      `etcd has ${members.length}/${cps.length} members; removed, and refused with the data it has: ${removed.join("; ")}. Such a node rejoins only from a wiped disk: reset it (talosctl reset) or delete its VM, which the operator creates again from the image, and it joins as a new member`,
      scope.opts.timings.blockedMs,
    );
  if (missingMembers.length)
    return waiting(
      "EtcdMembersMissing",
      `etcd has ${members.length}/${cps.length} members; missing: ${missingMembers.join(", ")}${marked.length ? ` (${marked.join(", ")} cordoned by a scale-down that was cancelled: if its member was removed, it rejoins only from a wiped disk)` : ""}`,
      scope.opts.timings.pollMs,
    );
  if (unregistered.length)
    return waiting(
      "NodesNotRegistered",
      `Kubernetes API ${version.gitVersion ?? ""} answers; not registered yet: ${unregistered.join(", ")}`,
      scope.opts.timings.pollMs,
    );
  return done(
    "KubernetesHealthy",
    `etcd ${members.length}/${cps.length} members, Kubernetes API ${version.gitVersion ?? ""} answers, ${spec.nodes.length}/${spec.nodes.length} Nodes registered, ${ready} Ready`,
  );
}
