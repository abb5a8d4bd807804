// The upgrade request's deadline: a Talos ≥ 1.13 upgrade pulls and installs before it answers, which on
// a real node takes minutes. Against a node that has not answered after 10 s, an ordinary call has
// failed DEADLINE_EXCEEDED while the upgrade request is still waiting.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TalosApiError } from "../../talos/client/errors.ts";
import { TalosClient } from "../../talos/client/talos-client.ts";
import { directConnections } from "./connections.ts";
import { adminClientOptions, UPGRADE_CALL_TIMEOUT_MS } from "./talos.ts";

// Accepts and never answers: every call to it lasts until its deadline.
let server: Server;
let port = 0;
const sockets: Socket[] = [];
beforeAll(async () => {
  server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

const scope = {
  opts: {
    connections: { ...directConnections, talosEndpoint: () => `127.0.0.1:${port}` },
  },
} as unknown as Parameters<typeof adminClientOptions>[0];

describe("adminClientOptions", () => {
  it("gives the upgrade request minutes, every other call 10 s", async () => {
    expect(adminClientOptions(scope, "10.0.3.16").timeoutMs).toBe(10_000);
    expect(adminClientOptions(scope, "10.0.3.16", "upgrade").timeoutMs).toBe(UPGRADE_CALL_TIMEOUT_MS);
    expect(UPGRADE_CALL_TIMEOUT_MS).toBeGreaterThanOrEqual(10 * 60_000);

    const ordinary = TalosClient.maintenance(...endpointAndOptions("call"));
    const upgrade = TalosClient.maintenance(...endpointAndOptions("upgrade"));
    let upgradeSettled = false;
    const pending = upgrade.upgrade("factory.talos.dev/nocloud-installer/x:v1.13.1").finally(() => {
      upgradeSettled = true;
    });
    pending.catch(() => {});
    const started = Date.now();
    const err = await ordinary.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TalosApiError);
    expect((err as TalosApiError).kind).toBe("deadline-exceeded");
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    // The upgrade was sent first and is still waiting past the ordinary deadline.
    await new Promise((r) => setTimeout(r, 500));
    expect(upgradeSettled).toBe(false);
    ordinary.close();
    upgrade.close();
  }, 60_000);
});

function endpointAndOptions(kind: "call" | "upgrade"): [string, { timeoutMs: number }] {
  const o = adminClientOptions(scope, "10.0.3.16", kind);
  return [o.endpoint, { timeoutMs: o.timeoutMs }];
}
