// The seed's three-node cluster from `kubectl apply` to Ready on the Proxmox and Talos simulators, with
// the operator as its own process; then what Ready costs at steady state, and both deletion policies.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NOT_READY_MESSAGE } from "../../src/local/kwok-stages.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { type Homelab, SEED, startHomelab } from "./homelab.ts";
import {
  type Cond,
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

const run = promisify(execFile);
async function kubectl(...args: string[]): Promise<string> {
  return (await run("/usr/bin/kubectl", ["--kubeconfig", kubeconfigPath(), ...args])).stdout;
}

let homelab: Homelab;
let client: KubeClient;
let operator: OperatorProcess;

beforeAll(async () => {
  homelab = await startHomelab();
  client = await prepareCluster(adminKubeConfig(), homelab);
  operator = startOperator(homelab);
}, 600_000);

afterAll(async () => {
  if (client && operator) await removeCluster(client).catch(() => {});
  await operator?.kill();
  if (client) await removeCredentials(client);
  await homelab?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: objects as read back, walked freely by tests
type Loose = Record<string, any>;

const secret = (name: string) =>
  client.getOrUndefined<Loose & { metadata: Loose }>(
    { apiVersion: "v1", kind: "Secret" },
    { namespace: OPERATOR_NAMESPACE, name },
  );

describe("HomelabCluster k8s (the seed) on the simulators", () => {
  it("goes from apply to Ready: image once, three tagged VMs under HA, configured Talos, one bootstrap", async () => {
    await client.create(seedCluster(homelab));
    // What a user runs: kubectl wait on the Ready condition.
    await kubectl("wait", "--for=condition=Ready", "hc/k8s", "--timeout=150s").catch(async (err: unknown) => {
      const hc = await client.get<Loose>(HC, { name: "k8s" });
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify(hc.status, null, 1)}\n${operator.output().slice(-4000)}`,
      );
    });
    const ready = await waitCondition(client, "k8s", "Ready", (c) => c.status === "True", 10_000).catch(
      async (err: unknown) => {
        const hc = await client.get<Loose>(HC, { name: "k8s" });
        throw new Error(
          `${(err as Error).message}\n${JSON.stringify(hc.status, null, 1)}\n${operator.output().slice(-4000)}`,
        );
      },
    );
    expect(ready.reason).toBe("ClusterReady");
    // kubectl get hc tells the story at a glance.
    const table = await kubectl("get", "hc", "k8s");
    expect(table.split("\n")[0]).toMatch(
      /^NAME\s+READY\s+PHASE\s+ENDPOINT\s+TALOS\s+KUBERNETES\s+NODES READY\s+AGE/,
    );
    expect(table.split("\n")[1]).toMatch(
      /^k8s\s+True\s+Ready\s+https:\/\/10\.0\.3\.16:6443\s+v1\.11\.0\s+v1\.34\.1\s+0\/3\s+/,
    );

    const hc = await client.get<Loose>(HC, { name: "k8s" });
    const conditions = hc.status.conditions as Cond[];
    for (const type of [
      "Validated",
      "ImageReady",
      "SecretsReady",
      "VMsReady",
      "TalosConfigured",
      "EtcdBootstrapped",
      "KubeconfigReady",
      "KubernetesHealthy",
    ])
      expect(
        conditions.find((c) => c.type === type),
        type,
      ).toMatchObject({ status: "True", observedGeneration: 1 });
    expect(hc.status).toMatchObject({
      phase: "Ready",
      endpoint: "https://10.0.3.16:6443",
      talosVersion: "v1.11.0",
      kubernetesVersion: "v1.34.1",
      nodesReady: "0/3", // registered, NotReady until Cilium (a later phase) is installed
      image: { volumeID: `cephfs:import/talos-v1.11.0-${hc.spec.talos.schematic}-nocloud-amd64.qcow2` },
      secretRefs: {
        talosSecrets: { name: "k8s-talos-secrets", namespace: OPERATOR_NAMESPACE },
        talosconfig: { name: "k8s-talosconfig", namespace: OPERATOR_NAMESPACE },
        kubeconfig: { name: "k8s-kubeconfig", namespace: OPERATOR_NAMESPACE },
      },
    });
    for (const n of SEED) {
      const s = (hc.status.nodes as Loose[]).find((x) => x.name === n.name);
      expect(s).toMatchObject({
        vmState: "running",
        proxmoxNode: n.proxmoxNode,
        talosMode: "Configured",
        talosVersion: "v1.11.0",
        kubeletVersion: "v1.34.1",
        ready: false,
      });
      expect(s?.etcdMemberID).toMatch(/^[0-9a-f]+$/);
    }

    // Counted by the simulators themselves.
    expect(homelab.downloads()).toBe(1);
    expect(homelab.image.served()).toBe(1);
    expect(homelab.vmCreates()).toBe(3);
    expect(homelab.bootstrapCalls()).toBe(1);

    // The VMs as Proxmox holds them.
    const vms = [...homelab.proxmox.cluster.vms.values()];
    expect(vms.map((v) => v.vmid).sort()).toEqual([1030, 1031, 1032]);
    for (const n of SEED) {
      const vm = vms.find((v) => v.config["name"] === n.name)!;
      expect(vm.node).toBe(n.proxmoxNode);
      expect(vm.status).toBe("running");
      expect(vm.config).toMatchObject({
        cores: "8",
        cpu: "host",
        memory: "16384",
        balloon: "0",
        ipconfig0: `ip=${n.ip}/24,gw=10.0.3.1`,
        nameserver: "10.0.3.1",
        tags: `homelab-cluster.k8s;homelab-node.${n.name};homelab-operator`,
      });
      expect(vm.config["net0"]).toMatch(/^virtio=[0-9A-F:]+,bridge=vmbr0,tag=3$|^virtio,bridge=vmbr0,tag=3$/);
      expect(vm.config["scsi0"]).toMatch(/^ceph-vm-disks:vm-\d+-disk-\d+,.*size=100G/);
      expect(vm.config["ide2"]).toMatch(/^ceph-vm-disks:vm-\d+-cloudinit/);
    }
    const pve = homelab.proxmox;
    const ha = await fetchJson(pve, "/cluster/ha/resources");
    expect((ha as Loose[]).map((r) => [r.sid, r.state]).sort()).toEqual([
      ["vm:1030", "started"],
      ["vm:1031", "started"],
      ["vm:1032", "started"],
    ]);
    const rules = (await fetchJson(pve, "/cluster/ha/rules")) as Loose[];
    expect(rules).toEqual([
      expect.objectContaining({
        rule: "homelab-k8s-control-planes",
        type: "resource-affinity",
        affinity: "negative",
        resources: "vm:1030,vm:1031,vm:1032",
      }),
    ]);

    // Talos got configs that keep Cilium's VIP (10.0.3.19) off the nodes.
    for (const n of SEED) {
      const yaml = homelab.talos.node(n.name).configYaml ?? "";
      expect(yaml).toContain(`- ${n.ip}/24`);
      expect(yaml).not.toContain("10.0.3.19");
    }

    // Secrets: the bundle, a talosconfig naming every control plane, the kubeconfig under `value`.
    const bundle = await secret("k8s-talos-secrets");
    expect(Object.keys(bundle?.data ?? {})).toContain("certs.os.key");
    const talosconfig = Buffer.from(
      (await secret("k8s-talosconfig"))?.data?.talosconfig ?? "",
      "base64",
    ).toString();
    expect(talosconfig).toMatch(/endpoints:\n\s+- 10\.0\.3\.16\n\s+- 10\.0\.3\.17\n\s+- 10\.0\.3\.18/);
    expect(Object.keys((await secret("k8s-kubeconfig"))?.data ?? {})).toEqual(["value"]);
    // No secret material in status.
    expect(JSON.stringify(hc.status)).not.toContain(bundle?.data?.["certs.os.key"]);

    const events = await client.list<Loose>(
      { apiVersion: "events.k8s.io/v1", kind: "Event" },
      { namespace: "default" },
    );
    // Events of this object only (by uid): other suites leave events of their own "k8s" behind.
    const reasons = new Set(
      events.items.filter((e) => e.regarding?.uid === hc.metadata.uid).map((e) => e.reason),
    );
    for (const r of [
      "ImageDownloaded",
      "SecretsCreated",
      "VMCreating",
      "ConfigApplied",
      "EtcdBootstrapped",
      "KubeconfigStored",
      "ClusterReady",
    ])
      expect(reasons, r).toContain(r);
    // Waiting is progress, not a problem: the happy path records no Warning.
    // Only this object's: other suites sharing the control plane leave events of their own "k8s" behind.
    const warnings = events.items.filter((e) => e.regarding?.uid === hc.metadata.uid && e.type === "Warning");
    expect(warnings.map((e) => `${e.reason}: ${e.note}`)).toEqual([]);
  });

  it("checks node readiness in the workload control plane: NotReady with cni: none, Ready once a CNI agent runs", async () => {
    // The kubeconfig the operator stored reaches the workload control plane the Talos machines handed out.
    const kc = new KubeConfig();
    kc.loadFromString(Buffer.from((await secret("k8s-kubeconfig"))?.data?.value ?? "", "base64").toString());
    const workload = new KubeClient(kc);
    const NODE = { apiVersion: "v1", kind: "Node" };
    const readyOf = (n: Loose) =>
      (n.status?.conditions as Cond[] | undefined)?.find((c) => c.type === "Ready");
    const nodes = (await workload.list<Loose>(NODE)).items;
    expect(nodes.map((n) => n.metadata.name).sort()).toEqual(SEED.map((n) => n.name).sort());
    for (const n of nodes) {
      expect(readyOf(n)).toMatchObject({ status: "False", message: NOT_READY_MESSAGE });
      expect(n.status.addresses).toContainEqual({
        type: "InternalIP",
        address: SEED.find((s) => s.name === n.metadata.name)?.ip,
      });
    }
    // Another controller's condition on the same object (as the components controller writes its own).
    const componentsManager = "homelab-operator/components-test";
    const foreign = (conditions: Loose[]) =>
      client.applyStatus(
        { ...HC, metadata: { name: "k8s" }, status: { conditions } },
        { fieldManager: componentsManager },
      );
    await foreign([
      {
        type: "ComponentsReady",
        status: "False",
        reason: "Installing",
        message: "test",
        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      },
    ]);
    // The CNI rule of src/local/README.md, met as installing Cilium meets it: its agent DaemonSet.
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
    const hc = await waitFor(
      "hc/k8s to report 3/3 Nodes ready from the workload control plane",
      async () => {
        const o = await client.get<Loose>(HC, { name: "k8s" });
        return o.status?.nodesReady === "3/3" ? o : undefined;
      },
      240_000,
      500,
    );
    expect((hc.status.nodes as Loose[]).map((n) => n.ready)).toEqual([true, true, true]);
    for (const n of (await workload.list<Loose>(NODE)).items) expect(readyOf(n)?.status).toBe("True");
    // Our status write (0/3 → 3/3) kept the other manager's condition, and never took it over: when
    // that manager drops it, it is gone (a co-owner would keep it).
    const types = (o: Loose) => (o.status.conditions as Cond[]).map((c) => c.type);
    expect(types(hc)).toContain("ComponentsReady");
    await foreign([]);
    const after = await client.get<Loose>(HC, { name: "k8s" });
    expect(types(after)).not.toContain("ComponentsReady");
    expect(types(after)).toContain("Ready");
  }, 300_000);

  it("does nothing while paused (homelab.shdr.ch/paused), and catches up once unpaused", async () => {
    const annotate = (value: string | null) =>
      client.patch(
        HC,
        { name: "k8s" },
        { metadata: { annotations: { "homelab.shdr.ch/paused": value } } },
        "merge",
      );
    await annotate("true");
    await client.delete(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: OPERATOR_NAMESPACE, name: "k8s-kubeconfig" },
    );
    await new Promise((r) => setTimeout(r, 10_000)); // three resyncs at RESYNC_MS 3 s
    expect(await secret("k8s-kubeconfig")).toBeUndefined();
    await annotate(null);
    await waitFor(
      "the kubeconfig Secret stored again once unpaused",
      () => secret("k8s-kubeconfig"),
      60_000,
      250,
    );
  }, 120_000);

  it("costs one cluster-wide Proxmox read per resync once Ready", async () => {
    const start = homelab.proxmox.requests.length;
    await new Promise((r) => setTimeout(r, 10_000)); // RESYNC_MS is 3 s in operator-main
    const window = homelab.proxmox.requests.slice(start);
    expect(window.length).toBeGreaterThanOrEqual(2);
    expect(window.length).toBeLessThanOrEqual(5);
    expect(new Set(window.map((r) => `${r.method} ${r.path}`))).toEqual(new Set(["GET /cluster/resources"]));
  });

  it("Retain: deleting the object leaves the VMs and Secrets and says so; re-applying adopts them", async () => {
    await client.delete(HC, { name: "k8s" });
    await waitFor("k8s to be gone", async () => !(await client.getOrUndefined(HC, { name: "k8s" })), 30_000);
    expect([...homelab.proxmox.cluster.vms.values()].filter((v) => v.status === "running")).toHaveLength(3);
    expect(await secret("k8s-talos-secrets")).toBeDefined();
    const events = await client.list<Loose>(
      { apiVersion: "events.k8s.io/v1", kind: "Event" },
      { namespace: "default" },
    );
    expect(events.items.find((e) => e.reason === "VMsRetained")?.note).toMatch(
      /VMs 1030 \(talos-trinity\).*keep running/,
    );

    const before = {
      creates: homelab.vmCreates(),
      bootstraps: homelab.bootstrapCalls(),
      downloads: homelab.downloads(),
    };
    await client.create(seedCluster(homelab, (o) => (o.spec.deletionPolicy = "Delete")));
    await waitCondition(client, "k8s", "Ready", (c) => c.status === "True", 60_000);
    expect({
      creates: homelab.vmCreates(),
      bootstraps: homelab.bootstrapCalls(),
      downloads: homelab.downloads(),
    }).toEqual(before);
  });

  it("Delete: HA entries, then the VMs (stopped, purged), then the Secrets", async () => {
    await client.delete(HC, { name: "k8s" });
    await waitFor("k8s to be gone", async () => !(await client.getOrUndefined(HC, { name: "k8s" })), 60_000);
    expect(homelab.proxmox.cluster.vms.size).toBe(0);
    expect(await fetchJson(homelab.proxmox, "/cluster/ha/resources")).toEqual([]);
    expect(await fetchJson(homelab.proxmox, "/cluster/ha/rules")).toEqual([]);
    for (const s of ["k8s-talos-secrets", "k8s-talosconfig", "k8s-kubeconfig"])
      expect(await secret(s)).toBeUndefined();
  });
});

async function fetchJson(pve: Homelab["proxmox"], path: string): Promise<unknown> {
  const { ProxmoxClient } = await import("../../src/proxmox/index.ts");
  const c = new ProxmoxClient({
    url: pve.url,
    tokenId: pve.tokenId,
    tokenSecret: pve.tokenSecret,
    tls: { caPem: pve.caPem },
  });
  try {
    return await c.transport.call("GET", path, {}, (await import("zod")).z.unknown());
  } finally {
    await c.close();
  }
}
