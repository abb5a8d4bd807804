// COSI State.List of Manifests.kubernetes.talos.dev end to end over gRPC: the simulator renders them
// from the applied config and encodes them as Talos' proto_spec; the client decodes them back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosApiError } from "../client/errors.ts";
import { TalosClient } from "../client/talos-client.ts";
import { exampleClusterInput } from "../config/example-input.ts";
import { generateClusterConfigs } from "../config/machine-config.ts";
import { ensureSecretsBundle } from "../config/secrets.ts";
import { generateAdminTalosconfig, type Talosconfig } from "../config/talosconfig.ts";
import { CONTROL_PLANE_NAMESPACE, decodeManifestSpec, encodeManifestSpec } from "../cosi.ts";
import { startTalosSimulator, type TalosSimulator } from "./simulator.ts";

const NODES = [
  { name: "m1", ip: "127.0.33.1" },
  { name: "m2", ip: "127.0.33.2" },
  { name: "m3", ip: "127.0.33.3" },
];
let sim: TalosSimulator;
let talosconfig: Talosconfig;
const clients: TalosClient[] = [];

function admin(name: string): TalosClient {
  const c = TalosClient.fromTalosconfig(talosconfig, { endpoint: sim.endpoint(name), timeoutMs: 5_000 });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const secrets = ensureSecretsBundle();
  talosconfig = generateAdminTalosconfig(secrets, { contextName: "m", endpoints: [] });
  const input = {
    ...exampleClusterInput,
    ciliumCNI: false, // kube-proxy on: Cilium would replace it
    endpoint: "https://127.0.33.1:6443",
    nodes: [
      { name: "m1", ip: "127.0.33.1", role: "controlplane" as const },
      { name: "m2", ip: "127.0.33.2", role: "worker" as const },
    ],
  };
  sim = await startTalosSimulator({ nodes: NODES, rebootDelayMs: 50 });
  for (const c of generateClusterConfigs(input, secrets)) {
    await TalosClient.maintenance(sim.endpoint(c.node)).applyConfiguration(c.yaml);
    await sim.waitForReboot(c.node, 0);
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  await sim?.stop();
});

describe("ManifestSpec encoding", () => {
  it("round-trips nested objects, lists, numbers, booleans and nulls through google.protobuf.Struct", () => {
    const objects = [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", labels: { x: "1" } }, data: { k: "v" } },
      { a: [1, "two", true, null, { b: [] }], n: 2.5 },
    ];
    const bytes = encodeManifestSpec(objects);
    expect(bytes.length).toBeGreaterThan(0);
    expect(decodeManifestSpec(bytes)).toEqual(objects);
  });
});

describe("COSI Manifests on the simulator", () => {
  it("serves the control plane's bootstrap manifests with kube-proxy at the config's Kubernetes version", async () => {
    const manifests = await admin("m1").bootstrapManifests();
    expect(manifests.map((m) => m.id)).toEqual(["01-csr-node-bootstrap", "10-kube-proxy"]);
    const ds = manifests[1]?.objects.find((o) => o.kind === "DaemonSet") as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(ds.spec.template.spec.containers[0]?.image).toBe(
      `registry.k8s.io/kube-proxy:${exampleClusterInput.kubernetesVersion}`,
    );
  });

  it("a worker has none; an unknown type is refused; maintenance mode refuses the read", async () => {
    expect(await admin("m2").bootstrapManifests()).toEqual([]);
    const unknown = await admin("m1")
      .listResources(CONTROL_PLANE_NAMESPACE, "Nope.talos.dev")
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(TalosApiError);
    const c = TalosClient.maintenance(sim.endpoint("m3"), { timeoutMs: 5_000 });
    clients.push(c);
    const refused = await c.bootstrapManifests().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TalosApiError);
    expect(String((refused as Error).message)).toMatch(/maintenance/);
  });

  it("proxied through another node's apid (the node header) it answers for that node", async () => {
    const c = TalosClient.fromTalosconfig(talosconfig, {
      endpoint: sim.endpoint("m2"),
      node: "127.0.33.1",
      timeoutMs: 5_000,
    });
    clients.push(c);
    expect((await c.bootstrapManifests()).map((m) => m.id)).toContain("10-kube-proxy");
  });
});
