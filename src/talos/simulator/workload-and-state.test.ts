// The simulator's two seams for local mode: the workload-cluster hook (kubeconfig after bootstrap, one
// kubelet registration per configured node) and the state file (a restarted simulator resumes its
// machines instead of booting them blank).
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosApiError } from "../client/errors.ts";
import { TalosClient } from "../client/talos-client.ts";
import { exampleClusterInput as homelabInput } from "../config/example-input.ts";
import { generateClusterConfigs } from "../config/machine-config.ts";
import { ensureSecretsBundle } from "../config/secrets.ts";
import { generateAdminTalosconfig, type Talosconfig } from "../config/talosconfig.ts";
import {
  type JoinedNode,
  type SimulatorState,
  startTalosSimulator,
  type TalosSimulator,
} from "./simulator.ts";

// Addresses of our own so parallel suites do not collide.
const NODES = [
  { name: "w1", ip: "127.0.32.1" },
  { name: "w2", ip: "127.0.32.2" },
  { name: "w3", ip: "127.0.32.3" },
];

let dir: string;
let talosconfig: Talosconfig;
let configs: Map<string, string>;
const clients: TalosClient[] = [];
const joined: JoinedNode[] = [];
let failJoins = 0;
const WORKLOAD_KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: workload\n";

function start(stateFile: string): Promise<TalosSimulator> {
  return startTalosSimulator({
    nodes: NODES,
    rebootDelayMs: 50,
    stateFile,
    workloadCluster: {
      kubeconfig: async () => WORKLOAD_KUBECONFIG,
      async nodeJoined(node) {
        if (failJoins > 0) {
          failJoins--;
          throw new Error("API server not reachable yet");
        }
        joined.push(node);
      },
    },
  });
}

function admin(sim: TalosSimulator, name: string): TalosClient {
  const c = TalosClient.fromTalosconfig(talosconfig, { endpoint: sim.endpoint(name), timeoutMs: 5_000 });
  clients.push(c);
  return c;
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "talos-sim-state-"));
  const secrets = ensureSecretsBundle();
  talosconfig = generateAdminTalosconfig(secrets, { contextName: "w", endpoints: [] });
  const input = {
    ...homelabInput,
    endpoint: "https://127.0.32.1:6443",
    nodes: NODES.map((n) => ({ name: n.name, ip: n.ip, role: "controlplane" as const })),
  };
  configs = new Map(generateClusterConfigs(input, secrets).map((c) => [c.node, c.yaml]));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await rm(dir, { recursive: true, force: true });
});

describe("workload cluster hook", () => {
  it("registers a node only once it runs configured and etcd is bootstrapped; hands out the workload kubeconfig after bootstrap", async () => {
    const sim = await start(join(dir, "hook.json"));
    try {
      const [first, second] = NODES as [(typeof NODES)[0], (typeof NODES)[0]];
      for (const n of [first, second]) {
        await TalosClient.maintenance(sim.endpoint(n.name)).applyConfiguration(configs.get(n.name) ?? "");
        await sim.waitForReboot(n.name, 0);
      }
      // Configured, but no etcd yet: no kubelet can register, and Kubeconfig is Talos' minted one.
      await new Promise((r) => setTimeout(r, 200));
      expect(joined).toEqual([]);
      const minted = await admin(sim, first.name).kubeconfig();
      expect(minted).toContain("server: https://127.0.32.1:6443");

      failJoins = 2; // the first registrations fail: the kubelet retries
      expect(await admin(sim, first.name).bootstrap()).toBe("bootstrapped");
      await waitUntil("both configured nodes to register", () => joined.length === 2);
      expect(failJoins).toBe(0);
      expect(joined.map((j) => j.hostname).sort()).toEqual(["w1", "w2"]);
      const kubelet = /kubelet:(v[\d.]+)/.exec(configs.get("w1") ?? "")?.[1];
      expect(kubelet).toMatch(/^v1\.\d+\.\d+$/);
      for (const j of joined) {
        expect(j).toMatchObject({
          role: "controlplane",
          kubeletVersion: kubelet,
          clusterName: homelabInput.clusterName,
          // The seed allows workloads on its control planes.
          schedulable: homelabInput.allowSchedulingOnControlPlanes,
        });
      }
      expect(await admin(sim, second.name).kubeconfig()).toBe(WORKLOAD_KUBECONFIG);
      // The node still in maintenance has no kubelet.
      expect(joined.some((j) => j.hostname === "w3")).toBe(false);

      // A reboot is a new kubelet start: it registers again (the hook is idempotent).
      const reboots = sim.node(first.name).reboots;
      await admin(sim, first.name).reboot();
      await sim.waitForReboot(first.name, reboots);
      await waitUntil("w1 to register again", () => joined.filter((j) => j.hostname === "w1").length === 2);
    } finally {
      await sim.stop();
    }
  });
});

describe("state file", () => {
  it("a restarted simulator resumes configs, modes, staged changes and the same etcd members", async () => {
    const file = join(dir, "resume.json");
    const sim = await start(file);
    let members: string[];
    try {
      for (const n of NODES) {
        await TalosClient.maintenance(sim.endpoint(n.name)).applyConfiguration(configs.get(n.name) ?? "");
        await sim.waitForReboot(n.name, 0);
      }
      await admin(sim, "w1").bootstrap();
      await waitUntil("three etcd members", () => NODES.every((n) => sim.node(n.name).etcdMemberId));
      members = NODES.map((n) => sim.node(n.name).etcdMemberId ?? "");
      // A staged change waits for the next reboot; a restart of the simulator is not a reboot.
      await admin(sim, "w3").applyConfiguration(`${configs.get("w3")}\n# staged\n`, { mode: "STAGED" });
    } finally {
      await sim.stop();
    }

    const again = await start(file);
    try {
      for (const n of NODES) expect(again.node(n.name).mode).toBe("running");
      expect(NODES.map((n) => again.node(n.name).etcdMemberId)).toEqual(members);
      expect(again.node("w3").configYaml).toBe(configs.get("w3"));
      expect(again.node("w1").reboots).toBe(1);
      // Still the same etcd: bootstrapping again is refused as on a real cluster.
      expect(await admin(again, "w2").bootstrap()).toBe("already-bootstrapped");
      // Both calls are on record in the state file, across the restart: what crash tests count.
      const saved = JSON.parse(readFileSync(file, "utf8")) as SimulatorState;
      const calls = Object.values(saved.etcd).flatMap((e) => e.bootstraps ?? []);
      expect(calls.map((c) => [c.nodeName, c.accepted])).toEqual([
        ["w1", true],
        ["w2", false],
      ]);
      const listed = await admin(again, "w2").etcdMemberList();
      expect(listed.map((m) => m.id).sort()).toEqual([...members].sort());
      // The staged config is applied by the next real reboot.
      const reboots = again.node("w3").reboots;
      await admin(again, "w3").reboot();
      await again.waitForReboot("w3", reboots);
      expect(again.node("w3").configYaml).toContain("# staged");
    } finally {
      await again.stop();
    }
  });

  it("without a state file every start is a blank machine", async () => {
    const sim = await startTalosSimulator({ nodes: NODES, rebootDelayMs: 50 });
    try {
      for (const n of NODES) expect(sim.node(n.name).mode).toBe("maintenance");
      const err = await admin(sim, "w1")
        .version()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TalosApiError);
    } finally {
      await sim.stop();
    }
  });
});
