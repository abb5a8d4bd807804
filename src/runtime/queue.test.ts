import { afterEach, describe, expect, it, vi } from "vitest";
import { ItemBackoff } from "./backoff.ts";
import { LOW_PRIORITY, WorkQueue } from "./queue.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("WorkQueue", () => {
  it("hands out a key added many times before a worker takes it only once", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 100; i++) q.add("ns/a");
    q.add("ns/b");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    expect(q.len()).toBe(0);
  });

  it("keeps FIFO order of distinct keys", async () => {
    const q = new WorkQueue();
    for (const k of ["c", "a", "b", "a"]) q.add(k);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(["c", "a", "b"]);
  });

  it("does not hand a key being processed to a second worker; re-added, it comes back after done", async () => {
    const q = new WorkQueue();
    q.add("k");
    const first = await q.get();
    q.add("k"); // changed while being processed
    q.add("k");
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBeUndefined();
    expect(q.isProcessing("k")).toBe(true);
    q.done(first!);
    await new Promise((r) => setTimeout(r, 0));
    expect(second).toBe("k");
  });

  it("drops a key that was not re-added during processing", async () => {
    const q = new WorkQueue();
    q.add("k");
    q.done((await q.get())!);
    expect(q.len()).toBe(0);
    expect(q.isProcessing("k")).toBe(false);
  });

  it("addAfter delivers after the delay and keeps only the earliest deadline per key", async () => {
    vi.useFakeTimers();
    const q = new WorkQueue({ now: () => Date.now() });
    q.addAfter("k", 1000);
    q.addAfter("k", 300);
    q.addAfter("k", 5000);
    vi.advanceTimersByTime(299);
    expect(q.len()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
    await q.get().then((k) => q.done(k!));
    vi.advanceTimersByTime(10_000);
    expect(q.len()).toBe(0);
  });

  it("addRateLimited waits the key's backoff, which grows until forget", () => {
    vi.useFakeTimers();
    const q = new WorkQueue({ backoff: new ItemBackoff({ baseMs: 5, maxMs: 40 }), now: () => Date.now() });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited("k"))).toEqual([5, 10, 20, 40, 40]);
    expect(q.numRequeues("k")).toBe(5);
    q.forget("k");
    expect(q.addRateLimited("k")).toBe(5);
  });

  it("after shutDown hands out nothing, accepts nothing, and drain waits for in-flight keys", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    const a = await q.get();
    const waiting = q.get(); // gets b
    expect(await waiting).toBe("b");
    const idle = q.get();
    q.shutDown();
    expect(await idle).toBeUndefined();
    q.add("c");
    expect(await q.get()).toBeUndefined();
    let drained = false;
    const d = q.drain().then(() => {
      drained = true;
    });
    q.done(a!);
    await new Promise((r) => setTimeout(r, 0));
    expect(drained).toBe(false);
    q.done("b");
    await d;
    expect(drained).toBe(true);
  });

  it("reports adds, depth, delayed retries and timings to its observer", async () => {
    const seen = { added: 0, depth: [] as number[], dequeued: 0, finished: 0, retried: 0 };
    const q = new WorkQueue({
      observer: {
        added: () => seen.added++,
        depth: (n) => seen.depth.push(n),
        dequeued: () => seen.dequeued++,
        finished: () => seen.finished++,
        retried: () => seen.retried++,
      },
    });
    q.add("a");
    q.add("a");
    q.add("b");
    q.done((await q.get())!);
    q.addAfter("x", 60_000);
    q.shutDown();
    expect(seen).toEqual({ added: 2, depth: [1, 2, 1, 0], dequeued: 1, finished: 1, retried: 1 });
  });

  it("serves every key of a higher priority before any of a lower one, FIFO within each", async () => {
    const q = new WorkQueue();
    for (const k of ["l1", "l2", "l3"]) q.add(k, { priority: LOW_PRIORITY });
    q.add("h1");
    q.add("l4", { priority: LOW_PRIORITY });
    q.add("h2");
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const k = (await q.get())!;
      order.push(k);
      q.done(k);
    }
    expect(order).toEqual(["h1", "h2", "l1", "l2", "l3", "l4"]);
    expect(q.len()).toBe(0);
  });

  it("moves a waiting key up when it is added again with a higher priority, and never down", async () => {
    const q = new WorkQueue();
    for (const k of ["a", "b", "c"]) q.add(k, { priority: LOW_PRIORITY });
    q.add("c"); // a user edited c while the initial list was still queued
    q.add("a", { priority: LOW_PRIORITY }); // a resync of a: stays where it was
    expect(q.len()).toBe(3);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push((await q.get())!);
    expect(order).toEqual(["c", "a", "b"]);
    expect(q.len()).toBe(0);
    expect(await Promise.race([q.get(), new Promise((r) => setTimeout(() => r("none"), 20))])).toBe("none");
  });

  it("remembers the priority of a key re-added while processing and of the key handed out", async () => {
    const q = new WorkQueue();
    q.add("k", { priority: LOW_PRIORITY });
    const k = (await q.get())!;
    expect(q.priorityOf(k)).toBe(LOW_PRIORITY);
    q.add("k", { priority: LOW_PRIORITY });
    q.add("other", { priority: LOW_PRIORITY });
    q.add("k"); // raised while processing
    q.done(k);
    expect(await q.get()).toBe("k");
    expect(q.priorityOf("k")).toBe(0);
  });

  it("keeps the priority of a delayed or rate-limited add", async () => {
    vi.useFakeTimers();
    const q = new WorkQueue({ backoff: new ItemBackoff({ baseMs: 5, maxMs: 5 }), now: () => Date.now() });
    q.addRateLimited("slow", { priority: LOW_PRIORITY });
    q.addAfter("fast", 5);
    vi.advanceTimersByTime(5);
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("fast");
    expect(await q.get()).toBe("slow");
  });
});
