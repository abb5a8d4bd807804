// Power operations with qemu-server's split between what the API call refuses (HTTP 500 at once) and
// what its worker decides (a task that fails, or ends OK having done nothing). Each case tries the
// request in the state where a naive simulator would answer differently.
import { type Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../client.ts";
import { ProxmoxApiError } from "../errors.ts";
import type { Upid } from "../upid.ts";
import type { ProxmoxSimulator } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient, taskOutcome } from "./test-support.ts";

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let agent: Agent;

beforeAll(async () => {
  rig = await startSimulatorWithClient({ taskDurationMs: 20 }, { timeoutMs: 10_000 });
  ({ sim, client, agent } = rig);
});
afterAll(() => rig.stop());

async function vm(vmid: number, running = false) {
  await client.waitForTask(await client.createVm("pve1", vmid, { name: `vm${vmid}`, scsi0: "local-lvm:1" }));
  if (running) await client.waitForTask(await client.start("pve1", vmid));
}

/** The task's exit status ("OK" or the failure text). */
const outcome = (task: Promise<Upid>) => taskOutcome(client, task);

async function refusal(call: Promise<unknown>): Promise<[number, string]> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  return [(err as ProxmoxApiError).status, (err as ProxmoxApiError).proxmoxMessage];
}

const status = async (vmid: number) => (await client.status("pve1", vmid)).status;

describe("start", () => {
  it("of a running VM is accepted and its task fails with 'already running'", async () => {
    await vm(3001, true);
    expect(await outcome(client.start("pve1", 3001))).toBe("VM 3001 already running");
    expect(await status(3001)).toBe("running");
  });

  it("of a missing VM is accepted and its task fails on the missing config", async () => {
    expect(await outcome(client.start("pve1", 3999))).toBe(
      "Configuration file 'nodes/pve1/qemu-server/3999.conf' does not exist",
    );
  });

  it("of a locked VM fails the task with the lock, and the VM stays stopped", async () => {
    await vm(3002);
    sim.faults.set({ hangTasks: [{ type: "vzdump", id: "3002" }] });
    const backup = await client.backup("pve1", { vmid: 3002, storage: "local", mode: "snapshot" });
    expect(await outcome(client.start("pve1", 3002))).toBe("VM is locked (backup)");
    expect(await status(3002)).toBe("stopped");
    sim.faults.reset();
    await client.waitForTask(backup);
  });

  it("twice at once: the worker re-checks, so exactly one start succeeds", async () => {
    await vm(3003);
    const results = await Promise.all([
      outcome(client.start("pve1", 3003)),
      outcome(client.start("pve1", 3003)),
    ]);
    expect(results.sort()).toEqual(["OK", "VM 3003 already running"]);
  });
});

describe("stop and shutdown", () => {
  it("of a stopped VM are no-op tasks that end OK", async () => {
    await vm(3010);
    expect(await outcome(client.stop("pve1", 3010))).toBe("OK");
    expect(await outcome(client.shutdown("pve1", 3010))).toBe("OK");
    expect(await status(3010)).toBe("stopped");
  });

  it("of a missing VM fail the task (check_running finds no config on the node)", async () => {
    expect(await outcome(client.stop("pve1", 3998))).toBe(
      "unable to find configuration file for VM 3998 on node 'pve1'",
    );
    expect(await outcome(client.shutdown("pve1", 3998))).toBe(
      "unable to find configuration file for VM 3998 on node 'pve1'",
    );
  });

  it("of a running, locked VM fail with the lock; of a stopped, locked VM they stay no-ops", async () => {
    await vm(3011, true);
    await vm(3012);
    sim.faults.set({ hangTasks: [{ type: "vzdump" }] });
    const backups = [
      await client.backup("pve1", { vmid: 3011, storage: "local", mode: "snapshot" }),
      await client.backup("pve1", { vmid: 3012, storage: "local", mode: "snapshot" }),
    ];
    expect(await outcome(client.stop("pve1", 3011))).toBe("VM is locked (backup)");
    expect(await outcome(client.shutdown("pve1", 3011))).toBe("VM is locked (backup)");
    expect(await status(3011)).toBe("running");
    expect(await outcome(client.stop("pve1", 3012))).toBe("OK");
    sim.faults.reset();
    for (const b of backups) await client.waitForTask(b);
    expect(await outcome(client.stop("pve1", 3011))).toBe("OK");
    expect(await status(3011)).toBe("stopped");
  });
});

describe("reboot", () => {
  it("of a stopped or missing VM is refused up front with a 500", async () => {
    await vm(3020);
    expect(await refusal(client.reboot("pve1", 3020))).toEqual([500, "VM 3020 not running"]);
    expect(await refusal(client.reboot("pve1", 3997))).toEqual([
      500,
      "unable to find configuration file for VM 3997 on node 'pve1'",
    ]);
  });

  it("of a running, locked VM is accepted and its task fails with the lock", async () => {
    await vm(3021, true);
    sim.faults.set({ hangTasks: [{ type: "vzdump", id: "3021" }] });
    const backup = await client.backup("pve1", { vmid: 3021, storage: "local", mode: "snapshot" });
    expect(await outcome(client.reboot("pve1", 3021))).toBe("VM is locked (backup)");
    sim.faults.reset();
    await client.waitForTask(backup);
    expect(await outcome(client.reboot("pve1", 3021))).toBe("OK");
    expect(await status(3021)).toBe("running");
  });
});

describe("options and HA", () => {
  it("skiplock is root@pam's alone: a token gets Proxmox's 400", async () => {
    await vm(3030);
    for (const action of ["start", "stop", "shutdown"]) {
      const response = await fetch(`${sim.url}/api2/json/nodes/pve1/qemu/3030/status/${action}`, {
        method: "POST",
        dispatcher: agent,
        headers: {
          authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: "skiplock=1",
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { errors: unknown }).errors).toEqual({
        skiplock: "Only root may use this option.",
      });
    }
  });

  it("an HA-managed VM's start and stop become hastart/hastop requests", async () => {
    await vm(3031);
    await client.addHaResource({ sid: "vm:3031", state: "stopped" });
    const start = await client.start("pve1", 3031);
    expect(start.type).toBe("hastart");
    await client.waitForTask(start);
    expect(await status(3031)).toBe("running");
    const stop = await client.stop("pve1", 3031);
    expect(stop.type).toBe("hastop");
    await client.waitForTask(stop);
    expect(await status(3031)).toBe("stopped");
  });

  it("records every power request with its task's outcome", () => {
    const mine = sim
      .records()
      .filter((r) => r.kind === "power" && r.vmid === 3001)
      .map((r) => [r.action, r.exitstatus]);
    expect(mine).toEqual([
      ["start", "OK"],
      ["start", "VM 3001 already running"],
    ]);
  });
});
