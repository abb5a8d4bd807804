import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosApiError } from "../client/errors.ts";
import { TalosClient } from "../client/talos-client.ts";
import { exampleClusterInput as homelabInput } from "../config/example-input.ts";
import { generateClusterConfigs } from "../config/machine-config.ts";
import { ensureSecretsBundle, type SecretsBundle } from "../config/secrets.ts";
import { generateAdminTalosconfig, type Talosconfig } from "../config/talosconfig.ts";
import { startTalosSimulator, type TalosSimulator } from "./simulator.ts";

// Addresses of our own in 127.0.0.0/8 so parallel suites (and the e2e talosctl suite) do not collide.
const NODES = [
  { name: "cp1", ip: "127.0.31.1" },
  { name: "cp2", ip: "127.0.31.2" },
  { name: "cp3", ip: "127.0.31.3" },
  { name: "old", ip: "127.0.31.4", talosVersion: "v1.12.6" },
];
const INSTALLER = `factory.talos.dev/nocloud-installer/${homelabInput.schematic}`;

let sim: TalosSimulator;
let secrets: SecretsBundle;
let talosconfig: Talosconfig;
let configs: Map<string, string>;
const clients: TalosClient[] = [];

function admin(name: string, options: { node?: string; timeoutMs?: number } = {}): TalosClient {
  const c = TalosClient.fromTalosconfig(talosconfig, { endpoint: sim.endpoint(name), ...options });
  clients.push(c);
  return c;
}

function maintenance(name: string): TalosClient {
  const c = TalosClient.maintenance(sim.endpoint(name), { timeoutMs: 5_000 });
  clients.push(c);
  return c;
}

async function expectKind(p: Promise<unknown>, kind: string): Promise<TalosApiError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TalosApiError);
  expect((err as TalosApiError).kind).toBe(kind);
  return err as TalosApiError;
}

beforeAll(async () => {
  sim = await startTalosSimulator({ nodes: NODES, rebootDelayMs: 100 });
  secrets = ensureSecretsBundle();
  talosconfig = generateAdminTalosconfig(secrets, { contextName: "sim", endpoints: [NODES[0]?.ip ?? ""] });
  const input = {
    ...homelabInput,
    endpoint: "https://127.0.31.1:6443",
    nodes: NODES.map((n) => ({ name: n.name, ip: n.ip, role: "controlplane" as const })),
  };
  configs = new Map(generateClusterConfigs(input, secrets).map((c) => [c.node, c.yaml]));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await sim?.stop();
});

describe("Talos simulator driven by our client", () => {
  it("starts every node in maintenance mode on its own loopback address", () => {
    expect(sim.nodes.map((n) => n.ip)).toEqual(NODES.map((n) => n.ip));
    for (const n of NODES) expect(sim.node(n.name).mode).toBe("maintenance");
  });

  it("maintenance: serves Version and ApplyConfiguration without a client certificate, not Bootstrap/Kubeconfig", async () => {
    const m = maintenance("cp1");
    expect((await m.version()).tag).toBe("v1.13.0");
    const e1 = await expectKind(m.bootstrap(), "unimplemented");
    expect(e1.inMaintenance).toBe(true);
    await expectKind(m.kubeconfig(), "unimplemented");
    await expectKind(m.etcdMemberList(), "unimplemented");
  });

  it("maintenance: a dry run changes nothing, NO_REBOOT is refused", async () => {
    const m = maintenance("cp1");
    const res = await m.applyConfiguration(configs.get("cp1") ?? "", { dryRun: true });
    expect(res.modeDetails).toMatch(/Dry run/);
    await expectKind(m.applyConfiguration(configs.get("cp1") ?? "", { mode: "NO_REBOOT" }), "unimplemented");
    await expectKind(m.applyConfiguration("not: [a config"), "invalid-argument");
    expect(sim.node("cp1").mode).toBe("maintenance");
  });

  it("apply AUTO → reboot (unavailable meanwhile) → configured mode behind mTLS", async () => {
    // cp1 reboots slowly so the check below surely hits the reboot, however loaded the machine is.
    sim.faults.slowReboot("cp1", 2_000);
    for (const n of NODES) {
      const res = await maintenance(n.name).applyConfiguration(configs.get(n.name) ?? "", { mode: "AUTO" });
      expect(res.mode).toBe("REBOOT");
    }
    await sim.waitForMode("cp1", "rebooting", 1_000);
    const during = await expectKind(admin("cp1", { timeoutMs: 1_000 }).version(), "unavailable");
    expect(during.retryable).toBe(true);
    sim.faults.slowReboot("cp1", 0);
    for (const n of NODES) await sim.waitForMode(n.name, "running");
    const v = await admin("cp1").version();
    expect(v).toMatchObject({ tag: "v1.13.0", platform: "nocloud", mode: "cloud" });
    expect(sim.node("cp1").role).toBe("controlplane");
    // The configured node no longer accepts clients without a certificate.
    await expect(maintenance("cp1").version()).rejects.toBeInstanceOf(TalosApiError);
  });

  it("checks the client certificate's CA and takes the role from its organization", async () => {
    const reader = generateAdminTalosconfig(secrets, {
      contextName: "r",
      endpoints: [],
      roles: ["os:reader"],
    });
    const r = TalosClient.fromTalosconfig(reader, { endpoint: sim.endpoint("cp1") });
    clients.push(r);
    expect((await r.version()).tag).toBe("v1.13.0");
    await expectKind(r.bootstrap(), "permission-denied");

    const strangers = generateAdminTalosconfig(ensureSecretsBundle(), { contextName: "x", endpoints: [] });
    const s = TalosClient.fromTalosconfig(strangers, { endpoint: sim.endpoint("cp1"), timeoutMs: 3_000 });
    clients.push(s);
    await expect(s.version()).rejects.toBeInstanceOf(TalosApiError);
  });

  it("bootstrap forms etcd once (AlreadyExists = done) and the other control planes join", async () => {
    await expectKind(admin("cp1").etcdMemberList(), "failed-precondition");
    expect(await admin("cp1").bootstrap()).toBe("bootstrapped");
    expect(await admin("cp1").bootstrap()).toBe("already-bootstrapped");
    expect(await admin("cp2").bootstrap()).toBe("already-bootstrapped");
    const members = await admin("cp2").etcdMemberList();
    expect(members.map((m) => m.hostname).sort()).toEqual(["cp1", "cp2", "cp3", "old"]);
    for (const m of members) {
      expect(m.id).toMatch(/^\d+$/);
      expect(BigInt(m.id)).toBeGreaterThan(2n ** 53n);
    }
    expect(members.find((m) => m.hostname === "cp1")?.peerUrls).toEqual(["https://127.0.31.1:2380"]);
  });

  it("returns a kubeconfig as a gzipped tar stream: minted from the cluster CA, or the configured one", async () => {
    const minted = await admin("cp1").kubeconfig();
    expect(minted).toContain("server: https://127.0.31.1:6443");
    expect(minted).toContain(`certificate-authority-data: ${secrets.certs.k8s.crt}`);
    sim.setKubeconfig("apiVersion: v1\nkind: Config\ncurrent-context: real\n");
    expect(await admin("cp2").kubeconfig()).toBe("apiVersion: v1\nkind: Config\ncurrent-context: real\n");
  });

  it("proxies to another node with the `node` metadata header", async () => {
    const before = sim.node("cp3").calls.length;
    const v = await admin("cp1", { node: "127.0.31.3" }).version();
    expect(v.node).toBe("127.0.31.3");
    expect(sim.node("cp3").calls.length).toBe(before + 1);
  });

  it("reports service health, and an injected unhealthy etcd member", async () => {
    expect(await admin("cp2").unhealthyServices(["apid", "etcd", "kubelet"])).toEqual([]);
    sim.faults.etcdUnhealthy("cp2");
    expect(await admin("cp2").unhealthyServices(["apid", "etcd", "kubelet"])).toEqual(["etcd"]);
    // An upgrade of a control plane is refused while etcd is unhealthy (Talos' pre-upgrade check).
    await expectKind(admin("cp1").upgrade(`${INSTALLER}:v1.13.1`), "failed-precondition");
    sim.faults.etcdUnhealthy("cp2", false);
    expect(await admin("cp2").unhealthyServices(["etcd"])).toEqual([]);
  });

  it("pulls Kubernetes images (ImageService on v1.13, MachineService.ImagePull before), refusing unknown ones", async () => {
    const since = Date.now();
    expect(await admin("cp1").pullImage("registry.k8s.io/kube-apiserver:v1.35.0", "cri")).toBe(
      "image-service",
    );
    expect(await admin("old").pullImage("ghcr.io/siderolabs/kubelet:v1.35.0", "system")).toBe("legacy");
    expect(sim.node("cp1").pulls.filter((p) => p.at >= since)).toEqual([
      expect.objectContaining({
        image: "registry.k8s.io/kube-apiserver:v1.35.0",
        namespace: "NS_CRI",
        api: "ImageService",
      }),
    ]);
    expect(sim.node("old").pulls.filter((p) => p.at >= since)).toEqual([
      expect.objectContaining({
        image: "ghcr.io/siderolabs/kubelet:v1.35.0",
        namespace: "NS_SYSTEM",
        api: "MachineService",
      }),
    ]);
    // No reference at all, a repository no registry serves, a tag that is no release, an injected miss.
    await expectKind(
      admin("cp1").pullImage("Registry.k8s.io/kube-apiserver:v1.35.0", "cri"),
      "invalid-argument",
    );
    await expectKind(
      admin("old").pullImage("registry.k8s.io/kube-apiserver v1.35.0", "cri"),
      "invalid-argument",
    );
    await expectKind(admin("cp1").pullImage("docker.io/library/nginx:v1.35.0", "cri"), "not-found");
    await expectKind(admin("cp1").pullImage("registry.k8s.io/kube-scheduler:latest", "cri"), "not-found");
    sim.faults.missingImage("cp2", "registry.k8s.io/kube-scheduler:v1.35.0");
    await expectKind(admin("cp2").pullImage("registry.k8s.io/kube-scheduler:v1.35.0", "cri"), "not-found");
    sim.faults.missingImage("cp2", "registry.k8s.io/kube-scheduler:v1.35.0", false);
    await admin("cp2").pullImage("registry.k8s.io/kube-scheduler:v1.35.0", "cri");
    expect(
      sim
        .node("cp2")
        .pulls.filter((p) => p.at >= since)
        .map((p) => p.image),
    ).toEqual(["registry.k8s.io/kube-scheduler:v1.35.0"]);
    // Refused pulls are not recorded.
    expect(sim.node("cp1").pulls.filter((p) => p.at >= since)).toHaveLength(1);
  });

  it("upgrades through ImageService.Pull + LifecycleService.Upgrade + reboot", async () => {
    const progress: string[] = [];
    const reboots = sim.node("cp3").reboots;
    const res = await admin("cp3").upgrade(`${INSTALLER}:v1.13.1`, { onProgress: (m) => progress.push(m) });
    expect(res.method).toBe("lifecycle");
    expect(progress.join("\n")).toMatch(/pulled .*v1\.13\.1/);
    await sim.waitForReboot("cp3", reboots);
    expect((await admin("cp3").version()).tag).toBe("v1.13.1");
    expect(sim.node("cp3").calls).toContain("/machine.LifecycleService/Upgrade");
  });

  it("falls back to MachineService.Upgrade on a Talos without the lifecycle API", async () => {
    const reboots = sim.node("old").reboots;
    const res = await admin("old").upgrade(`${INSTALLER}:v1.13.0`);
    expect(res.method).toBe("legacy");
    await sim.waitForReboot("old", reboots);
    expect((await admin("old").version()).tag).toBe("v1.13.0");
  });

  it("reports injected upgrade failures without rebooting", async () => {
    const reboots = sim.node("cp2").reboots;
    sim.faults.failUpgrade("cp2", "install");
    await expectKind(admin("cp2").upgrade(`${INSTALLER}:v1.13.2`), "upgrade-failed");
    sim.faults.failUpgrade("cp2", "pull");
    await expectKind(admin("cp2").upgrade(`${INSTALLER}:v1.13.2`), "not-found");
    sim.faults.failUpgrade("cp2", null);
    await new Promise((r) => setTimeout(r, 200));
    expect(sim.node("cp2").reboots).toBe(reboots);
    expect(sim.node("cp2").version).toBe("v1.13.0");
  });

  it("slow reboot and node down keep the node unavailable", async () => {
    sim.faults.slowReboot("cp2", 1_500);
    await admin("cp2").reboot();
    await sim.waitForMode("cp2", "rebooting", 1_000);
    await new Promise((r) => setTimeout(r, 300));
    await expectKind(admin("cp2", { timeoutMs: 1_000 }).version(), "unavailable");
    await sim.waitForMode("cp2", "running", 5_000);
    sim.faults.slowReboot("cp2", 0);

    await sim.faults.nodeDown("cp2");
    await expectKind(admin("cp2", { timeoutMs: 1_000 }).version(), "unavailable");
    await expectKind(admin("cp1", { node: "127.0.31.2" }).version(), "unavailable");
    await sim.faults.nodeDown("cp2", false);
    expect((await admin("cp2").version()).tag).toBe("v1.13.0");
  });

  it("refuses a control-plane upgrade while a member's machine is down, and an image that is no installer", async () => {
    const since = Date.now();
    const version = sim.node("cp1").version;
    await sim.faults.nodeDown("cp2");
    // Talos' ValidateForUpgrade: every member started and healthy, or no upgrade without force.
    const err = await expectKind(admin("cp1").upgrade(`${INSTALLER}:v1.13.1`), "failed-precondition");
    expect(err.message).toMatch(/cp2 is not healthy/);
    await sim.faults.nodeDown("cp2", false);
    // A reference that names no installer image fails its pull, as a missing image does.
    await expectKind(admin("cp1").upgrade("docker.io/library/nginx:v1.13.1"), "not-found");
    await new Promise((r) => setTimeout(r, 200));
    expect(sim.node("cp1").version).toBe(version);
    // The record of node states over time saw cp2 go down and come back, with 3 of 4 members healthy.
    const record = sim.history().filter((r) => r.at >= since && r.node === "cp2");
    expect(record.map((r) => r.mode)).toEqual(["down", "running"]);
    expect(record.map((r) => r.etcdHealthy)).toEqual([3, 4]);
  });

  it("etcd: forfeit leadership, leave, remove by id (NotFound = done)", async () => {
    expect(await admin("cp1").etcdForfeitLeadership()).not.toBe("cp1");
    await admin("cp3").etcdLeaveCluster();
    let members = await admin("cp1").etcdMemberList();
    expect(members.map((m) => m.hostname).sort()).toEqual(["cp1", "cp2", "old"]);
    const oldId = members.find((m) => m.hostname === "old")?.id ?? "";
    expect(await admin("cp1").etcdRemoveMemberById(oldId)).toBe("removed");
    expect(await admin("cp1").etcdRemoveMemberById(oldId)).toBe("not-found");
    // The live node whose member was removed does not come back by itself (etcd refuses removed members).
    const etcdOnOld = (await admin("old").serviceList()).find((s) => s.id === "etcd");
    expect(etcdOnOld?.lastMessage).toMatch(/permanently removed/);
    members = await admin("cp2").etcdMemberList();
    expect(members.map((m) => m.hostname).sort()).toEqual(["cp1", "cp2"]);
  });

  it("reset returns a node to maintenance mode", async () => {
    await admin("cp3").reset({ graceful: false, reboot: true });
    await sim.waitForMode("cp3", "maintenance");
    expect((await maintenance("cp3").version()).tag).toBe("v1.13.1");
    expect(sim.node("cp3").configYaml).toBeNull();
  });
  it("a wiped control plane cannot rejoin etcd until its stale member is removed", async () => {
    const staleId = sim.node("cp2").etcdMemberId;
    expect(staleId).not.toBeNull();
    await admin("cp2").reset({ graceful: false, reboot: true });
    await sim.waitForMode("cp2", "maintenance");
    await maintenance("cp2").applyConfiguration(configs.get("cp2") ?? "");
    await sim.waitForMode("cp2", "running");
    expect(await admin("cp2").unhealthyServices(["etcd"])).toEqual(["etcd"]);
    const etcdService = (await admin("cp2").serviceList()).find((s) => s.id === "etcd");
    expect(etcdService?.lastMessage).toMatch(/Peer URLs already exists/);
    expect((await admin("cp1").etcdMemberList()).map((m) => m.id)).toContain(staleId);

    expect(await admin("cp1").etcdRemoveMemberById(staleId ?? "")).toBe("removed");
    const members = await admin("cp1").etcdMemberList();
    expect(members.map((m) => m.hostname).sort()).toEqual(["cp1", "cp2"]);
    expect(members.find((m) => m.hostname === "cp2")?.id).not.toBe(staleId);
    expect(await admin("cp2").unhealthyServices(["etcd"])).toEqual([]);
  });
  it("wipeDisk: a powered-off machine boots from an empty disk; the etcd history records each step", async () => {
    const before = sim.etcdHistory("cp1").length;
    expect(() => sim.wipeDisk("cp2")).toThrow(/power it off/);
    await sim.faults.nodeDown("cp2");
    sim.wipeDisk("cp2");
    await sim.faults.nodeDown("cp2", false);
    await sim.waitForMode("cp2", "maintenance");
    expect(sim.node("cp2").configYaml).toBeNull();
    await maintenance("cp2").applyConfiguration(configs.get("cp2") ?? "");
    await sim.waitForMode("cp2", "running");
    const etcd = (await admin("cp2").serviceList()).find((s) => s.id === "etcd");
    expect(etcd?.lastMessage).toMatch(/Peer URLs already exists/);
    const stale = sim.node("cp2").etcdMemberId ?? "";
    expect(await admin("cp1").etcdRemoveMemberById(stale)).toBe("removed");
    expect(await admin("cp2").unhealthyServices(["etcd"])).toEqual([]);

    const records = sim.etcdHistory("cp1").slice(before);
    expect(records.map((r) => r.event)).toEqual(["cp2 down", "cp2 up", "remove cp2", "join cp2"]);
    // Down and back with a stale member: a member, not running; after the rejoin both run.
    expect(records[0]).toMatchObject({ members: ["cp1", "cp2"], running: ["cp1"] });
    expect(records[1]).toMatchObject({ members: ["cp1", "cp2"], running: ["cp1"] });
    expect(records[3]).toMatchObject({ members: ["cp1", "cp2"], running: ["cp1", "cp2"] });
  });
});

describe("error mapping", () => {
  let silent: Server;
  beforeAll(async () => {
    // Accepts TCP and never answers the TLS handshake: the call runs into its deadline.
    silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.31.9", () => r()));
  });
  afterAll(() => {
    silent.close();
  });

  it("maps a hung node to deadline-exceeded", async () => {
    const { port } = silent.address() as { port: number };
    const c = TalosClient.maintenance(`127.0.31.9:${port}`, { timeoutMs: 500 });
    clients.push(c);
    const err = await expectKind(c.version(), "deadline-exceeded");
    expect(err.retryable).toBe(true);
  });

  it("maps a closed port to unavailable", async () => {
    const c = TalosClient.maintenance("127.0.31.10:1", { timeoutMs: 2_000 });
    clients.push(c);
    await expectKind(c.version(), "unavailable");
  });
});

describe("installFails fault", () => {
  it("reboots an applied node back into maintenance mode until cleared", async () => {
    const own = await startTalosSimulator({
      nodes: [{ name: "stuck", ip: "127.0.31.9" }],
      rebootDelayMs: 50,
    });
    try {
      own.faults.installFails("stuck");
      const m = () => TalosClient.maintenance(own.endpoint("stuck"), { timeoutMs: 5_000 });
      const config = configs.get("cp1") ?? "";
      const first = m();
      await first.applyConfiguration(config, { mode: "AUTO" });
      first.close();
      await own.waitForReboot("stuck", 0);
      expect(own.node("stuck")).toMatchObject({ mode: "maintenance", configYaml: null });
      own.faults.installFails("stuck", false);
      const again = m();
      await again.applyConfiguration(config, { mode: "AUTO" });
      again.close();
      await own.waitForReboot("stuck", 1);
      expect(own.node("stuck").mode).toBe("running");
    } finally {
      await own.stop();
    }
  });
});
