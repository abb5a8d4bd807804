import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheReaderOver } from "./cache-reader.ts";
import { KubeClient } from "./client.ts";
import { type ClusterAccessor, ClusterCache } from "./cluster-cache.ts";
import { Controller, type ReconcileContext } from "./controller.ts";
import { EventRecorder } from "./events.ts";
import { type FenceTarget, FencingError, fenceVerdict, leaseFence } from "./fencing.ts";
import { InformerFactory } from "./informer.ts";
import { createLogger } from "./logger.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { kubeConfigFor } from "./test-support.ts";

const iso = (ms: number) => new Date(ms).toISOString();

describe("fenceVerdict", () => {
  const now = Date.parse("2026-12-01T12:00:00Z");
  const margin = 5_000;
  it("refuses when another process holds the lease, however fresh", () => {
    const v = fenceVerdict(
      { holderIdentity: "other", renewTime: iso(now), leaseDurationSeconds: 15 },
      "me",
      now,
      margin,
    );
    expect(v).toEqual({ ok: false, why: 'the lease is held by "other"' });
  });
  it("refuses a released lease (no holder)", () => {
    expect(fenceVerdict({ holderIdentity: "", renewTime: iso(now) }, "me", now, margin).ok).toBe(false);
  });
  it("passes our lease renewed just now, valid for duration − margin", () => {
    const v = fenceVerdict(
      { holderIdentity: "me", renewTime: iso(now - 1_000), leaseDurationSeconds: 15 },
      "me",
      now,
      margin,
    );
    expect(v).toEqual({ ok: true, validForMs: 15_000 - 1_000 - margin });
  });
  it("refuses once the record's own leaseDurationSeconds (minus the margin) has passed", () => {
    // 5 s lease in the record: renewed 1 s ago leaves less than the 5 s margin.
    const short = { holderIdentity: "me", renewTime: iso(now - 1_000), leaseDurationSeconds: 5 };
    expect(fenceVerdict(short, "me", now, margin).ok).toBe(false);
    // Fully expired by the record: 15 s lease renewed 16 s ago.
    const expired = { holderIdentity: "me", renewTime: iso(now - 16_000), leaseDurationSeconds: 15 };
    const v = fenceVerdict(expired, "me", now, 0);
    expect(v.ok).toBe(false);
    // A record with a longer duration than any local setting is honoured too.
    const long = { holderIdentity: "me", renewTime: iso(now - 20_000), leaseDurationSeconds: 60 };
    expect(fenceVerdict(long, "me", now, margin)).toEqual({ ok: true, validForMs: 35_000 });
  });
  it("refuses a record without renewTime or duration, and microsecond renewTimes parse", () => {
    expect(fenceVerdict({ holderIdentity: "me", leaseDurationSeconds: 15 }, "me", now, 0).ok).toBe(false);
    expect(fenceVerdict({ holderIdentity: "me", renewTime: iso(now) }, "me", now, 0).ok).toBe(false);
    const micro = "2026-12-01T11:59:59.500123Z";
    expect(
      fenceVerdict({ holderIdentity: "me", renewTime: micro, leaseDurationSeconds: 15 }, "me", now, 0),
    ).toEqual({ ok: true, validForMs: 14_500 });
  });
});

// A loopback server that answers the Lease GET with whatever the test sets, and counts requests.
let server: Server;
let lease: object = {};
let requests = 0;
let client: KubeClient;
beforeAll(async () => {
  server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    requests++;
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(lease));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client = new KubeClient(kc);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function target(leading: () => boolean): FenceTarget {
  return { identity: "me", namespace: "ns", name: "l", isLeader: leading, safetyMarginMs: 5_000 };
}
const ours = () => ({
  spec: { holderIdentity: "me", renewTime: new Date().toISOString(), leaseDurationSeconds: 15 },
});

describe("leaseFence (live read)", () => {
  it("passes when the live record is ours and fresh and the elector leads", async () => {
    lease = ours();
    const before = requests;
    await leaseFence(
      client,
      target(() => true),
    )("test");
    expect(requests).toBe(before + 1); // a live read every time, no caching
    await leaseFence(
      client,
      target(() => true),
    )("test");
    expect(requests).toBe(before + 2);
  });
  it("refuses when the live record shows another holder, though the elector still believes it leads", async () => {
    lease = {
      spec: { holderIdentity: "standby", renewTime: new Date().toISOString(), leaseDurationSeconds: 15 },
    };
    await expect(
      leaseFence(
        client,
        target(() => true),
      )("delete VM 101"),
    ).rejects.toThrow(/fence before delete VM 101 refused: the lease is held by "standby"/);
  });
  it("refuses when the record's leaseDurationSeconds has passed", async () => {
    lease = {
      spec: {
        holderIdentity: "me",
        renewTime: new Date(Date.now() - 16_000).toISOString(),
        leaseDurationSeconds: 15,
      },
    };
    const err = await leaseFence(
      client,
      target(() => true),
    )("bootstrap").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencingError);
    expect(String(err)).toMatch(/less than the 5000 ms safety margin away/);
  });
  it("refuses without a request when the elector no longer leads or the signal aborted", async () => {
    lease = ours();
    const before = requests;
    await expect(
      leaseFence(
        client,
        target(() => false),
      )("x"),
    ).rejects.toThrow(/no longer leads/);
    await expect(
      leaseFence(
        client,
        target(() => true),
      )("x", AbortSignal.abort(new Error("gone"))),
    ).rejects.toThrow(/aborted \(gone\)/);
    expect(requests).toBe(before);
  });
  it("refuses when the elector gives up while the read is in flight", async () => {
    lease = ours();
    let calls = 0;
    // Leads at the first check, not at the second (after the GET).
    await expect(
      leaseFence(
        client,
        target(() => calls++ === 0),
      )("x"),
    ).rejects.toThrow(/stopped leading during/);
  });
});

describe("ctx.fence and ctx.client in a reconcile", () => {
  it("a refused fence aborts the reconcile: its client refuses further calls, and it is counted as fenced, not as an error", async () => {
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    const logger = createLogger({
      level: "error",
      destination: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    let seen: { ctx: ReconcileContext; fenceErr: unknown; writeErr: unknown } | undefined;
    const before = requests;
    const controller = new Controller(
      {
        name: "fenced",
        for: { apiVersion: "v1", kind: "ConfigMap" },
        async reconcile(_req, ctx) {
          const fenceErr = await ctx.fence("delete namespace").catch((e: unknown) => e);
          const writeErr = await ctx.client
            .request("POST", "/api/v1/namespaces/ns/configmaps", { body: {} })
            .catch((e: unknown) => e);
          seen = { ctx, fenceErr, writeErr };
          throw fenceErr;
        },
      },
      {
        client,
        informers: new InformerFactory(client),
        metrics,
        logger,
        recorder: new EventRecorder(client),
        fence: async (reason) => {
          throw new FencingError(`fence before ${reason} refused: test`);
        },
      },
    );
    controller.startWorkers();
    controller.queue.add("ns/a");
    const deadline = Date.now() + 5_000;
    while (!seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    await controller.stop(100);
    expect(seen?.fenceErr).toBeInstanceOf(FencingError);
    expect(seen?.ctx.signal.aborted).toBe(true);
    expect(seen?.writeErr).toBe(seen?.fenceErr); // refused locally with the fence's reason
    expect(requests).toBe(before); // nothing reached the server
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="fenced",result="fenced"\} [1-9]/);
    expect(text).toMatch(/controller_runtime_reconcile_errors_total\{controller="fenced"\} 0/);
  });

  it("the workload cluster's client from ctx.clusters is bound to the reconcile as well: after a refused fence it sends nothing", async () => {
    // The remote "cluster" is the same loopback server; the connection's own client stays unbound.
    const remoteClient = new KubeClient(client.kubeConfig);
    const connection: ClusterAccessor = {
      cluster: "ns/wl",
      client: remoteClient,
      informers: new InformerFactory(remoteClient),
      cache: cacheReaderOver("wl", () => []),
      live: () => true,
    };
    class OneConnection extends ClusterCache {
      override async get(): Promise<ClusterAccessor> {
        return connection;
      }
    }
    let seen: { fenceErr: unknown; remoteWriteErr: unknown; handedOut: KubeClient } | undefined;
    const before = requests;
    const controller = new Controller(
      {
        name: "fenced-remote",
        for: { apiVersion: "v1", kind: "ConfigMap" },
        async reconcile(_req, ctx) {
          const remote = await ctx.clusters.get({ namespace: "ns", name: "wl" });
          const fenceErr = await ctx.fence("delete namespace").catch((e: unknown) => e);
          const remoteWriteErr = await remote.client
            .request("POST", "/api/v1/namespaces/apps/configmaps", { body: {} })
            .catch((e: unknown) => e);
          seen = { fenceErr, remoteWriteErr, handedOut: remote.client };
          throw fenceErr;
        },
      },
      {
        client,
        informers: new InformerFactory(client),
        metrics: new RuntimeMetrics({ defaultMetrics: false }),
        logger: createLogger({ level: "error", destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
        recorder: new EventRecorder(client),
        clusters: new OneConnection({ client }),
        fence: async (reason) => {
          throw new FencingError(`fence before ${reason} refused: test`);
        },
      },
    );
    controller.startWorkers();
    controller.queue.add("ns/a");
    const deadline = Date.now() + 5_000;
    while (!seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await controller.stop(100);
    expect(seen?.fenceErr).toBeInstanceOf(FencingError);
    expect(seen?.remoteWriteErr).toBe(seen?.fenceErr);
    expect(seen?.handedOut).not.toBe(remoteClient);
    expect(requests).toBe(before); // nothing reached the "workload cluster"
    // The shared connection's client was not bound: the next reconcile can still use it.
    await remoteClient.request("GET", "/version");
    expect(requests).toBe(before + 1);
  });
});
