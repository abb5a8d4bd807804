// A simulator with a state folder resumes where it was: after a clean stop, and after its process is
// killed with SIGKILL mid-work (state is written after every change, by rename, never half).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, fetch } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { ProxmoxClient } from "../client.ts";
import { type ProxmoxSimulator, startProxmoxSimulator } from "./server.ts";

const dirs: string[] = [];
const sims: ProxmoxSimulator[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir() {
  const dir = mkdtempSync(join(tmpdir(), "pve-sim-state-"));
  dirs.push(dir);
  return dir;
}

function clientFor(target: { url: string; tokenId: string; tokenSecret: string; caPem: string }) {
  return new ProxmoxClient({
    url: target.url,
    tokenId: target.tokenId,
    tokenSecret: target.tokenSecret,
    tls: { caPem: target.caPem },
    retry: { baseMs: 5 },
    timeoutMs: 10_000,
  });
}

async function start(dir: string) {
  const sim = await startProxmoxSimulator({ stateDir: dir, taskDurationMs: 10 });
  sims.push(sim);
  return { sim, client: clientFor(sim) };
}

const snapshot = async (client: ProxmoxClient) =>
  (await client.listVms()).map((v) => [v.vmid, v.node, v.status, v.name]).sort();

describe("simulator state on disk", () => {
  it("keeps a container as a container across a restart; a container cut off in vzcreate is gone", async () => {
    const dir = stateDir();
    const first = await start(dir);
    const c1 = first.client;
    await c1.waitForTask(
      await c1.downloadUrl("pve1", "local", {
        url: "http://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst",
        content: "vztmpl",
        filename: "debian-12-standard_12.12-1_amd64.tar.zst",
      }),
    );
    const ostemplate = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst";
    await c1.waitForTask(
      await c1.createContainer("pve1", 601, {
        ostemplate,
        hostname: "kept",
        rootfs: "local-lvm:1",
        unprivileged: 1,
      }),
    );
    await c1.waitForTask(await c1.startContainer("pve1", 601));
    await c1.addHaResource({ sid: "ct:601", state: "started" });
    first.sim.faults.set({ hangTasks: [{ type: "vzcreate" }] });
    await c1.createContainer("pve1", 602, { ostemplate, rootfs: "local-lvm:1", unprivileged: 1 });
    first.sim.saveState();
    // Not stopped cleanly: a second simulator takes the folder as a restarted process would.
    const second = await start(dir);
    const c2 = second.client;
    expect(await c2.locateVm(601)).toMatchObject({
      type: "lxc",
      name: "kept",
      status: "running",
      hastate: "started",
    });
    expect(await c2.locateVm(602)).toBeUndefined();
    expect((await c2.containerStatus("pve1", 601)).status).toBe("running");
    await c1.close();
    await c2.close();
  });

  it("a clean stop and restart keep VMs, configs, volumes, HA, tasks and records", async () => {
    const dir = stateDir();
    const first = await start(dir);
    const c1 = first.client;
    for (const [vmid, node] of [
      [501, "pve1"],
      [502, "pve2"],
    ] as const)
      await c1.waitForTask(
        await c1.createVm(node, vmid, {
          name: `vm${vmid}`,
          scsi0: "local-lvm:2",
          net0: "virtio,bridge=vmbr0",
        }),
      );
    await c1.waitForTask(await c1.start("pve1", 501));
    await c1.addHaResource({ sid: "vm:502", state: "stopped" });
    await c1.waitForTask(
      await c1.downloadUrl("pve1", "local", {
        url: "https://example.org/t.iso",
        content: "iso",
        filename: "t.iso",
      }),
    );
    const before = {
      vms: await snapshot(c1),
      config: await c1.getConfig("pve1", 501),
      ha: await c1.listHaResources(),
      iso: (await c1.storageContent("pve1", "local", { content: "iso" })).map((v) => v.volid),
      records: first.sim.records().map((r) => [r.kind, r.vmid, r.exitstatus]),
    };
    await c1.close();
    await first.sim.stop();
    sims.splice(sims.indexOf(first.sim), 1);

    const second = await start(dir);
    const c2 = second.client;
    expect(await snapshot(c2)).toEqual(before.vms);
    expect(await c2.getConfig("pve1", 501)).toEqual(before.config);
    expect(await c2.listHaResources()).toEqual(before.ha);
    expect((await c2.storageContent("pve1", "local", { content: "iso" })).map((v) => v.volid)).toEqual(
      before.iso,
    );
    expect(second.sim.records().map((r) => [r.kind, r.vmid, r.exitstatus])).toEqual(before.records);
    // Old tasks can still be read, and ids keep counting after the saved ones.
    const create = second.sim.records()[0]!;
    expect(second.sim.tasks.tasks.get(create.upid)?.exitstatus).toBe("OK");
    const again = await c2.createVm("pve1", 503, { name: "vm503" });
    expect(second.sim.tasks.tasks.size).toBe(before.records.length + 1);
    expect([...second.sim.tasks.tasks.keys()].filter((u) => u === again.raw)).toHaveLength(1);
    await c2.waitForTask(again);
    await c2.close();
  });

  it("kill -9 mid-work, restart: the same VMs; a create cut off with the process leaves no VM", async () => {
    const dir = stateDir();
    const cli = spawn(
      process.execPath,
      [
        fileURLToPath(new URL("./cli.ts", import.meta.url)),
        "--port",
        "0",
        "--task-ms",
        "20",
        "--state-dir",
        dir,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    await new Promise<void>((resolve, reject) => {
      cli.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("END CERTIFICATE")) resolve();
      });
      cli.once("exit", (code) => reject(new Error(`CLI exited with ${code}: ${out}`)));
    });
    const url = /listening on (https:\/\/\S+)\/api2\/json/.exec(out)![1]!;
    const caPem = readFileSync(/CA:\s+(\S+)/.exec(out)![1]!, "utf8");
    const [, tokenId, tokenSecret] = /token:\s+PVEAPIToken=(\S+)=(\S+)/.exec(out)!;
    const c1 = clientFor({ url, tokenId: tokenId!, tokenSecret: tokenSecret!, caPem });
    for (const vmid of [601, 602, 603])
      await c1.waitForTask(await c1.createVm("pve1", vmid, { name: `vm${vmid}`, scsi0: "local-lvm:1" }));
    await c1.waitForTask(await c1.start("pve1", 602));
    // A create whose task is still running when the process dies: held by a fault until the kill.
    const admin = /Bearer (\S+)'/.exec(out)![1]!;
    const agent = new Agent({ connect: { ca: caPem } });
    const held = await fetch(`${url}/simulator/faults`, {
      method: "PUT",
      dispatcher: agent,
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ hangTasks: [{ type: "qmcreate", id: "604" }] }),
    });
    expect(held.status).toBe(200);
    await agent.close();
    await c1.createVm("pve1", 604, { name: "vm604", scsi0: "local-lvm:1" });
    const before = await snapshot(c1);
    await c1.close();
    const exited = new Promise((r) => cli.once("exit", r));
    cli.kill("SIGKILL");
    await exited;

    const { sim, client: c2 } = await start(dir);
    const after = await snapshot(c2);
    expect(after).toEqual(before.filter(([vmid]) => vmid !== 604));
    expect(after.map(([vmid, , status]) => [vmid, status])).toEqual([
      [601, "stopped"],
      [602, "running"],
      [603, "stopped"],
    ]);
    const cut = sim.records().find((r) => r.vmid === 604)!;
    expect(sim.tasks.tasks.get(cut.upid)?.exitstatus).toBe("unexpected status");
    // Its disk went with it; the id is free again.
    expect((await c2.storageContent("pve1", "local-lvm", { vmid: 604 })).length).toBe(0);
    await c2.waitForTask(await c2.createVm("pve1", 604, { name: "vm604" }));
    await c2.close();
  });
});
