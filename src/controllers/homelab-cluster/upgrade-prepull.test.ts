import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosClient } from "../../talos/client/talos-client.ts";
import { exampleClusterInput } from "../../talos/config/example-input.ts";
import { generateClusterConfigs } from "../../talos/config/machine-config.ts";
import { ensureSecretsBundle } from "../../talos/config/secrets.ts";
import { generateAdminTalosconfig, type Talosconfig } from "../../talos/config/talosconfig.ts";
import { startTalosSimulator, type TalosSimulator } from "../../talos/simulator/index.ts";
import { directConnections } from "./connections.ts";
import type { Scope } from "./scope.ts";
import { anyOnTarget, CONTROL_PLANE_COMPONENTS, type Live } from "./upgrade-kubernetes.ts";
import { imagesToPull, prePull } from "./upgrade-prepull.ts";

const repositories = {
  controlPlane: CONTROL_PLANE_COMPONENTS.map((c) => c.repository),
  kubelet: "ghcr.io/siderolabs/kubelet",
};

describe("imagesToPull", () => {
  it("control planes get the three component images in CRI and the kubelet in system; workers only the kubelet", () => {
    expect(imagesToPull("controlplane", "v1.35.0", repositories)).toEqual([
      { image: "registry.k8s.io/kube-apiserver:v1.35.0", namespace: "cri" },
      { image: "registry.k8s.io/kube-controller-manager:v1.35.0", namespace: "cri" },
      { image: "registry.k8s.io/kube-scheduler:v1.35.0", namespace: "cri" },
      { image: "ghcr.io/siderolabs/kubelet:v1.35.0", namespace: "system" },
    ]);
    expect(imagesToPull("worker", "v1.35.0", repositories)).toEqual([
      { image: "ghcr.io/siderolabs/kubelet:v1.35.0", namespace: "system" },
    ]);
  });
});

describe("anyOnTarget (whether the first patch has happened)", () => {
  const live = (scheduler: string, kubelet: string): Live => ({
    staticPods: new Map([
      [
        "cp1",
        new Map([
          ["kube-apiserver", { version: "v1.34.1", running: true }],
          ["kube-scheduler", { version: scheduler, running: true }],
        ] as const),
      ],
    ]),
    nodes: new Map([["w1", { kubelet, ready: true }]]),
    readinessMatters: true,
  });

  it("is false while everything runs the old version, true once one component or kubelet runs the target", () => {
    expect(anyOnTarget(live("v1.34.1", "v1.34.1"), "v1.35.0")).toBe(false);
    expect(anyOnTarget(live("v1.35.0", "v1.34.1"), "v1.35.0")).toBe(true);
    expect(anyOnTarget(live("v1.34.1", "v1.35.0"), "v1.35.0")).toBe(true);
  });
});

// Loopback addresses of our own, apart from the other suites' simulators.
const NODES = [
  { name: "pp-cp", ip: "127.0.33.1", role: "controlplane" as const },
  { name: "pp-old", ip: "127.0.33.2", role: "worker" as const, talosVersion: "v1.12.6" },
];

describe("prePull against the Talos simulator", () => {
  let sim: TalosSimulator;
  let talosconfig: Talosconfig;
  beforeAll(async () => {
    sim = await startTalosSimulator({ nodes: NODES, rebootDelayMs: 50 });
    const secrets = ensureSecretsBundle();
    talosconfig = generateAdminTalosconfig(secrets, { contextName: "pp", endpoints: [NODES[0]!.ip] });
    const input = { ...exampleClusterInput, endpoint: "https://127.0.33.1:6443", nodes: NODES };
    for (const { node, yaml } of generateClusterConfigs(input, secrets)) {
      const c = TalosClient.maintenance(sim.endpoint(node), { timeoutMs: 5_000 });
      await c.applyConfiguration(yaml, { mode: "REBOOT" }).finally(() => c.close());
    }
    for (const n of NODES) await sim.waitForMode(n.name, "running");
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const scope = () =>
    ({
      talosconfig,
      opts: {
        connections: {
          ...directConnections,
          talosEndpoint: (ip: string) => `${ip}:${sim.nodes.find((n) => n.ip === ip)!.port}`,
        },
      },
    }) as unknown as Scope;
  const targets = (version: string) =>
    NODES.map((n) => ({ name: n.name, ip: n.ip, images: imagesToPull(n.role, version, repositories) }));

  it("pulls each node's images through the API its Talos version has", async () => {
    const since = Date.now();
    expect(await prePull(scope(), targets("v1.35.0"))).toEqual({ ok: true, pulled: 5, skipped: [] });
    expect(
      sim
        .node("pp-cp")
        .pulls.filter((p) => p.at >= since)
        .map((p) => `${p.api} ${p.namespace} ${p.image}`),
    ).toEqual([
      "ImageService NS_CRI registry.k8s.io/kube-apiserver:v1.35.0",
      "ImageService NS_CRI registry.k8s.io/kube-controller-manager:v1.35.0",
      "ImageService NS_CRI registry.k8s.io/kube-scheduler:v1.35.0",
      "ImageService NS_SYSTEM ghcr.io/siderolabs/kubelet:v1.35.0",
    ]);
    expect(
      sim
        .node("pp-old")
        .pulls.filter((p) => p.at >= since)
        .map((p) => `${p.api} ${p.namespace} ${p.image}`),
    ).toEqual(["MachineService NS_SYSTEM ghcr.io/siderolabs/kubelet:v1.35.0"]);
  });

  it("stops at the first failed pull, naming node and image, and pulls nothing after it", async () => {
    const since = Date.now();
    sim.faults.missingImage("pp-cp", "registry.k8s.io/kube-controller-manager:v1.35.1");
    const result = await prePull(scope(), targets("v1.35.1"));
    expect(result).toMatchObject({
      ok: false,
      node: "pp-cp",
      image: "registry.k8s.io/kube-controller-manager:v1.35.1",
    });
    expect(
      sim
        .node("pp-cp")
        .pulls.filter((p) => p.at >= since)
        .map((p) => p.image),
    ).toEqual(["registry.k8s.io/kube-apiserver:v1.35.1"]);
    expect(sim.node("pp-old").pulls.filter((p) => p.at >= since)).toEqual([]);
    // A version that is no release tag is refused by the registry, not guessed at.
    sim.faults.missingImage("pp-cp", "registry.k8s.io/kube-controller-manager:v1.35.1", false);
    expect(await prePull(scope(), targets("v1.35"))).toMatchObject({ ok: false, node: "pp-cp" });
  });
});
