// A Proxmox client bound to a reconcile's signal: nothing is sent after the abort, and nothing retried.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "./client.ts";
import type { ProxmoxSimulator } from "./simulator/index.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "./simulator/test-support.ts";

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
beforeAll(async () => {
  rig = await startSimulatorWithClient();
  ({ sim, client } = rig);
});
afterAll(() => rig.stop());

describe("ProxmoxClient.withSignal", () => {
  it("refuses reads and writes after the abort without sending a request", async () => {
    await client.listNodes();
    const sent = client.requestCount;
    const answered = sim.requests.length;
    const ac = new AbortController();
    const view = client.withSignal(ac.signal);
    await view.listNodes(); // works until aborted
    expect(client.requestCount).toBe(sent + 1);
    const reason = new Error("leadership lost");
    ac.abort(reason);
    await expect(view.listNodes()).rejects.toBe(reason);
    await expect(view.setTags("pve1", 100, ["x"])).rejects.toBe(reason);
    await expect(view.stop("pve1", 100)).rejects.toBe(reason);
    expect(client.requestCount).toBe(sent + 1);
    expect(sim.requests.length).toBe(answered + 1); // the simulator saw only the call before the abort
    await client.listNodes(); // the root client is unaffected
  });

  it("a view of a view obeys both signals", async () => {
    const outer = new AbortController();
    const inner = new AbortController();
    const view = client.withSignal(outer.signal).withSignal(inner.signal);
    await view.version();
    outer.abort(new Error("outer"));
    await expect(view.version()).rejects.toThrow("outer");
  });

  it("cancels a call in flight and does not retry it", async () => {
    const sent = client.requestCount;
    const ac = new AbortController();
    const pending = client.withSignal(ac.signal).listVms();
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 50)); // a retry would have been sent by now (5 ms backoff)
    expect(client.requestCount - sent).toBeLessThanOrEqual(1);
  });
});
