import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/runtime/client.ts";
import { KubeClient as Client } from "../../src/runtime/client.ts";
import { Informer, InformerFactory } from "../../src/runtime/informer.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { Manager } from "../../src/runtime/manager.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { adminClient, CONFIGMAP, eventually, freshNamespace, sleep } from "./support.ts";

let admin: KubeClient;
let proxy: FaultProxy;
let ns: string;

beforeAll(async () => {
  admin = adminClient();
  proxy = await startFaultProxy(adminKubeConfig());
  ns = await freshNamespace(admin, "informer");
});
afterAll(async () => {
  await proxy?.close();
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: ns }, { ignoreNotFound: true });
});

const cm = (name: string, v: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: ns, labels: { suite: "informer" } },
  data: { v },
});

function recorder() {
  const events: string[] = [];
  return {
    events,
    handler: {
      onAdd: (o: KubeObject) => events.push(`add ${o.metadata?.name}`),
      onUpdate: (a: KubeObject, b: KubeObject) => {
        if (a !== b) events.push(`update ${b.metadata?.name}`);
      },
      onDelete: (o: KubeObject) => events.push(`delete ${o.metadata?.name}`),
    },
  };
}

const dataOf = (i: Informer, name: string) =>
  (i.get(`${ns}/${name}`) as { data?: { v?: string } } | undefined)?.data?.v;

/** An informer on this suite's ConfigMaps, through the fault proxy, recording events and relists. */
function startRecordingInformer() {
  const lists: string[] = [];
  const informer = new Informer(new Client(proxy.kubeConfig()), CONFIGMAP, {
    namespace: ns,
    labelSelector: "suite=informer",
    backoff: { initialMs: 100, maxMs: 500 },
    onList: (reason) => lists.push(reason),
  });
  const rec = recorder();
  informer.addHandler(rec.handler);
  informer.start();
  return { informer, rec, lists };
}

describe("Informer on a real API server", () => {
  it("reconnects after its connections are cut and catches up by resuming from its last resourceVersion", async () => {
    for (const n of ["cut-a", "cut-b"]) await admin.create(cm(n, "1"));
    const { informer, rec, lists } = startRecordingInformer();
    try {
      await informer.waitForSync();
      expect(informer.keys().sort()).toEqual([`${ns}/cut-a`, `${ns}/cut-b`]);
      await eventually("the watch to be open", () => proxy.watchRequests.some((w) => w.path.includes(ns)));
      const rvBeforeCut = informer.lastResourceVersion();

      proxy.cut();
      await admin.create(cm("cut-c", "1"));
      await admin.patch(CONFIGMAP, { namespace: ns, name: "cut-a" }, { data: { v: "2" } }, "merge");
      await admin.delete(CONFIGMAP, { namespace: ns, name: "cut-b" });
      await sleep(1500); // several failed reconnects while the proxy refuses connections
      expect(informer.get(`${ns}/cut-c`)).toBeUndefined();
      proxy.restore();

      await eventually(
        "the cache to catch up",
        () => dataOf(informer, "cut-a") === "2" && informer.keys().length === 2,
      );
      expect(informer.keys().sort()).toEqual([`${ns}/cut-a`, `${ns}/cut-c`]);
      expect(rec.events).toEqual(["add cut-a", "add cut-b", "add cut-c", "update cut-a", "delete cut-b"]);
      // Resumed, not relisted: one list, and a watch asked for the resourceVersion held before the cut.
      expect(lists).toEqual(["initial"]);
      expect(proxy.watchRequests.some((w) => w.path.includes(ns) && w.resourceVersion === rvBeforeCut)).toBe(
        true,
      );
    } finally {
      await informer.stop();
    }
  });

  it("relists after 410 Gone and emits the changes it missed, including deletes", async () => {
    for (const n of ["gone-a", "gone-b"]) await admin.create(cm(n, "1"));
    const { informer, rec, lists } = startRecordingInformer();
    try {
      await informer.waitForSync();
      await eventually(
        "the watch to be open",
        () => proxy.watchRequests.filter((w) => w.path.includes(ns)).length > 0,
      );
      rec.events.length = 0;
      // The next watch resumes from a resourceVersion etcd's history no longer holds (see fault-proxy.ts).
      proxy.expireNextWatch(`/namespaces/${ns}/configmaps`);
      proxy.cut();
      await admin.delete(CONFIGMAP, { namespace: ns, name: "gone-a" });
      await admin.create(cm("gone-d", "1"));
      await admin.patch(CONFIGMAP, { namespace: ns, name: "gone-b" }, { data: { v: "2" } }, "merge");
      await sleep(300);
      proxy.restore();

      await eventually("a relist after 410", () => lists.length === 2, 20_000);
      expect(lists).toEqual(["initial", "resume point lost"]);
      expect(proxy.watchRequests.some((w) => w.expired)).toBe(true);
      await eventually("the cache to match the server", () => dataOf(informer, "gone-b") === "2");
      const names = informer
        .list(ns)
        .map((o) => o.metadata?.name)
        .sort();
      expect(names).toEqual(["cut-a", "cut-c", "gone-b", "gone-d"]);
      expect(rec.events.sort()).toEqual(["add gone-d", "delete gone-a", "update gone-b"]);
      // And the informer keeps watching after the relist.
      await admin.create(cm("gone-e", "1"));
      await eventually("an event after the relist", () => informer.get(`${ns}/gone-e`));
    } finally {
      await informer.stop();
    }
  });

  it("shares one informer per kind and namespace between consumers, and resync re-delivers every object", async () => {
    const factory = new InformerFactory(admin, { resyncPeriodMs: 0 });
    const a = factory.informerFor(CONFIGMAP, { namespace: ns });
    const b = factory.informerFor(CONFIGMAP, { namespace: ns });
    expect(a).toBe(b);
    expect(factory.informerFor(CONFIGMAP, { namespace: "other" })).not.toBe(a);
    const resynced: string[] = [];
    a.addHandler({ onUpdate: (o, n) => o === n && resynced.push(n.metadata!.name!) });
    factory.start();
    try {
      await factory.waitForSync(AbortSignal.timeout(10_000));
      a.resync();
      expect(resynced.length).toBe(a.list().length);
      expect(resynced.length).toBeGreaterThan(3);
    } finally {
      await factory.stop();
    }
  });

  it("two controllers on the same kind in one Manager share one list and one watch", async () => {
    const shared = await freshNamespace(admin, "shared");
    try {
      await admin.create({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "one", namespace: shared },
      });
      const seen = { first: new Set<string>(), second: new Set<string>() };
      const manager = new Manager({
        kubeConfig: proxy.kubeConfig(),
        namespace: shared,
        logger: createLogger({ level: "error" }),
      });
      manager.addController({
        name: "first",
        for: CONFIGMAP,
        reconcile: async (r) => void seen.first.add(r.name),
      });
      manager.addController({
        name: "second",
        for: CONFIGMAP,
        reconcile: async (r) => void seen.second.add(r.name),
      });
      await manager.start();
      try {
        await admin.create({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "two", namespace: shared },
        });
        await eventually(
          "both controllers to see both objects",
          () => seen.first.has("two") && seen.second.has("two"),
        );
        expect(seen.first.has("one") && seen.second.has("one")).toBe(true);
        const watches = proxy.watchRequests.filter(
          (w) => w.path === `/api/v1/namespaces/${shared}/configmaps`,
        );
        expect(watches).toHaveLength(1);
      } finally {
        await manager.stop();
      }
    } finally {
      await admin.delete({ apiVersion: "v1", kind: "Namespace" }, { name: shared }, { ignoreNotFound: true });
    }
  });
});
