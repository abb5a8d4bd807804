import { describe, expect, it } from "vitest";
import type { KubeClient } from "./client.ts";
import type { Condition } from "./conditions.ts";
import type { KubeObject } from "./object.ts";
import { canonical, StatusWriter } from "./status.ts";

// The writer's decisions (write or not, what it sends, under which manager). That SSA then keeps two
// managers' conditions apart is shown on a real API server in e2e/runtime/status-events.test.ts.
interface Apply {
  body: KubeObject;
  fieldManager: string | undefined;
}

/** Records applies and answers like the API server: the object's status with the applied fields merged in. */
function recordingClient(server: { status: Record<string, unknown>; rv: number }) {
  const applies: Apply[] = [];
  const client = {
    async applyStatus(body: KubeObject, opts: { fieldManager?: string; discardResponse?: boolean } = {}) {
      applies.push({ body: structuredClone(body), fieldManager: opts.fieldManager });
      const applied = body.status as Record<string, unknown>;
      const conditions = [...((server.status["conditions"] ?? []) as Condition[])];
      for (const c of (applied["conditions"] ?? []) as Condition[]) {
        const i = conditions.findIndex((x) => x.type === c.type);
        if (i >= 0) conditions[i] = c;
        else conditions.push(c);
      }
      server.status = { ...server.status, ...applied, conditions };
      server.rv++;
      // As the real client: asked to, it drops the answer.
      if (opts.discardResponse) return undefined;
      return {
        ...body,
        metadata: { ...body.metadata, resourceVersion: String(server.rv) },
        status: server.status,
      };
    },
  } as unknown as KubeClient;
  return { client, applies };
}

const tenant = (rv: string, status?: Record<string, unknown>): KubeObject => ({
  apiVersion: "homelab.shdr.ch/v1alpha1",
  kind: "PeerTenant",
  metadata: { name: "t", uid: "u1", resourceVersion: rv, generation: 3 },
  ...(status ? { status } : {}),
});

const failing = {
  type: "Ready",
  status: "False" as const,
  reason: "ReconcileFailed",
  message: "boom",
  observedGeneration: 3,
};

describe("StatusWriter", () => {
  it("applies only what it owns, under its own field manager, with conditions as metav1.Condition", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    const now = new Date("2026-12-01T10:00:00.678Z");
    const w = new StatusWriter(client, { fieldManager: "homelab-operator/peertenant", now: () => now });
    const wrote = await w.write(tenant("1", { foreign: "kept by someone else" }), {
      fields: { observedGeneration: 3, namespaces: ["a"], skipped: undefined },
      conditions: [failing],
    });
    expect(wrote).toBe(true);
    expect(applies).toHaveLength(1);
    expect(applies[0]!.fieldManager).toBe("homelab-operator/peertenant");
    expect(applies[0]!.body).toEqual({
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "PeerTenant",
      metadata: { name: "t" },
      status: {
        observedGeneration: 3,
        namespaces: ["a"],
        conditions: [{ ...failing, lastTransitionTime: "2026-12-01T10:00:00Z" }],
      },
    });
  });

  it("writes a Ready=False of a reconcile failing 100 times once, even while the cache lags behind", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    let t = Date.parse("2026-12-01T10:00:00Z");
    const tick = () => {
      t += 1500; // each retry a second and a half later: a fresh lastTransitionTime would differ
      return new Date(t);
    };
    const w = new StatusWriter(client, { fieldManager: "m", now: tick });
    // The first 50 retries see the cache from before the write, the next 50 the cache that caught up.
    for (let i = 0; i < 50; i++) await w.write(tenant("1"), { conditions: [failing] });
    const caughtUp = tenant(String(server.rv), structuredClone(server.status));
    for (let i = 0; i < 50; i++) await w.write(caughtUp, { conditions: [failing] });
    expect(applies).toHaveLength(1);
  });

  it("keeps lastTransitionTime while the status stays, moves it when the status flips", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    let now = new Date("2026-12-01T10:00:00Z");
    const w = new StatusWriter(client, { fieldManager: "m", now: () => now });
    await w.write(tenant("1"), { conditions: [failing] });
    now = new Date("2026-12-01T10:05:00Z");
    const seen = () => tenant(String(server.rv), structuredClone(server.status));
    expect(await w.write(seen(), { conditions: [{ ...failing, message: "boom again" }] })).toBe(true);
    const second = (applies[1]!.body.status as { conditions: Condition[] }).conditions[0]!;
    expect(second.lastTransitionTime).toBe("2026-12-01T10:00:00Z");
    expect(second.message).toBe("boom again");
    now = new Date("2026-12-01T10:09:00Z");
    await w.write(seen(), { conditions: [{ ...failing, status: "True", reason: "TenantReady" }] });
    const third = (applies[2]!.body.status as { conditions: Condition[] }).conditions[0]!;
    expect(third.lastTransitionTime).toBe("2026-12-01T10:09:00Z");
  });

  it("ignores the conditions and fields of other managers when deciding, and writes when an owned field changes", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    const w = new StatusWriter(client, { fieldManager: "m" });
    const other: Condition = { ...failing, type: "Other", lastTransitionTime: "2026-01-01T00:00:00Z" };
    const quota = { cpu: "1", memory: "1Gi" };
    await w.write(tenant("1", { conditions: [other] }), { fields: { quota } });
    const seen = () => tenant(String(server.rv), structuredClone(server.status));
    expect(await w.write(seen(), { fields: { quota: { memory: "1Gi", cpu: "1" } } })).toBe(false);
    expect(await w.write(seen(), { fields: { quota: { memory: "2Gi", cpu: "1" } } })).toBe(true);
    expect(applies.map((a) => a.body.status)).toEqual([{ quota }, { quota: { memory: "2Gi", cpu: "1" } }]);
  });

  it("compares with the cache again once something else changed the object", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    const w = new StatusWriter(client, { fieldManager: "m" });
    await w.write(tenant("1"), { conditions: [failing] });
    // Someone else's write (rv 7) whose status lacks our condition, e.g. a merge patch that replaced the list.
    expect(await w.write(tenant("7", { conditions: [] }), { conditions: [failing] })).toBe(true);
    expect(applies).toHaveLength(2);
  });

  it("a part writes under a manager of its own, remembered apart from the main one", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    const w = new StatusWriter(client, { fieldManager: "homelab-operator/peertenant" });
    await w.write(tenant("1"), { conditions: [failing] }, { part: "failure" });
    expect(applies[0]!.fieldManager).toBe("homelab-operator/peertenant/failure");
  });

  it("writes when it stops owning a condition or field, even if nothing else changes; idle after a restart", async () => {
    const ready: Condition = { ...failing, lastTransitionTime: "2026-12-01T10:00:00Z" };
    const degraded: Condition = { ...ready, type: "Degraded" };
    const foreign: Condition = { ...ready, type: "Foreign" };
    // fieldsV1 as the API server records a status apply: conditions keyed by type, fields by name.
    const managedFields = [
      {
        manager: "m",
        operation: "Apply",
        subresource: "status",
        fieldsV1: {
          "f:status": {
            "f:conditions": { 'k:{"type":"Ready"}': {}, 'k:{"type":"Degraded"}': {} },
            "f:namespaces": {},
          },
        },
      },
      {
        manager: "other",
        operation: "Apply",
        subresource: "status",
        fieldsV1: { "f:status": { "f:conditions": { 'k:{"type":"Foreign"}': {} } } },
      },
    ];
    const shown = (): KubeObject => ({
      ...tenant("5", { conditions: [ready, degraded, foreign], namespaces: ["a"] }),
      metadata: { ...tenant("5").metadata, managedFields: structuredClone(managedFields) },
    });
    const server = { status: {}, rv: 5 };
    const { client, applies } = recordingClient(server);

    // A fresh writer (a restart) that passes exactly what managedFields say it owns: nothing to write.
    const idle = new StatusWriter(client, { fieldManager: "m" });
    expect(await idle.write(shown(), { fields: { namespaces: ["a"] }, conditions: [ready, degraded] })).toBe(
      false,
    );
    expect(applies).toHaveLength(0);

    // Degraded is no longer ours to say: the apply that removes it must be sent, Foreign is not ours.
    const w = new StatusWriter(client, { fieldManager: "m" });
    expect(await w.write(shown(), { fields: { namespaces: ["a"] }, conditions: [ready] })).toBe(true);
    expect(applies[0]!.body.status).toEqual({ namespaces: ["a"], conditions: [ready] });
    // The cache still shows the old managedFields: our own write is remembered, no second apply.
    expect(await w.write(shown(), { fields: { namespaces: ["a"] }, conditions: [ready] })).toBe(false);

    // A field dropped likewise.
    const w2 = new StatusWriter(client, { fieldManager: "m" });
    expect(await w2.write(shown(), { conditions: [ready, degraded] })).toBe(true);
    expect(applies[1]!.body.status).toEqual({ conditions: [ready, degraded] });
    expect(applies).toHaveLength(2);
  });

  it("refuses conditions passed as a plain field", async () => {
    const { client } = recordingClient({ status: {}, rv: 1 });
    const w = new StatusWriter(client, { fieldManager: "m" });
    await expect(w.write(tenant("1"), { fields: { conditions: [] } })).rejects.toThrow(/conditions/);
  });
});

describe("canonical", () => {
  it("is insensitive to key order at any depth and sensitive to array order", () => {
    expect(canonical({ a: 1, b: { c: 2, d: [1, 2] } })).toBe(canonical({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(canonical({ d: [1, 2] })).not.toBe(canonical({ d: [2, 1] }));
  });

  it("forgets its last write to an object once the cache shows that object anew, or the object is gone", async () => {
    const server = { status: {}, rv: 1 };
    const { client, applies } = recordingClient(server);
    const w = new StatusWriter(client, { fieldManager: "homelab-operator/peertenant" });
    const owned = { fields: { observedGeneration: 3 }, conditions: [failing] };
    expect(await w.write(tenant("1"), owned)).toBe(true);
    expect(w.rememberedObjects).toBe(1);
    // The cache still shows the version the write was made against (a resync): remembered, no rewrite.
    w.observed(tenant("1"));
    expect(w.rememberedObjects).toBe(1);
    expect(await w.write(tenant("1"), owned)).toBe(false);
    // The cache has the write: the cached object is the truth, nothing is kept beside it.
    w.observed(tenant("2", structuredClone(server.status)));
    expect(w.rememberedObjects).toBe(0);
    expect(await w.write(tenant("2", structuredClone(server.status)), owned)).toBe(false);
    expect(applies).toHaveLength(1);
    // Another object of the same name and namespace but of another kind is not this one.
    w.observed({ ...tenant("9"), kind: "Other" });
    expect(await w.write(tenant("2", structuredClone(server.status)), { ...owned, fields: { x: 1 } })).toBe(
      true,
    );
    w.observed({ ...tenant("9"), kind: "Other" });
    expect(w.rememberedObjects).toBe(1);
    w.forget(tenant("3"));
    expect(w.rememberedObjects).toBe(0);
  });
});
