import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deleteExactly, KubeClient } from "./client.ts";
import { kubeConfigFor } from "./test-support.ts";

// A loopback server that records every request that reaches it; `/slow` answers only when told.
interface Seen {
  method: string;
  path: string;
  body: string;
}
let server: Server;
let seen: Seen[] = [];
const held: ServerResponse[] = [];
let client: KubeClient;
const CM = { apiVersion: "v1", kind: "ConfigMap" };

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c) => (body += String(c)));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      seen.push({ method: req.method ?? "", path, body });
      res.setHeader("Content-Type", "application/json");
      if (path === "/api/v1") {
        res.end(JSON.stringify({ resources: [{ name: "configmaps", kind: "ConfigMap", namespaced: true }] }));
      } else if (path.endsWith("/slow")) held.push(res);
      else if (path.endsWith("/refused")) {
        res.statusCode = 409;
        res.end(JSON.stringify({ kind: "Status", code: 409, reason: "Conflict", message: "refused here" }));
      } else res.end(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const kc = kubeConfigFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client = new KubeClient(kc, { userAgent: "fencing-test/1" });
});
afterAll(() => {
  for (const r of held) r.destroy();
  return new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  seen = [];
});

const writes = () => seen.filter((s) => s.method !== "GET");

describe("KubeClient.withSignal", () => {
  it("after abort, every kind of call is refused locally with the abort reason and nothing reaches the server", async () => {
    await client.get(CM, { namespace: "ns", name: "warm" }); // discovery cached, so only the calls below count
    seen = [];
    const ac = new AbortController();
    const view = client.withSignal(ac.signal);
    const reason = new Error("leadership lost");
    ac.abort(reason);
    const obj = { ...CM, metadata: { name: "a", namespace: "ns" } };
    const calls: Promise<unknown>[] = [
      view.get(CM, { namespace: "ns", name: "a" }),
      view.list(CM, { namespace: "ns" }),
      view.create(obj),
      view.replace(obj),
      view.patch(CM, { namespace: "ns", name: "a" }, { data: {} }, "merge"),
      view.delete(CM, { namespace: "ns", name: "a" }),
      view.apply(obj),
      view.applyStatus(obj),
      view.patchStatus(CM, { namespace: "ns", name: "a" }, {}),
      view.request("POST", "/api/v1/namespaces/ns/configmaps", { body: obj }),
    ];
    for (const c of calls) await expect(c).rejects.toBe(reason);
    expect(seen).toEqual([]);
    // The root client is unaffected.
    await client.get(CM, { namespace: "ns", name: "a" });
    expect(seen).toHaveLength(1);
  });

  it("a call in flight is cancelled when the signal aborts", async () => {
    const ac = new AbortController();
    const pending = client
      .withSignal(ac.signal)
      .request("PUT", "/api/v1/namespaces/ns/configmaps/slow", { body: {} });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error("stop now");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("views combine: a view of a view obeys both signals; a per-call signal also counts", async () => {
    const outer = new AbortController();
    const inner = new AbortController();
    const view = client.withSignal(outer.signal).withSignal(inner.signal);
    await view.get(CM, { namespace: "ns", name: "a" });
    outer.abort(new Error("outer"));
    await expect(view.get(CM, { namespace: "ns", name: "a" })).rejects.toThrow("outer");
    const perCall = new AbortController();
    perCall.abort(new Error("per call"));
    await expect(client.get(CM, { namespace: "ns", name: "a" }, { signal: perCall.signal })).rejects.toThrow(
      "per call",
    );
  });

  it("sends the configured User-Agent (audit logs tell replicas apart by it)", async () => {
    const ua: string[] = [];
    const onReq = (req: IncomingMessage) => ua.push(req.headers["user-agent"] ?? "");
    server.on("request", onReq);
    await client.get(CM, { namespace: "ns", name: "a" });
    server.off("request", onReq);
    expect(ua).toEqual(["fencing-test/1"]);
  });
});

describe("replace", () => {
  it("never sends managedFields (a PUT carrying them would overwrite the server's)", async () => {
    seen = [];
    const cached = {
      ...CM,
      metadata: {
        name: "a",
        namespace: "ns",
        resourceVersion: "5",
        managedFields: [{ manager: "homelab-operator/x", operation: "Apply" }],
      },
      data: { k: "v" },
    };
    await client.replace(cached);
    const put = seen.find((r) => r.method === "PUT")!;
    const body = JSON.parse(put.body) as { metadata: Record<string, unknown>; data: unknown };
    expect(body.metadata).toEqual({ name: "a", namespace: "ns", resourceVersion: "5" });
    expect(body.data).toEqual({ k: "v" });
  });
});

describe("delete preconditions", () => {
  it("sends uid and resourceVersion as DeleteOptions.preconditions", async () => {
    await client.delete(
      CM,
      { namespace: "ns", name: "a" },
      { preconditions: { uid: "u-1", resourceVersion: "42" }, propagationPolicy: "Background" },
    );
    expect(JSON.parse(writes()[0]!.body)).toEqual({
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Background",
      preconditions: { uid: "u-1", resourceVersion: "42" },
    });
  });

  it("deleteExactly deletes with the object's uid and resourceVersion, and refuses an object without uid", async () => {
    await deleteExactly(client, {
      ...CM,
      metadata: { name: "a", namespace: "ns", uid: "u-2", resourceVersion: "7" },
    });
    expect(JSON.parse(writes()[0]!.body).preconditions).toEqual({ uid: "u-2", resourceVersion: "7" });
    await deleteExactly(
      client,
      { ...CM, metadata: { name: "a", namespace: "ns", uid: "u-3", resourceVersion: "8" } },
      { checkResourceVersion: false },
    );
    expect(JSON.parse(writes()[1]!.body).preconditions).toEqual({ uid: "u-3" });
    await expect(deleteExactly(client, { ...CM, metadata: { name: "a", namespace: "ns" } })).rejects.toThrow(
      /has no uid/,
    );
    expect(writes()).toHaveLength(2);
  });

  it("discardResponse sends the write and resolves to nothing, and an error answer still throws", async () => {
    const obj = { ...CM, metadata: { name: "a", namespace: "ns" }, data: { k: "v" } };
    await expect(client.apply(obj, { discardResponse: true })).resolves.toBeUndefined();
    await expect(client.create(obj, { discardResponse: true })).resolves.toBeUndefined();
    await expect(client.replace(obj, undefined, { discardResponse: true })).resolves.toBeUndefined();
    await expect(client.applyStatus(obj, { discardResponse: true })).resolves.toBeUndefined();
    expect(writes().map((w) => [w.method, w.path])).toEqual([
      ["PATCH", "/api/v1/namespaces/ns/configmaps/a"],
      ["POST", "/api/v1/namespaces/ns/configmaps"],
      ["PUT", "/api/v1/namespaces/ns/configmaps/a"],
      ["PATCH", "/api/v1/namespaces/ns/configmaps/a/status"],
    ]);
    expect(JSON.parse(writes()[0]!.body).data).toEqual({ k: "v" });
    // Without the option the answer is parsed as before.
    await expect(client.apply(obj)).resolves.toMatchObject({ metadata: { name: "x" } });
    const refused = { ...CM, metadata: { name: "refused", namespace: "ns" } };
    await expect(client.apply(refused, { discardResponse: true })).rejects.toMatchObject({ code: 409 });
  });
});
