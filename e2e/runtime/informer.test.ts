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

  it("relists after a watch is refused with 504 too large resource version, and catches up", async () => {
    for (const n of ["big-a", "big-b"]) await admin.create(cm(n, "1"));
    const { informer, rec, lists } = startRecordingInformer();
    try {
      await informer.waitForSync();
      await eventually("the watch to be open", () => proxy.watchRequests.some((w) => w.path.includes(ns)));
      rec.events.length = 0;
      proxy.tooLargeNextWatch(`/namespaces/${ns}/configmaps`);
      proxy.cut();
      await admin.delete(CONFIGMAP, { namespace: ns, name: "big-a" });
      await admin.patch(CONFIGMAP, { namespace: ns, name: "big-b" }, { data: { v: "2" } }, "merge");
      await sleep(300);
      proxy.restore();

      await eventually("a relist after 504", () => lists.length === 2, 20_000);
      expect(lists).toEqual(["initial", "too large resource version"]);
      const refused = proxy.watchRequests.filter((w) => w.tooLarge);
      expect(refused).toHaveLength(1);
      expect(refused[0]!.upstreamStatus).toBe(504);
      // The watch after the relist starts from the list's resourceVersion, not from the refused one.
      await eventually("a watch after the relist", () => {
        const after = proxy.watchRequests.slice(proxy.watchRequests.indexOf(refused[0]!) + 1);
        return after.some((w) => w.path.includes(ns) && w.resourceVersion !== refused[0]!.resourceVersion);
      });
      await eventually("the cache to match the server", () => dataOf(informer, "big-b") === "2");
      expect(informer.get(`${ns}/big-a`)).toBeUndefined();
      expect(rec.events.sort()).toEqual(["delete big-a", "update big-b"]);
      await admin.create(cm("big-c", "1"));
      await eventually("an event after the relist", () => informer.get(`${ns}/big-c`));
    } finally {
      await informer.stop();
    }
  });

  it("a metadata-only informer on Secrets caches names and labels, never the data", async () => {
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "meta-a", namespace: ns, labels: { suite: "informer" } },
      stringData: { password: "hunter2" },
    });
    const informer = new Informer(
      new Client(proxy.kubeConfig()),
      { apiVersion: "v1", kind: "Secret" },
      {
        namespace: ns,
        metadataOnly: true,
      },
    );
    informer.start();
    try {
      await informer.waitForSync();
      await admin.create({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "meta-b", namespace: ns, labels: { suite: "informer" } },
        stringData: { password: "hunter3" },
      });
      await eventually("the watched Secret", () => informer.get(`${ns}/meta-b`));
      for (const name of ["meta-a", "meta-b"]) {
        const s = informer.get(`${ns}/${name}`)!;
        expect(s).toMatchObject({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name, labels: { suite: "informer" } },
        });
        expect(Object.keys(s).sort()).toEqual(["apiVersion", "kind", "metadata"]);
        // Only this client's own status entries are kept (none here): other managers' are dropped.
        expect(s.metadata?.managedFields ?? []).toEqual([]);
      }
    } finally {
      await informer.stop();
    }
  });

  it("two controllers watching one kind with different label selectors each see and read only their own objects", async () => {
    const teams = await freshNamespace(admin, "teams");
    const labelled = (name: string, team: string): KubeObject => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: teams, labels: { team } },
    });
    try {
      await admin.create(labelled("a-1", "a"));
      await admin.create(labelled("b-1", "b"));
      const seen: Record<string, { keys: Set<string>; cached: Set<string>; foreignReads: string[] }> = {};
      const manager = new Manager({
        kubeConfig: proxy.kubeConfig(),
        namespace: teams,
        logger: createLogger({ level: "error" }),
      });
      for (const team of ["a", "b"]) {
        const other = team === "a" ? "b" : "a";
        const record = { keys: new Set<string>(), cached: new Set<string>(), foreignReads: [] as string[] };
        seen[team] = record;
        manager.addController({
          name: `team-${team}`,
          // A kind with nothing in this namespace: every reconcile here comes from the watch below.
          for: { apiVersion: "v1", kind: "LimitRange" },
          watches: [
            { gvk: CONFIGMAP, labelSelector: `team=${team}`, map: (o) => [`${teams}/${o.metadata!.name}`] },
          ],
          reconcile: async (req, ctx) => {
            record.keys.add(req.name);
            for (const o of ctx.cache.list(CONFIGMAP, teams)) record.cached.add(o.metadata!.name!);
            for (const n of [`${other}-1`, `${other}-2`, "moved"]) {
              const found = ctx.cache.get(CONFIGMAP, { namespace: teams, name: n });
              if (found && found.metadata?.labels?.team !== team) record.foreignReads.push(n);
            }
          },
        });
      }
      await manager.start();
      try {
        await admin.create(labelled("a-2", "a"));
        await admin.create(labelled("b-2", "b"));
        await admin.create(labelled("moved", "a"));
        await eventually(
          "both controllers to see their new objects",
          () => ["a-2", "moved"].every((n) => seen.a!.keys.has(n)) && seen.b!.keys.has("b-2"),
        );
        // Relabelled from team a to team b: it leaves a's cache (a wakes for the delete) and enters b's.
        await admin.patch(
          CONFIGMAP,
          { namespace: teams, name: "moved" },
          { metadata: { labels: { team: "b" } } },
          "merge",
        );
        await eventually("b to see the moved object", () => seen.b!.keys.has("moved"));
        await admin.create(labelled("a-3", "a"));
        await eventually("a to see a-3", () => seen.a!.keys.has("a-3"));
        expect([...seen.a!.keys].sort()).toEqual(["a-1", "a-2", "a-3", "moved"]);
        expect([...seen.b!.keys].sort()).toEqual(["b-1", "b-2", "moved"]);
        expect([...seen.b!.cached].filter((n) => n.startsWith("a-"))).toEqual([]);
        expect([...seen.a!.cached].filter((n) => n.startsWith("b-"))).toEqual([]);
        expect(seen.a!.foreignReads).toEqual([]);
        expect(seen.b!.foreignReads).toEqual([]);
        // Two selections, two watches: each asked the API server for its own selector.
        const watches = proxy.watchRequests.filter(
          (w) => w.path === `/api/v1/namespaces/${teams}/configmaps`,
        );
        expect(watches.length).toBeGreaterThanOrEqual(2);
      } finally {
        await manager.stop();
      }
    } finally {
      await admin.delete({ apiVersion: "v1", kind: "Namespace" }, { name: teams }, { ignoreNotFound: true });
    }
  });
});
