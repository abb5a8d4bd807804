import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { Informer, InformerFactory, type InformerSelection, type TransformFunc } from "./informer.ts";
import type { KubeObject } from "./object.ts";
import { ownedStatusKeys } from "./status.ts";

// A scripted stand-in for the API server's list/watch protocol, to drive the informer through the
// failure modes a real server produces only rarely (HTTP 500 on watch, 410 as an HTTP status, bookmarks,
// paginated lists, a stream that closes at once). The informer itself runs unchanged.
type WatchScript = (res: ServerResponse, query: URLSearchParams) => void;

interface FakeApi {
  kubeConfig: KubeConfig;
  lists: URLSearchParams[];
  watches: URLSearchParams[];
  /** The Accept header of each list and watch request, in order. */
  accepts: { list: string[]; watch: string[] };
  pages: { items: object[]; rv: string }[];
  watchScripts: WatchScript[];
  close(): Promise<void>;
}

const cm = (name: string, rv: string) => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });
const line = (type: string, object: object) => `${JSON.stringify({ type, object })}\n`;

async function fakeApi(): Promise<FakeApi> {
  const api: Omit<FakeApi, "kubeConfig" | "close"> = {
    lists: [],
    watches: [],
    accepts: { list: [], watch: [] },
    pages: [],
    watchScripts: [],
  };
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/api/v1") {
      res.end(JSON.stringify({ resources: [{ name: "configmaps", kind: "ConfigMap", namespaced: true }] }));
      return;
    }
    if (url.searchParams.get("watch") === "true") {
      api.watches.push(url.searchParams);
      api.accepts.watch.push(req.headers.accept ?? "");
      open.add(res);
      res.on("close", () => open.delete(res));
      const script = api.watchScripts.shift();
      if (script) script(res, url.searchParams);
      else res.writeHead(200); // keep the stream open, silent
      return;
    }
    api.lists.push(url.searchParams);
    api.accepts.list.push(req.headers.accept ?? "");
    const page = Number(url.searchParams.get("continue") ?? "0");
    const p = api.pages[page]!;
    const more = page + 1 < api.pages.length;
    res.end(
      JSON.stringify({
        items: p.items,
        metadata: { resourceVersion: p.rv, ...(more ? { continue: String(page + 1) } : {}) },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: "fake",
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: "u" }],
    contexts: [{ name: "fake", cluster: "fake", user: "u" }],
    currentContext: "fake",
  });
  return {
    ...api,
    kubeConfig,
    close: async () => {
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  } as FakeApi;
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await tick(5);
  }
}

let api: FakeApi | undefined;
let informer: Informer | undefined;
afterEach(async () => {
  await informer?.stop();
  await api?.close();
  informer = undefined;
  api = undefined;
});

function start(
  a: FakeApi,
  backoff = { initialMs: 100, maxMs: 400 },
  extra: InformerSelection = {},
): { informer: Informer; relists: string[] } {
  const relists: string[] = [];
  informer = new Informer(
    new KubeClient(a.kubeConfig),
    { apiVersion: "v1", kind: "ConfigMap" },
    {
      namespace: "ns",
      pageSize: 2,
      backoff,
      resyncPeriodMs: 0,
      onList: (reason) => relists.push(reason),
      ...extra,
    },
  );
  informer.start();
  return { informer, relists };
}

describe("Informer default transform", () => {
  it("keeps only the status managedFields entries of its client's own field managers", async () => {
    api = await fakeApi();
    const entry = (manager: string, subresource?: string) => ({
      manager,
      operation: "Apply",
      ...(subresource ? { subresource } : {}),
      fieldsV1: { "f:status": {} },
    });
    const managedFields = [
      entry("homelab-operator/peertenant", "status"),
      entry("homelab-operator", "status"),
      entry("homelab-operator"), // main resource: not needed by StatusWriter
      entry("homelab-operator-other/x", "status"), // a prefix match that is not ours
      entry("kubectl", "status"),
    ];
    api.pages.push({
      items: [{ ...cm("a", "5"), metadata: { ...cm("a", "5").metadata, managedFields } }],
      rv: "10",
    });
    const { informer: i } = start(api);
    await i.waitForSync();
    const kept = (i.get("ns/a")!.metadata!["managedFields"] as { manager: string }[]).map((e) => e.manager);
    expect(kept).toEqual(["homelab-operator/peertenant", "homelab-operator"]);
  });

  it("keeps of its own status entries exactly what StatusWriter reads: owned fields and condition types", async () => {
    api = await fakeApi();
    const full = {
      manager: "homelab-operator/peertenant",
      operation: "Apply",
      apiVersion: "homelab.shdr.ch/v1alpha1",
      time: "2026-12-01T20:00:00Z",
      fieldsType: "FieldsV1",
      subresource: "status",
      fieldsV1: {
        "f:status": {
          ".": {},
          "f:conditions": {
            ".": {},
            'k:{"type":"Ready"}': { ".": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {} },
            'k:{"type":"QuotaReady"}': { ".": {}, "f:status": {}, "f:type": {} },
          },
          "f:namespaces": {},
          "f:quota": { ".": {}, "f:hard": { ".": {}, "f:pods": {} }, "f:used": { "f:pods": {} } },
        },
      },
    };
    api.pages.push({
      items: [{ ...cm("a", "5"), metadata: { ...cm("a", "5").metadata, managedFields: [full] } }],
      rv: "10",
    });
    const { informer: i } = start(api);
    await i.waitForSync();
    const cached = i.get("ns/a")!;
    expect(cached.metadata!["managedFields"]).toEqual([
      {
        manager: "homelab-operator/peertenant",
        operation: "Apply",
        subresource: "status",
        fieldsV1: {
          "f:status": {
            "f:conditions": { 'k:{"type":"Ready"}': {}, 'k:{"type":"QuotaReady"}': {} },
            "f:namespaces": {},
            "f:quota": {},
          },
        },
      },
    ]);
    const original = { ...cm("a", "5"), metadata: { ...cm("a", "5").metadata, managedFields: [full] } };
    expect(ownedStatusKeys(cached, "homelab-operator/peertenant")).toEqual(
      ownedStatusKeys(original, "homelab-operator/peertenant"),
    );
  });

  it("a metadata-only informer keeps no managedFields at all, not even its own status entries", async () => {
    api = await fakeApi();
    const managedFields = [
      {
        manager: "homelab-operator",
        operation: "Apply",
        subresource: "status",
        fieldsV1: { "f:status": {} },
      },
      { manager: "kubectl", operation: "Update", fieldsV1: { "f:data": { "f:password": {} } } },
    ];
    api.pages.push({
      items: [{ ...cm("a", "5"), metadata: { ...cm("a", "5").metadata, managedFields } }],
      rv: "10",
    });
    const { informer: i } = start(api, undefined, { metadataOnly: true });
    await i.waitForSync();
    expect(i.get("ns/a")?.metadata?.name).toBe("a");
    expect(i.get("ns/a")?.metadata).not.toHaveProperty("managedFields");
  });
});

describe("Informer protocol handling", () => {
  it("follows list pages (continue tokens) and watches from the resourceVersion of the list", async () => {
    api = await fakeApi();
    api.pages.push({ items: [cm("a", "5"), cm("b", "6")], rv: "10" }, { items: [cm("c", "7")], rv: "10" });
    const { informer: i } = start(api);
    await i.waitForSync();
    expect(i.keys().sort()).toEqual(["ns/a", "ns/b", "ns/c"]);
    expect(api.lists.map((q) => [q.get("limit"), q.get("continue")])).toEqual([
      ["2", null],
      ["2", "1"],
    ]);
    await until(() => api!.watches.length === 1);
    expect(api.watches[0]!.get("resourceVersion")).toBe("10");
    expect(api.watches[0]!.get("allowWatchBookmarks")).toBe("true");
  });

  it("reconnects after an HTTP 500 on the watch, resuming from its resourceVersion without relisting", async () => {
    api = await fakeApi();
    api.pages.push({ items: [cm("a", "5")], rv: "10" });
    api.watchScripts.push(
      (res) => {
        res.writeHead(200);
        res.write(line("MODIFIED", cm("a", "11")));
        res.end(); // server closed the stream normally after one event
      },
      (res) =>
        res
          .writeHead(500)
          .end(JSON.stringify({ kind: "Status", code: 500, reason: "InternalError", message: "etcd" })),
    );
    const { informer: i, relists } = start(api);
    await until(() => api!.watches.length === 3);
    expect(api.watches.map((q) => q.get("resourceVersion"))).toEqual(["10", "11", "11"]);
    expect(relists).toEqual(["initial"]);
    expect(i.get("ns/a")?.metadata?.resourceVersion).toBe("11");
  });

  it("relists when the watch is refused with HTTP 410 Gone", async () => {
    api = await fakeApi();
    api.pages.push({ items: [cm("a", "5")], rv: "10" });
    api.watchScripts.push((res) =>
      res
        .writeHead(410)
        .end(JSON.stringify({ kind: "Status", code: 410, reason: "Gone", message: "too old" })),
    );
    const { relists } = start(api);
    await until(() => relists.length === 2 && api!.watches.length === 2);
    expect(relists).toEqual(["initial", "resume point lost"]);
  });

  it("resumes from the resourceVersion of the last bookmark", async () => {
    api = await fakeApi();
    api.pages.push({ items: [], rv: "10" });
    api.watchScripts.push((res) => {
      res.writeHead(200);
      res.write(line("BOOKMARK", { kind: "ConfigMap", metadata: { resourceVersion: "42" } }));
      setTimeout(() => res.destroy(), 20); // connection reset after the bookmark
    });
    start(api);
    await until(() => api!.watches.length === 2);
    expect(api.watches[1]!.get("resourceVersion")).toBe("42");
  });

  it("backs off exponentially when every watch closes at once, instead of spinning", async () => {
    api = await fakeApi();
    api.pages.push({ items: [], rv: "10" });
    for (let n = 0; n < 100; n++) api.watchScripts.push((res) => res.writeHead(200).end());
    const { informer: i } = start(api, { initialMs: 100, maxMs: 1000 });
    await i.waitForSync();
    await tick(1000);
    // Delays of ~100, 200, 400 ms (±20%) fit in one second: a handful of attempts, not hundreds.
    expect(api.watches.length).toBeGreaterThanOrEqual(3);
    expect(api.watches.length).toBeLessThanOrEqual(5);
  });

  it("emits deletes for objects missing from a relist and indexes objects by label", async () => {
    api = await fakeApi();
    const labelled = (name: string, rv: string, tenant: string) => ({
      metadata: { name, namespace: "ns", resourceVersion: rv, labels: { "homelab.shdr.ch/tenant": tenant } },
    });
    api.pages.push({ items: [labelled("a", "5", "alice"), labelled("b", "6", "bob")], rv: "10" });
    let expire: () => void = () => {};
    api.watchScripts.push((res) => {
      expire = () => res.writeHead(410).end("{}");
    });
    const { informer: i } = start(api);
    const { labelIndex } = await import("./informer.ts");
    i.addIndex("tenant", labelIndex("homelab.shdr.ch/tenant"));
    const deleted: string[] = [];
    i.addHandler({ onDelete: (o) => deleted.push(o.metadata!.name!) });
    await i.waitForSync();
    expect(i.byIndex("tenant", "alice").map((o) => o.metadata?.name)).toEqual(["a"]);
    api.pages[0] = { items: [labelled("b", "6", "bob"), labelled("c", "12", "alice")], rv: "20" };
    await until(() => api!.watches.length === 1);
    expire();
    await until(() => api!.lists.length === 2 && i.get("ns/c") !== undefined);
    expect(deleted).toEqual(["a"]);
    expect(i.byIndex("tenant", "alice").map((o) => o.metadata?.name)).toEqual(["c"]);
  });

  // kube-apiserver's storage.NewTooLargeResourceVersionError: a Timeout Status with this cause.
  const tooLarge = {
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    message: "Timeout: Too large resource version: 1000010, current: 10",
    reason: "Timeout",
    details: {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
    code: 504,
  };

  it("relists when the watch is refused with HTTP 504 too large resource version", async () => {
    api = await fakeApi();
    api.pages.push({ items: [cm("a", "5")], rv: "10" });
    api.watchScripts.push((res) => res.writeHead(504).end(JSON.stringify(tooLarge)));
    const { relists } = start(api);
    await until(() => relists.length === 2 && api!.watches.length === 2);
    expect(relists).toEqual(["initial", "too large resource version"]);
    // The second watch starts from the fresh list's resourceVersion, not from the refused one again.
    expect(api.watches.map((q) => q.get("resourceVersion"))).toEqual(["10", "10"]);
    expect(api.lists).toHaveLength(2);
  });

  it("relists on a watch ERROR event saying too large resource version without the cause (API servers before 1.19)", async () => {
    api = await fakeApi();
    api.pages.push({ items: [], rv: "10" });
    const { details: _causes, ...old } = tooLarge;
    api.watchScripts.push((res) => res.writeHead(200).end(line("ERROR", old)));
    const { relists } = start(api);
    await until(() => relists.length === 2);
    expect(relists).toEqual(["initial", "too large resource version"]);
  });

  it("does not relist on any other 504: a gateway timeout resumes from its resourceVersion", async () => {
    api = await fakeApi();
    api.pages.push({ items: [cm("a", "5")], rv: "10" });
    api.watchScripts.push((res) =>
      res.writeHead(504).end(
        JSON.stringify({
          kind: "Status",
          code: 504,
          reason: "Timeout",
          message: "Timeout: request did not complete",
        }),
      ),
    );
    const { relists } = start(api);
    await until(() => api!.watches.length === 2);
    expect(relists).toEqual(["initial"]);
    expect(api.watches[1]!.get("resourceVersion")).toBe("10");
  });

  const managed = (name: string, rv: string) => ({
    metadata: {
      name,
      namespace: "ns",
      resourceVersion: rv,
      managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:data": { "f:big": {} } } }],
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          data: { big: "x".repeat(1000) },
        }),
        keep: "me",
      },
    },
    data: { big: "x".repeat(1000) },
  });

  it("strips others' managedFields entries and kubectl's last-applied annotation by default, from lists and watch events alike", async () => {
    api = await fakeApi();
    api.pages.push({ items: [managed("a", "5")], rv: "10" });
    api.watchScripts.push((res) => {
      res.writeHead(200);
      res.write(line("ADDED", managed("b", "11")));
    });
    const seen: KubeObject[] = [];
    const { informer: i } = start(api);
    i.addHandler({ onAdd: (o) => seen.push(o) });
    await until(() => i.get("ns/b") !== undefined);
    for (const key of ["ns/a", "ns/b"]) {
      const o = i.get(key)!;
      // Emptied, not removed: an empty list tells StatusWriter this client owns nothing of the object.
      expect(o.metadata?.managedFields).toEqual([]);
      expect(o.metadata?.annotations).toEqual({ keep: "me" });
      expect((o as { data?: unknown }).data).toEqual({ big: "x".repeat(1000) });
      expect(o.apiVersion).toBe("v1");
      expect(o.kind).toBe("ConfigMap");
    }
    // Handlers get the cached (stripped) object, not the one off the wire.
    expect(seen.map((o) => o.metadata?.managedFields)).toEqual([[], []]);
  });

  it("runs a custom transform on every object, deletes included, before handlers see it", async () => {
    api = await fakeApi();
    api.pages.push({ items: [managed("a", "5")], rv: "10" });
    api.watchScripts.push((res) => {
      res.writeHead(200);
      res.write(line("MODIFIED", managed("a", "11")));
      res.write(line("DELETED", managed("a", "12")));
    });
    const dropData: TransformFunc = (o) => {
      delete (o as { data?: unknown }).data;
      return o;
    };
    const { informer: i } = start(api, undefined, { transform: dropData });
    const deleted: KubeObject[] = [];
    const updated: KubeObject[] = [];
    i.addHandler({ onUpdate: (_, o) => updated.push(o), onDelete: (o) => deleted.push(o) });
    await i.waitForSync();
    expect((i.get("ns/a") as { data?: unknown }).data).toBeUndefined();
    // A custom transform replaces the default one: it asked to keep managedFields.
    expect(i.get("ns/a")?.metadata?.managedFields).toHaveLength(1);
    await until(() => deleted.length === 1);
    expect(updated.map((o) => (o as { data?: unknown }).data)).toEqual([undefined]);
    expect((deleted[0] as { data?: unknown }).data).toBeUndefined();
    expect(i.size).toBe(0);
  });

  it("metadata-only: asks for PartialObjectMetadataList and PartialObjectMetadata, caches them as the watched kind", async () => {
    api = await fakeApi();
    const partial = (name: string, rv: string) => ({
      apiVersion: "meta.k8s.io/v1",
      kind: "PartialObjectMetadata",
      metadata: { name, namespace: "ns", resourceVersion: rv, labels: { t: "1" } },
    });
    api.pages.push({ items: [partial("a", "5")], rv: "10" });
    api.watchScripts.push((res) => {
      res.writeHead(200);
      res.write(line("ADDED", partial("b", "11")));
    });
    const { informer: i } = start(api, undefined, { metadataOnly: true });
    await until(() => i.get("ns/b") !== undefined);
    expect(api.accepts.list).toEqual(["application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"]);
    expect(api.accepts.watch).toEqual(["application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"]);
    for (const key of ["ns/a", "ns/b"]) {
      expect(i.get(key)).toMatchObject({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { labels: { t: "1" } },
      });
    }
  });

  it("a full informer asks for plain JSON", async () => {
    api = await fakeApi();
    api.pages.push({ items: [], rv: "10" });
    start(api);
    await until(() => api!.watches.length === 1);
    expect(api.accepts.list).toEqual(["application/json"]);
    expect(api.accepts.watch).toEqual(["application/json"]);
  });
});

describe("Informer.list by namespace", () => {
  it("returns exactly the objects of that namespace through adds, updates and deletes", async () => {
    api = await fakeApi();
    const obj = (ns: string, name: string, rv: string) => ({
      metadata: { name, namespace: ns, resourceVersion: rv },
    });
    api.pages.push({ items: [obj("a", "x", "1"), obj("b", "x", "2"), obj("a", "y", "3")], rv: "10" });
    let push: (type: string, o: object) => void = () => {};
    api.watchScripts.push((res) => {
      res.writeHead(200);
      push = (type, o) => res.write(line(type, o));
    });
    informer = new Informer(
      new KubeClient(api.kubeConfig),
      { apiVersion: "v1", kind: "ConfigMap" },
      {
        resyncPeriodMs: 0,
      },
    );
    informer.start();
    const i = informer;
    await i.waitForSync();
    const names = (ns?: string) =>
      i
        .list(ns)
        .map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`)
        .sort();
    expect(names("a")).toEqual(["a/x", "a/y"]);
    expect(names("b")).toEqual(["b/x"]);
    expect(names("c")).toEqual([]);
    await until(() => api!.watches.length === 1);
    push("DELETED", obj("a", "x", "11"));
    push("ADDED", obj("c", "z", "12"));
    push("MODIFIED", obj("b", "x", "13"));
    await until(() => i.lastResourceVersion() === "13");
    expect(names("a")).toEqual(["a/y"]);
    expect(names("c")).toEqual(["c/z"]);
    expect(i.list("b")[0]?.metadata?.resourceVersion).toBe("13");
    expect(names()).toEqual(["a/y", "b/x", "c/z"]);
  });
});

describe("InformerFactory keying", () => {
  it("shares one informer per identical selection and gives every different selection its own", async () => {
    const a = await fakeApi();
    api = a;
    const factory = new InformerFactory(new KubeClient(a.kubeConfig));
    const cmGvk = { apiVersion: "v1", kind: "ConfigMap" };
    const strip: TransformFunc = (o) => o;
    const base = factory.informerFor(cmGvk, { namespace: "ns", labelSelector: "a=1" });
    expect(factory.informerFor(cmGvk, { namespace: "ns", labelSelector: " a=1 " })).toBe(base);
    const different = [
      factory.informerFor(cmGvk, { namespace: "ns", labelSelector: "a=2" }),
      factory.informerFor(cmGvk, { namespace: "ns" }),
      factory.informerFor(cmGvk, { labelSelector: "a=1" }),
      factory.informerFor(cmGvk, { namespace: "ns", labelSelector: "a=1", metadataOnly: true }),
      factory.informerFor(cmGvk, { namespace: "ns", labelSelector: "a=1", transform: strip }),
      factory.informerFor({ apiVersion: "v1", kind: "Secret" }, { namespace: "ns", labelSelector: "a=1" }),
    ];
    expect(new Set([base, ...different]).size).toBe(7);
    expect(factory.informerFor(cmGvk, { namespace: "ns", labelSelector: "a=1", transform: strip })).toBe(
      different[4],
    );
    expect(factory.all()).toHaveLength(7);
  });
});
