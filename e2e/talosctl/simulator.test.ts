// The real talosctl (built from its Go module) against the simulator: if Talos' own client completes
// version, apply-config --insecure, bootstrap, kubeconfig, etcd members and upgrade, the simulator speaks
// Talos' protocol (services, field numbers, TLS/mTLS, metadata, streams). Then our client runs the same
// operations, and the kubeconfig handed out leads to the real e2e control plane.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosApiError, TalosClient } from "../../src/talos/client/index.ts";
import { exampleClusterInput as homelabInput } from "../../src/talos/config/example-input.ts";
import {
  ensureSecretsBundle,
  generateAdminTalosconfig,
  generateClusterConfigs,
  installerImage,
  talosconfigToYaml,
} from "../../src/talos/config/index.ts";
import { startTalosSimulator, type TalosSimulator } from "../../src/talos/simulator/index.ts";
import { kubeconfigPath } from "../harness/test-cluster.ts";
import { talosctl, talosctlPath } from "./talosctl.ts";

const NODES = [
  { name: "talos-a", ip: "127.0.41.1" },
  { name: "talos-b", ip: "127.0.41.2" },
  { name: "talos-c", ip: "127.0.41.3", talosVersion: "v1.12.6" },
];
const secrets = ensureSecretsBundle();
const input = {
  ...homelabInput,
  endpoint: "https://127.0.41.1:6443",
  nodes: NODES.map((n) => ({ name: n.name, ip: n.ip, role: "controlplane" as const })),
};
const configs = new Map(generateClusterConfigs(input, secrets).map((c) => [c.node, c.yaml]));

let sim: TalosSimulator;
let dir: string;
let talosconfigFile: string;
let realKubeconfig: string;
const clients: TalosClient[] = [];

/** talosctl with our talosconfig, endpoint and node set to one simulated node. */
function tctl(node: string, args: string[], timeoutMs?: number) {
  const n = NODES.find((x) => x.name === node);
  return talosctl(["--talosconfig", talosconfigFile, "-e", sim.endpoint(node), "-n", n?.ip ?? "", ...args], {
    timeoutMs,
  });
}

/** After a reboot grpc-js may still be backing off its reconnect: Unavailable, retried as a controller would. */
async function retryWhileUnavailable<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof TalosApiError && err.retryable) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function ok(r: { code: number; stdout: string; stderr: string }) {
  expect(r.code, `talosctl failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

beforeAll(async () => {
  await talosctlPath();
  dir = await mkdtemp(join(tmpdir(), "talosctl-sim-"));
  realKubeconfig = await readFile(kubeconfigPath(), "utf8");
  sim = await startTalosSimulator({ nodes: NODES, kubeconfig: realKubeconfig, rebootDelayMs: 200 });
  const talosconfig = generateAdminTalosconfig(secrets, {
    contextName: "sim",
    endpoints: NODES.map((n) => sim.endpoint(n.name)),
  });
  talosconfigFile = join(dir, "talosconfig");
  await writeFile(talosconfigFile, talosconfigToYaml(talosconfig));
  for (const [node, yaml] of configs) await writeFile(join(dir, `${node}.yaml`), yaml);
}, 20 * 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await sim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("real talosctl against the simulator", () => {
  it("version --insecure reaches a node in maintenance mode", async () => {
    const r = ok(
      await talosctl(["version", "--insecure", "-n", NODES[0]?.ip ?? "", "-e", sim.endpoint("talos-a")]),
    );
    expect(r.stdout).toMatch(/Server:[\s\S]*Tag:\s+v1\.13\.0/);
  });

  it("apply-config --insecure moves every node to configured mode through a reboot", async () => {
    for (const n of NODES) {
      ok(
        await talosctl([
          "apply-config",
          "--insecure",
          "-n",
          n.ip,
          "-e",
          sim.endpoint(n.name),
          "--file",
          join(dir, `${n.name}.yaml`),
        ]),
      );
    }
    for (const n of NODES) await sim.waitForMode(n.name, "running");
    expect(sim.node("talos-a").configYaml).toBe(configs.get("talos-a"));
  });

  it("version over mTLS with the generated admin talosconfig (Ed25519 client certificate)", async () => {
    const r = ok(await tctl("talos-a", ["version"]));
    expect(r.stdout).toMatch(/NODE:\s+127\.0\.41\.1/);
    expect(r.stdout).toMatch(/Tag:\s+v1\.13\.0/);
    // Several nodes through one endpoint: apid-style proxying with per-node metadata.
    const many = ok(
      await talosctl([
        "--talosconfig",
        talosconfigFile,
        "-e",
        sim.endpoint("talos-a"),
        "-n",
        "127.0.41.2,127.0.41.3",
        "version",
      ]),
    );
    expect(many.stdout).toMatch(/NODE:\s+127\.0\.41\.2[\s\S]*NODE:\s+127\.0\.41\.3/);
    expect(many.stdout).toMatch(/Tag:\s+v1\.12\.6/);
  });

  it("bootstrap, then etcd members lists all three control planes", async () => {
    ok(await tctl("talos-a", ["bootstrap"]));
    const again = await tctl("talos-a", ["bootstrap"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/AlreadyExists|etcd data directory is not empty/);
    const r = ok(await tctl("talos-b", ["etcd", "members"]));
    for (const n of NODES) expect(r.stdout).toContain(n.name);
    expect(r.stdout).toContain("https://127.0.41.3:2380");
  });

  it("kubeconfig writes the real control plane's kubeconfig, which reaches a real API server", async () => {
    const out = join(dir, "kubeconfig");
    ok(await tctl("talos-a", ["kubeconfig", out, "--merge=false"]));
    const written = await readFile(out, "utf8");
    expect(written).toBe(realKubeconfig);
    const kc = new KubeConfig();
    kc.loadFromFile(out);
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
  });

  it("upgrade: image pull + lifecycle upgrade + reboot on v1.13, legacy API on v1.12", async () => {
    const image = installerImage({ ...input, talosVersion: "v1.13.1" });
    const rebootsB = sim.node("talos-b").reboots;
    const rebootsC = sim.node("talos-c").reboots;
    ok(await tctl("talos-b", ["upgrade", "--image", image, "--wait=false", "--drain=false"], 120_000));
    // talosctl returns once Reboot is acknowledged; the node is down for the reboot, then back.
    await sim.waitForReboot("talos-b", rebootsB);
    expect(sim.node("talos-b").calls).toEqual(
      expect.arrayContaining([
        "/machine.ImageService/Pull",
        "/machine.LifecycleService/Upgrade",
        "/machine.MachineService/Reboot",
      ]),
    );
    expect(sim.node("talos-b").version).toBe("v1.13.1");

    const legacy = installerImage({ ...input, talosVersion: "v1.13.0" });
    ok(await tctl("talos-c", ["upgrade", "--image", legacy, "--wait=false", "--drain=false"], 120_000));
    expect(sim.node("talos-c").calls).toContain("/machine.MachineService/Upgrade");
    await sim.waitForReboot("talos-c", rebootsC);
    expect(sim.node("talos-c").version).toBe("v1.13.0");
    const r = ok(await tctl("talos-c", ["version"]));
    expect(r.stdout).toMatch(/Tag:\s+v1\.13\.0/);
  });
});

describe("our client against the same simulator", () => {
  it("passes the same operations", async () => {
    const c = TalosClient.fromTalosconfig(
      generateAdminTalosconfig(secrets, { contextName: "x", endpoints: [] }),
      {
        endpoint: sim.endpoint("talos-a"),
      },
    );
    clients.push(c);
    expect((await c.version()).tag).toBe("v1.13.0");
    expect(await c.bootstrap()).toBe("already-bootstrapped");
    expect((await c.etcdMemberList()).map((m) => m.hostname).sort()).toEqual(NODES.map((n) => n.name));
    const kubeconfig = await c.kubeconfig();
    expect(kubeconfig).toBe(realKubeconfig);
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfig);
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
    const reboots = sim.node("talos-a").reboots;
    expect((await c.upgrade(installerImage({ ...input, talosVersion: "v1.13.2" }))).method).toBe("lifecycle");
    await sim.waitForReboot("talos-a", reboots);
    expect((await retryWhileUnavailable(() => c.version())).tag).toBe("v1.13.2");
  });
});
