// vzdump is recorded like creates, deletes and power requests, so a test can order a backup against them
// and see how it ended; a refused vzdump (no such VM) leaves no record.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../client.ts";
import type { ProxmoxSimulator } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "./test-support.ts";

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
beforeAll(async () => {
  rig = await startSimulatorWithClient({ taskDurationMs: 20 });
  ({ sim, client } = rig);
});
afterAll(() => rig.stop());

describe("simulator records of vzdump", () => {
  it("records one backup per vzdump task with its vmid and outcome, after the stop it follows", async () => {
    await client.waitForTask(await client.createVm("pve1", 700, { name: "vm700", scsi0: "local-lvm:1" }));
    await client.waitForTask(await client.start("pve1", 700));
    await client.waitForTask(await client.stop("pve1", 700));
    const task = await client.backup("pve1", { vmid: 700, storage: "local", mode: "stop" });
    await client.waitForTask(task);
    const records = sim.records().filter((r) => r.vmid === 700);
    expect(records.map((r) => `${r.kind}:${r.action ?? ""}:${r.exitstatus}`)).toEqual([
      "vm-create::OK",
      "power:start:OK",
      "power:stop:OK",
      "backup::OK",
    ]);
    expect(records[3]!.upid).toBe(task.raw);
    await expect(client.backup("pve1", { vmid: 701, storage: "local" })).rejects.toThrow();
    expect(sim.records().filter((r) => r.vmid === 701)).toEqual([]);
  });
});
