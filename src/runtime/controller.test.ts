import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { Controller, type ControllerSpec, type ReconcileResult } from "./controller.ts";
import { TerminalError } from "./errors.ts";
import { EventRecorder } from "./events.ts";
import { InformerFactory } from "./informer.ts";
import { createLogger } from "./logger.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { kubeConfigFor, tick, until } from "./test-support.ts";

// The controller is exercised for real (queue, workers, metrics); keys are fed the way informer handlers
// feed them, so no API server is needed. The kubeconfig points nowhere and is never dialled.
function setUp(spec: Omit<ControllerSpec, "for" | "name"> & { name?: string }) {
  const kc = kubeConfigFor("https://127.0.0.1:1");
  const client = new KubeClient(kc);
  const metrics = new RuntimeMetrics({ defaultMetrics: false });
  const logLines: string[] = [];
  const logger = createLogger({
    level: "debug",
    destination: new Writable({
      write(c, _e, cb) {
        logLines.push(String(c));
        cb();
      },
    }),
  });
  const controller = new Controller(
    { name: spec.name ?? "test", for: { apiVersion: "v1", kind: "ConfigMap" }, ...spec },
    { client, informers: new InformerFactory(client), metrics, logger, recorder: new EventRecorder(client) },
  );
  return { controller, metrics, logLines };
}

async function counter(
  metrics: RuntimeMetrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = (await metrics.registry.getSingleMetric(name)?.get())!;
  return m.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

describe("Controller", () => {
  it("coalesces a burst of events for one key into one reconcile", async () => {
    const calls: string[] = [];
    const { controller } = setUp({
      reconcile: async (req) => {
        calls.push(req.key);
      },
    });
    for (let i = 0; i < 200; i++) controller.queue.add("ns/a");
    controller.startWorkers();
    await tick(50);
    expect(calls).toEqual(["ns/a"]);
    await controller.stop(1000);
  });

  it("never runs two reconciles of one key at once, while different keys run in parallel up to the bound", async () => {
    const inFlight = new Map<string, number>();
    let maxPerKey = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    let calls = 0;
    const { controller } = setUp({
      maxConcurrentReconciles: 3,
      reconcile: async (req) => {
        calls++;
        const n = (inFlight.get(req.key) ?? 0) + 1;
        inFlight.set(req.key, n);
        maxPerKey = Math.max(maxPerKey, n);
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        await tick(15);
        inFlight.set(req.key, n - 1);
        concurrent--;
      },
    });
    controller.startWorkers();
    for (let round = 0; round < 10; round++) {
      for (const k of ["ns/a", "ns/b", "ns/c", "ns/d", "ns/e"]) controller.queue.add(k);
      await tick(5);
    }
    await tick(300);
    expect(maxPerKey).toBe(1);
    expect(maxConcurrent).toBe(3);
    // Re-adds during processing are not lost: each key ran again after its in-flight reconcile.
    expect(calls).toBeGreaterThan(5);
    await controller.stop(1000);
  });

  it("retries a failing key with growing, capped backoff, then forgets it on success", async () => {
    const times: number[] = [];
    const { controller, metrics } = setUp({
      backoff: { baseMs: 50, maxMs: 200 },
      reconcile: async () => {
        times.push(performance.now());
        if (times.length < 5) throw new Error("not yet");
      },
    });
    controller.startWorkers();
    controller.queue.add("ns/flaky");
    await until(() => times.length === 5);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 50, 100, 200, then capped at 200 (uncapped it would be 400); timers fire late, never early.
    expect(gaps[0]).toBeGreaterThanOrEqual(49);
    expect(gaps[1]).toBeGreaterThanOrEqual(99);
    expect(gaps[2]).toBeGreaterThanOrEqual(199);
    expect(gaps[3]).toBeGreaterThanOrEqual(199);
    expect(gaps[3]).toBeLessThan(390);
    await tick(20);
    expect(controller.queue.numRequeues("ns/flaky")).toBe(0);
    expect(await counter(metrics, "controller_runtime_reconcile_total", { result: "error" })).toBe(4);
    expect(await counter(metrics, "controller_runtime_reconcile_total", { result: "success" })).toBe(1);
    expect(await counter(metrics, "controller_runtime_reconcile_errors_total", {})).toBe(4);
    expect(await counter(metrics, "workqueue_retries_total", {})).toBe(4);
    await controller.stop(1000);
  });

  it("does not retry a terminal error, and logs and counts it", async () => {
    let calls = 0;
    const { controller, metrics, logLines } = setUp({
      reconcile: async () => {
        calls++;
        throw new TerminalError("spec.nodes[0].ip is outside the node subnet");
      },
    });
    controller.startWorkers();
    controller.queue.add("ns/bad");
    await tick(200);
    expect(calls).toBe(1);
    expect(await counter(metrics, "controller_runtime_terminal_reconcile_errors_total", {})).toBe(1);
    const line = JSON.parse(logLines.find((l) => l.includes("terminal"))!);
    expect(line).toMatchObject({ level: "error", controller: "test", namespace: "ns", name: "bad" });
    expect(line.reconcileID).toMatch(/^[0-9a-f-]{36}$/);
    expect(line.err.message).toContain("outside the node subnet");
    await controller.stop(1000);
  });

  it("reconciles again after requeueAfter, counted as requeue_after", async () => {
    const times: number[] = [];
    const { controller, metrics } = setUp({
      reconcile: async (): Promise<ReconcileResult> => {
        times.push(performance.now());
        return times.length < 3 ? { requeueAfter: 60 } : undefined;
      },
    });
    controller.startWorkers();
    controller.queue.add("waiting");
    await until(() => times.length === 3);
    await tick(150);
    expect(times).toHaveLength(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(59);
    expect(await counter(metrics, "controller_runtime_reconcile_total", { result: "requeue_after" })).toBe(2);
    await controller.stop(1000);
  });

  it("on stop, takes no new keys and waits for the in-flight reconcile to finish", async () => {
    const events: string[] = [];
    const { controller } = setUp({
      reconcile: async (req) => {
        events.push(`start ${req.key}`);
        await tick(100);
        events.push(`end ${req.key}`);
      },
    });
    controller.startWorkers();
    controller.queue.add("a");
    controller.queue.add("b");
    await tick(10);
    await controller.stop(5000);
    expect(events).toEqual(["start a", "end a"]);
  });

  it("exposes controller-runtime's metric names with the controller label", async () => {
    const { controller, metrics } = setUp({
      name: "peertenant",
      maxConcurrentReconciles: 2,
      reconcile: async () => {},
    });
    controller.startWorkers();
    controller.queue.add("x");
    await tick(20);
    const text = await metrics.registry.metrics();
    for (const name of [
      'controller_runtime_reconcile_total{controller="peertenant",result="success"} 1',
      'controller_runtime_max_concurrent_reconciles{controller="peertenant"} 2',
      'controller_runtime_active_workers{controller="peertenant"} 0',
      'workqueue_adds_total{name="peertenant",controller="peertenant"} 1',
      'workqueue_depth{name="peertenant",controller="peertenant"} 0',
      "controller_runtime_reconcile_time_seconds_bucket",
      "workqueue_queue_duration_seconds_bucket",
      "workqueue_work_duration_seconds_bucket",
      "workqueue_unfinished_work_seconds",
      "workqueue_longest_running_processor_seconds",
    ]) {
      expect(text).toContain(name);
    }
    await controller.stop(1000);
  });
});
