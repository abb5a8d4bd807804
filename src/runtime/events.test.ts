import { afterEach, describe, expect, it, vi } from "vitest";
import type { KubeClient } from "./client.ts";
import { ApiError } from "./errors.ts";
import { EventRecorder, microTime, TokenBucket } from "./events.ts";
import type { KubeObject } from "./object.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("microTime", () => {
  it("formats RFC 3339 with microseconds, as events.k8s.io/v1 eventTime requires", () => {
    expect(microTime(new Date("2026-11-25T06:00:00.123Z"))).toBe("2026-11-25T06:00:00.123000Z");
  });
});

// What the recorder sends, counted; the API server's side (that an Event with a series is accepted and
// folded) is in e2e/runtime/helpers.test.ts and e2e/runtime/status-events.test.ts.
function recordingClient() {
  const creates: KubeObject[] = [];
  const patches: { name: string; body: { series: { count: number; lastObservedTime: string } } }[] = [];
  let failCreates = 0;
  let patchError: Error | undefined;
  const client = {
    async create(obj: KubeObject) {
      if (failCreates > 0) {
        failCreates--;
        throw apiError(503, "ServiceUnavailable", "brownout");
      }
      creates.push(obj);
      return obj;
    },
    async patch(_gvk: unknown, key: { name: string }, body: (typeof patches)[number]["body"]) {
      if (patchError) throw patchError;
      patches.push({ name: key.name, body });
      return {};
    },
  } as unknown as KubeClient;
  return {
    client,
    creates,
    patches,
    failNextCreates: (n: number) => {
      failCreates = n;
    },
    failPatches: (err: Error | undefined) => {
      patchError = err;
    },
  };
}

const apiError = (code: number, reason: string, message: string) =>
  new ApiError({ code, reason, message, method: "PATCH", path: "/apis/events.k8s.io/v1" });

const obj = (name: string): KubeObject => ({
  apiVersion: "homelab.shdr.ch/v1alpha1",
  kind: "PeerTenant",
  metadata: { name, uid: `uid-${name}` },
});
const failed = { type: "Warning" as const, reason: "ReconcileFailed", action: "Reconcile", note: "boom" };

function clock(start = "2026-12-01T10:00:00Z") {
  let t = Date.parse(start);
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

describe("EventRecorder", () => {
  it("creates the first of 100 repeats, counts the rest in memory and writes them in one series update", async () => {
    const api = recordingClient();
    const c = clock();
    const rec = new EventRecorder(api.client, { now: c.now });
    for (let i = 0; i < 100; i++) {
      await rec.record(obj("t"), failed);
      c.advance(1000);
    }
    expect(api.creates).toHaveLength(1);
    expect(api.patches).toHaveLength(0);
    await rec.flush();
    expect(api.patches).toHaveLength(1);
    expect(api.patches[0]!.body.series).toEqual({
      count: 100,
      lastObservedTime: microTime(new Date(Date.parse("2026-12-01T10:00:00Z") + 99_000)),
    });
    await rec.flush(); // nothing new counted: nothing written
    expect(api.patches).toHaveLength(1);
    expect(rec.stats).toEqual({ created: 1, patched: 1, dropped: 0, aggregated: 99 });
    await rec.stop();
  });

  it("writes counted repeats every flush interval and on stop, not once per repeat", async () => {
    vi.useFakeTimers({ now: Date.parse("2026-12-01T10:00:00Z") });
    const api = recordingClient();
    const rec = new EventRecorder(api.client, { flushIntervalMs: 30_000 });
    await rec.record(obj("t"), failed);
    await rec.record(obj("t"), failed);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(api.patches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(api.patches.map((p) => p.body.series.count)).toEqual([2]);
    await rec.record(obj("t"), failed);
    await rec.stop();
    expect(api.patches.map((p) => p.body.series.count)).toEqual([2, 3]);
    await vi.advanceTimersByTimeAsync(120_000); // the timer is gone after stop
    expect(api.patches).toHaveLength(2);
  });

  it("limits new Events per object to a burst of 25, then one per 5 minutes", async () => {
    const api = recordingClient();
    const c = clock();
    const rec = new EventRecorder(api.client, { now: c.now });
    for (let i = 0; i < 30; i++) await rec.record(obj("noisy"), { ...failed, note: `attempt ${i}` });
    expect(api.creates).toHaveLength(25);
    expect(rec.stats.dropped).toBe(5);
    await rec.record(obj("quiet"), failed); // another object is not held back by the noisy one
    expect(api.creates).toHaveLength(26);
    c.advance(4 * 60 * 1000);
    await rec.record(obj("noisy"), { ...failed, note: "after 4 min" });
    expect(api.creates).toHaveLength(26);
    c.advance(60 * 1000);
    await rec.record(obj("noisy"), { ...failed, note: "after 5 min" });
    await rec.record(obj("noisy"), { ...failed, note: "right after" });
    expect(api.creates.map((e) => e["note"]).slice(26)).toEqual(["after 5 min"]);
    await rec.stop();
  });

  it("limits the writes of all objects together with the global bucket, series updates included", async () => {
    const api = recordingClient();
    const c = clock();
    const rec = new EventRecorder(api.client, {
      now: c.now,
      limits: { globalBurst: 10, globalRefillMs: 1000 },
    });
    for (let i = 0; i < 40; i++) await rec.record(obj(`t${i}`), failed);
    expect(api.creates).toHaveLength(10);
    for (let i = 0; i < 10; i++) await rec.record(obj(`t${i}`), failed); // repeats: no tokens needed
    await rec.flush();
    expect(api.patches).toHaveLength(0); // no token left: they wait
    c.advance(3000);
    await rec.flush();
    expect(api.patches).toHaveLength(3);
    c.advance(60_000);
    await rec.flush();
    expect(api.patches).toHaveLength(10);
    expect(new Set(api.patches.map((p) => p.name)).size).toBe(10);
    await rec.stop();
  });

  it("TokenBucket refills fractionally and never above its burst", () => {
    const b = new TokenBucket(2, 1000, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.take(500)).toBe(false);
    expect(b.take(1000)).toBe(true);
    expect(b.isFull(1_000_000)).toBe(true);
    expect([b.take(1_000_000), b.take(1_000_000), b.take(1_000_000)]).toEqual([true, true, false]);
  });

  it("closes a series after 6 minutes without a repeat: the next occurrence is a new Event", async () => {
    const api = recordingClient();
    const c = clock();
    const rec = new EventRecorder(api.client, { now: c.now });
    await rec.record(obj("t"), failed);
    await rec.record(obj("t"), failed);
    c.advance(6 * 60 * 1000 + 1);
    await rec.record(obj("t"), failed);
    expect(api.creates).toHaveLength(2);
    expect(api.patches.map((p) => p.body.series.count)).toEqual([2]); // the old series, closed with its count
    await rec.stop();
  });

  it("survives a brownout: a failed create is not thrown from record and is tried again next time", async () => {
    const api = recordingClient();
    const rec = new EventRecorder(api.client, { now: clock().now });
    api.failNextCreates(1);
    await rec.record(obj("t"), failed);
    await expect(
      (async () => {
        api.failNextCreates(1);
        await rec.recordOrThrow(obj("t"), failed);
      })(),
    ).rejects.toThrow(/brownout/);
    await rec.record(obj("t"), failed);
    expect(api.creates).toHaveLength(1);
    await rec.stop();
  });

  it("retries a failed series update at the next flush, and forgets a series whose Event is gone", async () => {
    const api = recordingClient();
    const c = clock();
    const rec = new EventRecorder(api.client, { now: c.now });
    await rec.record(obj("t"), failed);
    await rec.record(obj("t"), failed);
    api.failPatches(apiError(500, "InternalError", "down"));
    await rec.flush();
    api.failPatches(undefined);
    await rec.flush();
    expect(api.patches.map((p) => p.body.series.count)).toEqual([2]);

    await rec.record(obj("t"), failed);
    api.failPatches(apiError(404, "NotFound", "expired"));
    await rec.flush();
    api.failPatches(undefined);
    await rec.record(obj("t"), failed); // the Event expired: a new one
    expect(api.creates).toHaveLength(2);
    await rec.stop();
  });

  it("counts repeats that arrive while the first create is still in flight instead of creating twice", async () => {
    const api = recordingClient();
    const rec = new EventRecorder(api.client, { now: clock().now });
    await Promise.all(Array.from({ length: 20 }, () => rec.record(obj("t"), failed)));
    expect(api.creates).toHaveLength(1);
    await rec.stop();
    expect(api.patches.map((p) => p.body.series.count)).toEqual([20]);
  });

  it("after a stop without flush (a lost lease) writes nothing more, counted or new", async () => {
    const api = recordingClient();
    const rec = new EventRecorder(api.client, { now: clock().now });
    await rec.record(obj("t"), failed);
    await rec.record(obj("t"), failed);
    await rec.stop({ flush: false });
    await rec.record(obj("other"), failed);
    await rec.flush();
    expect(api.creates).toHaveLength(1);
    expect(api.patches).toHaveLength(0);
  });
});
