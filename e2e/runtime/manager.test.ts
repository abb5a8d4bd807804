import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/runtime/client.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { Manager } from "../../src/runtime/manager.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { controllerReference } from "../../src/runtime/owners.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { adminClient, CONFIGMAP, eventually, freshNamespace, sleep } from "./support.ts";

let admin: KubeClient;
let ns: string;
let manager: Manager;
const reconciles: { key: string; counter: string | undefined; at: number }[] = [];
let inFlight = 0;
let maxInFlightPerKey = 0;
const running = new Map<string, number>();

beforeAll(async () => {
  admin = adminClient();
  ns = await freshNamespace(admin, "manager");
  manager = new Manager({
    kubeConfig: adminKubeConfig(),
    namespace: ns,
    healthPort: 0,
    healthHost: "127.0.0.1",
    logger: createLogger({ level: "warn" }),
  });
  manager.addController({
    name: "configmap-test",
    for: CONFIGMAP,
    owns: [{ apiVersion: "v1", kind: "Secret" }],
    // A Secret labelled `points-to: <name>` wakes the ConfigMap of that name (an explicit mapping).
    watches: [
      {
        gvk: { apiVersion: "v1", kind: "Secret" },
        map: (s) => {
          const target = s.metadata?.labels?.["points-to"];
          return target ? [`${s.metadata?.namespace}/${target}`] : [];
        },
      },
    ],
    maxConcurrentReconciles: 4,
    async reconcile(req, ctx) {
      const n = (running.get(req.key) ?? 0) + 1;
      running.set(req.key, n);
      maxInFlightPerKey = Math.max(maxInFlightPerKey, n);
      inFlight++;
      try {
        // Level-triggered: read the current state from the cache, whatever event woke us.
        const obj = ctx.object<KubeObject & { data?: Record<string, string> }>();
        reconciles.push({ key: req.key, counter: obj?.data?.counter, at: Date.now() });
        // The burst key reconciles slowly, so its 40 events land while it is busy.
        await sleep(req.name === "burst" ? 500 : 150);
      } finally {
        inFlight--;
        running.set(req.key, n - 1);
      }
    },
  });
  await manager.start();
});

afterAll(async () => {
  await manager?.stop();
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: ns }, { ignoreNotFound: true });
});

const of = (key: string) => reconciles.filter((r) => r.key === key);

describe("Manager with a ConfigMap controller on a real API server", () => {
  it("serves /readyz once caches synced, /healthz, and controller-runtime metrics on /metrics", async () => {
    const base = `http://127.0.0.1:${manager.healthPort}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz/informers-synced`)).text()).toContain("[+]informers-synced ok");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('controller_runtime_max_concurrent_reconciles{controller="configmap-test"} 4');
    expect(metrics).toContain('workqueue_depth{name="configmap-test",controller="configmap-test"}');
    expect(metrics).toMatch(
      /rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:\d+"\} \d+/,
    );
  });

  it("coalesces a burst of 40 concurrent updates to one object into a few reconciles that end on the latest state", async () => {
    const key = `${ns}/burst`;
    await admin.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "burst", namespace: ns },
      data: { counter: "0" },
    });
    await eventually("the first reconcile", () => of(key).length >= 1);
    await sleep(300);
    const before = of(key).length;
    // 40 updates at once: 40 watch events arrive while the key is being reconciled or queued.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        admin.patch(
          CONFIGMAP,
          { namespace: ns, name: "burst" },
          { data: { counter: String(i + 1) } },
          "merge",
        ),
      ),
    );
    const final = (
      await admin.get<KubeObject & { data: { counter: string } }>(CONFIGMAP, { namespace: ns, name: "burst" })
    ).data.counter;
    await eventually("a reconcile that saw the final state", () => of(key).some((r) => r.counter === final));
    await sleep(1200); // nothing else may follow
    const during = of(key).length - before;
    console.log(`[manager] 40 concurrent updates → ${during} reconciles`);
    expect(during).toBeGreaterThanOrEqual(1);
    // A key being reconciled is parked once, not 40 times.
    expect(during).toBeLessThanOrEqual(5);
    expect(of(key).at(-1)!.counter).toBe(final);
    expect(maxInFlightPerKey).toBe(1);
  });

  it("maps a change to an owned Secret back to its owner ConfigMap", async () => {
    const owner = await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "owner", namespace: ns },
      data: { counter: "x" },
    });
    await eventually("the owner's reconcile", () => of(`${ns}/owner`).length >= 1);
    await sleep(300);
    const before = of(`${ns}/owner`).length;
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "owned", namespace: ns, ownerReferences: [controllerReference(owner)] },
      stringData: { k: "v" },
    });
    await eventually(
      "a reconcile of the owner caused by the Secret",
      () => of(`${ns}/owner`).length > before,
    );
    expect(of(`${ns}/owned`)).toHaveLength(0);
  });

  it("maps a watched object to the keys its map function returns", async () => {
    await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "target", namespace: ns } });
    await eventually("the target's reconcile", () => of(`${ns}/target`).length >= 1);
    await sleep(300);
    const before = of(`${ns}/target`).length;
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "pointer", namespace: ns, labels: { "points-to": "target" } },
    });
    await eventually(
      "a reconcile of the target caused by the Secret",
      () => of(`${ns}/target`).length > before,
    );
  });

  it("reconciles different objects in parallel up to maxConcurrentReconciles", async () => {
    let peak = 0;
    const timer = setInterval(() => {
      peak = Math.max(peak, inFlight);
    }, 5);
    for (let i = 0; i < 8; i++) {
      await admin.create({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `par-${i}`, namespace: ns },
      });
    }
    await eventually("all eight reconciled", () =>
      [...Array(8).keys()].every((i) => of(`${ns}/par-${i}`).length > 0),
    );
    clearInterval(timer);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
  });
});
