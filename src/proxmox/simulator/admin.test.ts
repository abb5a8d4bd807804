// Faults set over the admin endpoint, as a test in another process (or a human with curl) would.
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxmoxSimulator, startProxmoxSimulator } from "./server.ts";

let sim: ProxmoxSimulator;
let agent: Agent;

beforeAll(async () => {
  sim = await startProxmoxSimulator({ nodes: ["a1", "a2"] });
  agent = new Agent({ connect: { ca: sim.caPem } });
});
afterAll(async () => {
  await agent.close();
  await sim.stop();
});

const admin = (method: string, body?: unknown, secret = sim.adminSecret) =>
  fetch(`${sim.url}/simulator/faults`, {
    method,
    dispatcher: agent,
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
const api = (path: string) =>
  fetch(`${sim.url}/api2/json${path}`, {
    dispatcher: agent,
    headers: { authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}` },
  });

describe("admin endpoint", () => {
  it("refuses callers without the admin secret", async () => {
    expect((await admin("GET", undefined, "guess")).status).toBe(401);
  });

  it("sets latency, injected errors and a down node; DELETE clears them", async () => {
    const put = await admin("PUT", {
      latencyMs: 150,
      errors: [{ method: "GET", path: "^/version$", status: 503, message: "maintenance" }],
      nodesDown: ["a2"],
    });
    expect(put.status).toBe(200);
    const t0 = performance.now();
    const version = await api("/version");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(version.status).toBe(503);
    expect(version.statusText).toBe("maintenance");
    expect((await api("/nodes/a2/qemu")).status).toBe(595);
    expect((await api("/nodes/a1/qemu")).status).toBe(200);
    expect((await admin("DELETE")).status).toBe(200);
    expect((await api("/version")).status).toBe(200);
    expect((await api("/nodes/a2/qemu")).status).toBe(200);
  });

  it("rejects malformed fault settings", async () => {
    expect((await admin("PUT", { latencyMs: -5 })).status).toBe(400);
  });

  it("answers unknown API paths with 501 like Proxmox", async () => {
    const r = await api("/nodes/a1/lxc/100/snapshot");
    expect(r.status).toBe(501);
    expect(r.statusText).toBe("Method 'GET /nodes/a1/lxc/100/snapshot' not implemented");
  });

  it("lists the records of creates, power requests and deletes with their outcomes", async () => {
    const post = (path: string, body: string, method = "POST") =>
      fetch(`${sim.url}/api2/json${path}`, {
        method,
        dispatcher: agent,
        headers: {
          authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        ...(body ? { body } : {}),
      });
    expect((await post("/nodes/a1/qemu", "vmid=150&name=rec")).status).toBe(200);
    const until = async (n: number) => {
      for (let i = 0; i < 200; i++) {
        const r = await fetch(`${sim.url}/simulator/records`, {
          dispatcher: agent,
          headers: { authorization: `Bearer ${sim.adminSecret}` },
        });
        const { data } = (await r.json()) as { data: { kind: string; vmid?: number; exitstatus?: string }[] };
        const mine = data.filter((d) => d.vmid === 150);
        if (mine.length >= n && mine.every((d) => d.exitstatus)) return mine;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error("records did not settle");
    };
    await until(1);
    expect((await post("/nodes/a1/qemu/150/status/stop", "")).status).toBe(200);
    await until(2);
    expect((await post("/nodes/a1/qemu/150", "", "DELETE")).status).toBe(200);
    expect((await until(3)).map((r) => [r.kind, r.exitstatus])).toEqual([
      ["vm-create", "OK"],
      ["power", "OK"],
      ["vm-delete", "OK"],
    ]);
    const unauthorized = await fetch(`${sim.url}/simulator/records`, { dispatcher: agent });
    expect(unauthorized.status).toBe(401);
  });
});
