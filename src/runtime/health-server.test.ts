import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { HealthServer } from "./health-server.ts";

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
});

describe("HealthServer", () => {
  it("answers /readyz 503 until its checks pass, then 200; /healthz stays 200; /metrics serves the registry", async () => {
    const registry = new Registry();
    let synced = false;
    server = new HealthServer(registry);
    server.addHealthzCheck("ping", () => true);
    server.addReadyzCheck("informers-synced", () => synced);
    const port = await server.listen(0, "127.0.0.1");
    const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);

    const notReady = await get("/readyz");
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain("[-]informers-synced failed");
    expect((await get("/healthz")).status).toBe(200);
    synced = true;
    expect((await get("/readyz")).status).toBe(200);
    expect((await get("/readyz/informers-synced")).status).toBe(200);
    expect((await get("/readyz/nope")).status).toBe(503);
    expect((await get("/metrics")).headers.get("content-type")).toContain("text/plain");
    expect((await get("/other")).status).toBe(404);
  });

  it("treats a throwing check as failed", async () => {
    server = new HealthServer(new Registry());
    server.addHealthzCheck("broken", () => {
      throw new Error("x");
    });
    const port = await server.listen(0, "127.0.0.1");
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(503);
  });
});
