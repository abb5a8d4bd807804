// A Talos client bound to a reconcile's signal: an aborted reconcile cannot reach the node (no second
// bootstrap), and a call in flight is cancelled.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosClient } from "./talos-client.ts";

// A TCP listener that accepts and never answers: a call to it hangs until cancelled; connections are counted.
let server: Server;
let port = 0;
let connections = 0;
const sockets: Socket[] = [];
beforeAll(async () => {
  server = createServer((s) => {
    connections++;
    sockets.push(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("TalosClient.withSignal", () => {
  it("refuses a call after the abort without connecting", async () => {
    const client = TalosClient.maintenance(`127.0.0.1:${port}`, { timeoutMs: 10_000 });
    const ac = new AbortController();
    const reason = new Error("leadership lost");
    ac.abort(reason);
    const view = client.withSignal(ac.signal);
    await expect(view.bootstrap()).rejects.toBe(reason);
    await expect(view.etcdRemoveMemberById("1")).rejects.toBe(reason);
    await expect(view.upgrade("installer:v1")).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 100));
    expect(connections).toBe(0);
    client.close();
  });

  it("cancels a call in flight at once, long before its deadline", async () => {
    const client = TalosClient.maintenance(`127.0.0.1:${port}`, { timeoutMs: 30_000 });
    const ac = new AbortController();
    const started = Date.now();
    const pending = client.withSignal(ac.signal).bootstrap();
    while (connections === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(10_000);
    client.close();
  });
});
