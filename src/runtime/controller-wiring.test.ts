import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { Controller, type ControllerSpec } from "./controller.ts";
import { EventRecorder } from "./events.ts";
import type { EventHandler, Informer, InformerFactory } from "./informer.ts";
import { createLogger } from "./logger.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { type KubeObject, keyOf, objectKeyOf } from "./object.ts";
import { kubeConfigFor, tick, until } from "./test-support.ts";

// How the controller turns informer events into queue priorities and how it treats paused objects. The
// informer is a scripted one (the real informer's protocol is tested in informer.test.ts and on a real API
// server in e2e/runtime): here only the order of handler calls matters, which it reproduces exactly —
// adds of the initial list arrive before hasSynced() turns true, later changes after.
class ScriptedInformer {
  readonly handlers: EventHandler[] = [];
  readonly store = new Map<string, KubeObject>();
  synced = false;
  addHandler(h: EventHandler): void {
    this.handlers.push(h);
    for (const o of this.store.values()) h.onAdd?.(o);
  }
  hasSynced(): boolean {
    return this.synced;
  }
  get(key: string): KubeObject | undefined {
    return this.store.get(key);
  }
  list(): KubeObject[] {
    return [...this.store.values()];
  }
  byIndex(): KubeObject[] {
    return [];
  }
  add(obj: KubeObject): void {
    this.store.set(keyOf(objectKeyOf(obj)), obj);
    for (const h of this.handlers) h.onAdd?.(obj);
  }
  update(obj: KubeObject): void {
    const key = keyOf(objectKeyOf(obj));
    const old = this.store.get(key)!;
    this.store.set(key, obj);
    for (const h of this.handlers) h.onUpdate?.(old, obj);
  }
  resync(): void {
    for (const o of this.store.values()) for (const h of this.handlers) h.onUpdate?.(o, o);
  }
}

const cm = (name: string, annotations?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: {
    name,
    namespace: "ns",
    resourceVersion: String(Math.random()),
    ...(annotations ? { annotations } : {}),
  },
});

function setUp(spec: Omit<ControllerSpec, "for" | "name">) {
  const kc = kubeConfigFor("https://127.0.0.1:1");
  const client = new KubeClient(kc);
  const informer = new ScriptedInformer();
  const informers = { informerFor: () => informer as unknown as Informer } as unknown as InformerFactory;
  const metrics = new RuntimeMetrics({ defaultMetrics: false });
  const logger = createLogger({
    level: "silent",
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });
  const controller = new Controller(
    { name: "wiring", for: { apiVersion: "v1", kind: "ConfigMap" }, ...spec },
    { client, informers, metrics, logger, recorder: new EventRecorder(client) },
  );
  return { controller, informer, metrics };
}

describe("Controller queue priority", () => {
  it("serves keys changed after the initial list before the initial list's keys", async () => {
    const order: string[] = [];
    const { controller, informer } = setUp({
      reconcile: async (req) => {
        order.push(req.name);
      },
    });
    informer.store.set("ns/pre", cm("pre")); // in the cache before the handler joins: replayed
    await controller.setUp(async () => true);
    for (let i = 0; i < 50; i++) informer.add(cm(`initial-${i}`)); // the initial list
    informer.synced = true;
    informer.update(cm("initial-40")); // a user's edit of a listed object
    informer.add(cm("created")); // a user's new object
    controller.startWorkers();
    await until(() => order.length === 52);
    expect(order.slice(0, 2)).toEqual(["initial-40", "created"]);
    expect(order.slice(2, 4)).toEqual(["pre", "initial-0"]);
    await controller.stop(1000);
  });

  it("queues periodic resyncs low, behind a change that arrives after them", async () => {
    const order: string[] = [];
    const { controller, informer } = setUp({
      reconcile: async (req) => {
        order.push(req.name);
      },
    });
    await controller.setUp(async () => true);
    informer.synced = true;
    for (let i = 0; i < 5; i++) informer.store.set(`ns/r${i}`, cm(`r${i}`));
    informer.resync();
    informer.update(cm("r3"));
    controller.startWorkers();
    await until(() => order.length === 5);
    expect(order).toEqual(["r3", "r0", "r1", "r2", "r4"]);
    await controller.stop(1000);
  });
});

describe("Controller pausedAnnotation", () => {
  const PAUSED = "example.com/paused";

  it("does not reconcile a paused object, and reconciles it once the annotation is removed", async () => {
    const calls: string[] = [];
    const { controller, informer, metrics } = setUp({
      pausedAnnotation: PAUSED,
      reconcile: async (req) => {
        calls.push(req.name);
      },
    });
    await controller.setUp(async () => true);
    informer.synced = true;
    controller.startWorkers();
    informer.add(cm("a", { [PAUSED]: "true" }));
    informer.add(cm("b"));
    informer.update(cm("a", { [PAUSED]: "true", other: "x" })); // edits while paused: still nothing
    await until(() => calls.length === 1);
    await tick(50);
    expect(calls).toEqual(["b"]);
    const paused = (await metrics.registry
      .getSingleMetric("controller_runtime_reconcile_total")
      ?.get())!.values
      .filter((v) => v.labels["result"] === "paused")
      .reduce((s, v) => s + v.value, 0);
    expect(paused).toBeGreaterThanOrEqual(1);

    informer.update(cm("a", { other: "x" }));
    await until(() => calls.length === 2);
    expect(calls).toEqual(["b", "a"]);
    await controller.stop(1000);
  });

  it("takes only the value true as paused, and ignores the annotation when the spec names none", async () => {
    const calls: string[] = [];
    const { controller, informer } = setUp({
      pausedAnnotation: PAUSED,
      reconcile: async (req) => {
        calls.push(req.name);
      },
    });
    await controller.setUp(async () => true);
    informer.synced = true;
    controller.startWorkers();
    informer.add(cm("false", { [PAUSED]: "false" }));
    informer.add(cm("empty", { [PAUSED]: "" }));
    await until(() => calls.length === 2);
    await controller.stop(1000);

    const other = setUp({
      reconcile: async (req) => {
        calls.push(req.name);
      },
    });
    await other.controller.setUp(async () => true);
    other.informer.synced = true;
    other.controller.startWorkers();
    other.informer.add(cm("unpausable", { [PAUSED]: "true" }));
    await until(() => calls.length === 3);
    expect(calls.sort()).toEqual(["empty", "false", "unpausable"]);
    await other.controller.stop(1000);
  });

  it("drops a paused key's pending retry instead of spinning on it", async () => {
    let calls = 0;
    const { controller, informer } = setUp({
      pausedAnnotation: PAUSED,
      backoff: { baseMs: 5, maxMs: 5 },
      reconcile: async () => {
        calls++;
        throw new Error("fails");
      },
    });
    await controller.setUp(async () => true);
    informer.synced = true;
    controller.startWorkers();
    informer.add(cm("f"));
    await until(() => calls >= 3);
    informer.store.set("ns/f", cm("f", { [PAUSED]: "true" })); // paused between two retries
    await tick(30);
    const afterPause = calls;
    await tick(100);
    expect(calls).toBe(afterPause);
    expect(controller.queue.numRequeues("ns/f")).toBe(0);
    await controller.stop(1000);
  });
});

describe("Controller watch predicate", () => {
  it("drops the updates a watch's predicate refuses, and still maps adds and the updates it passes", async () => {
    const order: string[] = [];
    const { controller, informer } = setUp({
      watches: [
        {
          gvk: { apiVersion: "v1", kind: "ConfigMap" },
          map: (o) => [`watched-${o.metadata?.name}`],
          predicate: (old, o) => old.metadata?.annotations?.["x"] !== o.metadata?.annotations?.["x"],
        },
      ],
      reconcile: async (req) => {
        order.push(req.name);
      },
    });
    await controller.setUp(async () => true);
    informer.synced = true;
    controller.startWorkers();
    informer.add(cm("a"));
    await until(() => order.length === 2);
    informer.update(cm("a")); // a new resourceVersion, annotation x unchanged: refused by the watch
    await until(() => order.length === 3);
    informer.update(cm("a", { x: "1" }));
    await until(() => order.length === 5);
    informer.add(cm("b"));
    await until(() => order.length === 7);
    // Had the refused update been mapped, watched-a would follow the second "a".
    expect(order).toEqual(["a", "watched-a", "a", "a", "watched-a", "b", "watched-b"]);
    await controller.stop(1000);
  });
});
