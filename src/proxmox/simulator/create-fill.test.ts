// What Proxmox fills in when a VM is created, and the endpoints real clients read before they create
// anything (node status, cluster status, permissions, task history).

import { type Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../client.ts";
import { normalizeNet } from "./cluster.ts";
import { ALL_PRIVILEGES } from "./permissions.ts";
import type { ProxmoxSimulator } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "./test-support.ts";

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let agent: Agent;

beforeAll(async () => {
  rig = await startSimulatorWithClient({
    taskDurationMs: 5,
    tokens: [{ tokenId: "reader@pve!ro", secret: "ro-secret", acl: { "/vms": ["VM.Audit"] } }],
  });
  ({ sim, client, agent } = rig);
});
afterAll(() => rig.stop());

async function get(path: string, token = `${sim.tokenId}=${sim.tokenSecret}`) {
  const response = await fetch(`${sim.url}/api2/json${path}`, {
    dispatcher: agent,
    headers: { authorization: `PVEAPIToken=${token}` },
  });
  return { status: response.status, body: (await response.json()) as { data: unknown; total?: number } };
}

describe("what create fills in", () => {
  it("a MAC under Proxmox's prefix for every NIC without one, unique per NIC; a given MAC is kept as given", async () => {
    await client.waitForTask(
      await client.createVm("pve1", 700, {
        name: "nics",
        net0: "virtio,bridge=vmbr0,tag=3,firewall=1",
        net1: "model=e1000,bridge=vmbr1",
        net2: "virtio=bc:24:11:00:00:01,bridge=vmbr0",
      }),
    );
    const config = await client.getConfig("pve1", 700);
    expect(config["net0"]).toMatch(/^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0,firewall=1,tag=3$/);
    expect(config["net1"]).toMatch(/^e1000=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr1$/);
    expect(config["net2"]).toBe("virtio=bc:24:11:00:00:01,bridge=vmbr0");
    expect(config["net0"]!.split(",")[0]).not.toBe(config["net1"]!.replace("e1000", "virtio").split(",")[0]);
  });

  it("a missing smbios1 gets a uuid (a given one is kept), vmgenid a fresh one (also for vmgenid=1), meta the creation stamp", async () => {
    await client.waitForTask(
      await client.createVm("pve1", 701, { name: "ids", vmgenid: "1", smbios1: "manufacturer=x" }),
    );
    await client.waitForTask(await client.createVm("pve1", 702, { name: "ids2" }));
    const a = await client.getConfig("pve1", 701);
    const b = await client.getConfig("pve1", 702);
    expect(a["smbios1"]).toBe("manufacturer=x");
    expect(b["smbios1"]).toMatch(/^uuid=[0-9a-f-]{36}$/);
    expect(a["vmgenid"]).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
    expect(b["smbios1"]).not.toBe(a["smbios1"]);
    expect(b["vmgenid"]).not.toBe(a["vmgenid"]);
    expect(a["meta"]).toMatch(/^creation-qemu=[\d.]+,ctime=\d+$/);
  });

  it("normalizeNet leaves a value without a NIC model alone and orders the other keys", () => {
    const zero = () => 0;
    expect(normalizeNet("bridge=vmbr0", zero)).toBe("bridge=vmbr0");
    expect(normalizeNet("virtio,tag=3,bridge=vmbr0,macaddr=aa:bb:cc:dd:ee:ff", zero)).toBe(
      "virtio=aa:bb:cc:dd:ee:ff,bridge=vmbr0,tag=3",
    );
    expect(normalizeNet("virtio,bridge=vmbr0", zero)).toBe("virtio=BC:24:11:00:00:00,bridge=vmbr0");
  });
});

describe("what clients read first", () => {
  it("node status: CPU, memory, root fs and versions; an unknown node is Proxmox's hostname error", async () => {
    const { body } = await get("/nodes/pve2/status");
    expect(body.data).toMatchObject({ cpuinfo: { cpus: 16 }, pveversion: "pve-manager/9.1.1/simulator" });
    const missing = await get("/nodes/nowhere/status");
    expect(missing.status).toBe(500);
  });

  it("cluster status: one cluster entry, then every node with its online flag", async () => {
    sim.faults.set({ nodesDown: ["pve3"] });
    const { body } = await get("/cluster/status");
    sim.faults.reset();
    const entries = body.data as { type: string; name: string; online?: number; quorate?: number }[];
    expect(entries[0]).toMatchObject({ type: "cluster", quorate: 1 });
    expect(entries.slice(1).map((e) => [e.name, e.online])).toEqual([
      ["pve1", 1],
      ["pve2", 1],
      ["pve3", 0],
    ]);
  });

  it("permissions: the caller's own privileges per path, and only its own", async () => {
    const all = (await get("/access/permissions?path=/")).body.data as Record<string, Record<string, number>>;
    expect(Object.keys(all["/"]!).sort()).toEqual([...ALL_PRIVILEGES].sort());
    const ro = (await get("/access/permissions", "reader@pve!ro=ro-secret")).body.data;
    expect(ro).toEqual({ "/vms": { "VM.Audit": 1 } });
    const other = await get("/access/permissions?userid=homelab@pve!operator", "reader@pve!ro=ro-secret");
    expect(other.status).toBe(403);
  });

  it("task history: newest first, finished ones by default, filters by vmid, type and errors", async () => {
    const failing = await client.start("pve1", 9999);
    await client.waitForTask(failing).catch(() => undefined);
    const { body } = await get("/nodes/pve1/tasks?vmid=700");
    const tasks = body.data as { type: string; status?: string; upid: string }[];
    expect(tasks.map((t) => [t.type, t.status])).toEqual([["qmcreate", "OK"]]);
    const errors = (await get("/nodes/pve1/tasks?errors=1")).body.data as { id: string; status: string }[];
    expect(errors.map((t) => [t.id, t.status])).toEqual([
      ["9999", "Configuration file 'nodes/pve1/qemu-server/9999.conf' does not exist"],
    ]);
    const mine = await get("/nodes/pve1/tasks?typefilter=qmcreate&limit=2");
    expect((mine.body.data as unknown[]).length).toBe(2);
    expect(mine.body.total).toBe(3);
    // Without Sys.Audit on the node a token sees only its own tasks.
    expect((await get("/nodes/pve1/tasks", "reader@pve!ro=ro-secret")).body.data).toEqual([]);
  });
});
