import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/runtime/client.ts";
import { KubeClient as Client } from "../../src/runtime/client.ts";
import { type Condition, setCondition } from "../../src/runtime/conditions.ts";
import { EventRecorder } from "../../src/runtime/events.ts";
import { addFinalizer, removeFinalizer } from "../../src/runtime/finalizers.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { adminClient, CONFIGMAP, eventually, freshNamespace } from "./support.ts";

const WIDGET = { apiVersion: "runtime-test.homelab.shdr.ch/v1", kind: "Widget" } as const;
type Widget = KubeObject & {
  spec?: { size?: number };
  status?: { conditions?: Condition[]; observedGeneration?: number };
};

let admin: KubeClient;
let ns: string;

beforeAll(async () => {
  admin = adminClient();
  ns = await freshNamespace(admin, "helpers");
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.runtime-test.homelab.shdr.ch" },
    spec: {
      group: "runtime-test.homelab.shdr.ch",
      names: { kind: "Widget", plural: "widgets", singular: "widget", listKind: "WidgetList" },
      scope: "Namespaced",
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: { type: "object", properties: { size: { type: "integer" } } },
                status: {
                  type: "object",
                  properties: {
                    observedGeneration: { type: "integer" },
                    conditions: {
                      type: "array",
                      "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["type"],
                      items: {
                        type: "object",
                        required: ["type", "status", "lastTransitionTime", "reason", "message"],
                        properties: {
                          type: { type: "string" },
                          status: { type: "string", enum: ["True", "False", "Unknown"] },
                          observedGeneration: { type: "integer" },
                          lastTransitionTime: { type: "string", format: "date-time" },
                          reason: { type: "string" },
                          message: { type: "string" },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
  try {
    await admin.create(crd);
  } catch (err) {
    if (!String(err).includes("AlreadyExists")) throw err;
  }
  await eventually("the Widget CRD to be served", async () => {
    await admin.list(WIDGET, { namespace: ns });
    return true;
  });
});

afterAll(async () => {
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: ns }, { ignoreNotFound: true });
  await admin?.delete(
    { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
    { name: "widgets.runtime-test.homelab.shdr.ch" },
    { ignoreNotFound: true },
  );
});

describe("finalizer helpers", () => {
  it("add and remove only their own entry, even from a stale copy while others edit the list", async () => {
    const created = await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "fin", namespace: ns, finalizers: ["example.com/first"] },
    });
    // Someone else adds a finalizer after we read the object: our copy is stale.
    await admin.patch(
      CONFIGMAP,
      { namespace: ns, name: "fin" },
      [{ op: "add", path: "/metadata/finalizers/-", value: "example.com/second" }],
      "json",
    );
    const withOurs = await addFinalizer(admin, created, "homelab.shdr.ch/test");
    expect(withOurs.metadata?.finalizers).toEqual([
      "example.com/first",
      "example.com/second",
      "homelab.shdr.ch/test",
    ]);
    // Adding again is a no-op.
    expect((await addFinalizer(admin, withOurs, "homelab.shdr.ch/test")).metadata?.finalizers).toHaveLength(
      3,
    );

    // Someone else removes theirs, shifting our index: removal still takes exactly our entry.
    await admin.patch(
      CONFIGMAP,
      { namespace: ns, name: "fin" },
      [{ op: "remove", path: "/metadata/finalizers/0" }],
      "json",
    );
    const without = await removeFinalizer(admin, withOurs, "homelab.shdr.ch/test");
    expect(without?.metadata?.finalizers).toEqual(["example.com/second"]);
  });

  it("adds the first finalizer to an object that has none", async () => {
    const created = await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "fin-empty", namespace: ns },
    });
    const done = await addFinalizer(admin, created, "homelab.shdr.ch/test");
    expect(done.metadata?.finalizers).toEqual(["homelab.shdr.ch/test"]);
    await admin.delete(CONFIGMAP, { namespace: ns, name: "fin-empty" });
    const deleting = await admin.get<KubeObject>(CONFIGMAP, { namespace: ns, name: "fin-empty" });
    expect(deleting.metadata?.deletionTimestamp).toBeDefined();
    await removeFinalizer(admin, deleting, "homelab.shdr.ch/test");
    expect(await admin.getOrUndefined(CONFIGMAP, { namespace: ns, name: "fin-empty" })).toBeUndefined();
  });
});

describe("server-side apply", () => {
  it("applies with the homelab-operator field manager and forces conflicts on fields it manages", async () => {
    const other = new Client(adminKubeConfig(), { fieldManager: "someone-else" });
    await other.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "ssa", namespace: ns },
      data: { owned: "theirs", extra: "kept" },
    });
    const applied = await admin.apply<KubeObject & { data?: Record<string, string> }>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "ssa", namespace: ns },
      data: { owned: "ours" },
    });
    expect(applied.data).toEqual({ owned: "ours", extra: "kept" });
    const managers = ((applied.metadata?.managedFields ?? []) as { manager: string }[])
      .map((m) => m.manager)
      .sort();
    expect(managers).toEqual(["homelab-operator", "someone-else"]);
    // An object read back from the API (managedFields and all) can be applied again as is.
    const again = await admin.apply({ ...applied, data: { owned: "ours-2" } });
    expect((again as { data?: Record<string, string> }).data?.owned).toBe("ours-2");
    // Without force, the other manager's conflicting apply is refused.
    await expect(
      other.apply(
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "ssa", namespace: ns },
          data: { owned: "theirs" },
        },
        { force: false },
      ),
    ).rejects.toMatchObject({ code: 409 });
  });
});

describe("status and Conditions", () => {
  it("writes status through the subresource; lastTransitionTime moves only when the status flips", async () => {
    const w = await admin.create<Widget>({
      ...WIDGET,
      metadata: { name: "w1", namespace: ns },
      spec: { size: 1 },
    });
    const t0 = new Date("2026-01-01T00:00:00Z");
    let conditions = setCondition(
      [],
      {
        type: "Ready",
        status: "False",
        reason: "Provisioning",
        observedGeneration: w.metadata?.generation ?? 0,
      },
      t0,
    );
    await admin.applyStatus({
      ...WIDGET,
      metadata: { name: "w1", namespace: ns },
      status: { observedGeneration: 1, conditions },
    });

    const bumped = await admin.patch<Widget>(
      WIDGET,
      { namespace: ns, name: "w1" },
      { spec: { size: 2 } },
      "merge",
    );
    expect(bumped.metadata?.generation).toBe(2);
    const current = await admin.get<Widget>(WIDGET, { namespace: ns, name: "w1" });
    conditions = setCondition(
      current.status?.conditions,
      { type: "Ready", status: "False", reason: "WaitingForVMs", observedGeneration: 2 },
      new Date("2026-01-01T00:05:00Z"),
    );
    let stored = await admin.applyStatus<Widget>({
      ...WIDGET,
      metadata: { name: "w1", namespace: ns },
      status: { observedGeneration: 2, conditions },
    });
    expect(stored.status?.conditions?.[0]).toMatchObject({
      reason: "WaitingForVMs",
      observedGeneration: 2,
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });

    conditions = setCondition(
      stored.status?.conditions,
      { type: "Ready", status: "True", reason: "Available", observedGeneration: 2 },
      new Date("2026-01-01T00:10:00Z"),
    );
    stored = await admin.patchStatus<Widget>(WIDGET, { namespace: ns, name: "w1" }, { conditions });
    expect(stored.status?.conditions?.[0]).toMatchObject({
      status: "True",
      lastTransitionTime: "2026-01-01T00:10:00Z",
    });
    // The main resource ignores status writes (status subresource enabled).
    const viaMain = await admin.patch<Widget>(
      WIDGET,
      { namespace: ns, name: "w1" },
      { status: { observedGeneration: 99 } },
      "merge",
    );
    expect(viaMain.status?.observedGeneration).toBe(2);
  });
});

describe("Events", () => {
  it("records an events.k8s.io/v1 Event and folds repeats into its series", async () => {
    const regarding = await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "evented", namespace: ns },
    });
    const recorder = new EventRecorder(admin, { reportingInstance: "test-instance" });
    const input = {
      type: "Warning" as const,
      reason: "ImageMissing",
      action: "Download",
      note: "image talos-v1.11 not on local storage",
    };
    await recorder.recordOrThrow(regarding, input);
    await recorder.recordOrThrow(regarding, input);
    await recorder.recordOrThrow(regarding, input);
    await recorder.recordOrThrow(regarding, {
      ...input,
      reason: "ImageDownloaded",
      type: "Normal",
      note: "done",
    });
    await recorder.stop(); // repeats are counted in memory and written into the series on flush
    const events = await eventually("two Events", async () => {
      const list = await admin.list<KubeObject & Record<string, unknown>>(
        { apiVersion: "events.k8s.io/v1", kind: "Event" },
        { namespace: ns },
      );
      const mine = list.items.filter((e) => (e.regarding as { name?: string }).name === "evented");
      return mine.length === 2 ? mine : undefined;
    });
    const missing = events.find((e) => e.reason === "ImageMissing")!;
    expect(missing).toMatchObject({
      type: "Warning",
      action: "Download",
      reportingController: "homelab.shdr.ch/homelab-operator",
      reportingInstance: "test-instance",
      series: { count: 3 },
      regarding: { kind: "ConfigMap", name: "evented", namespace: ns, uid: regarding.metadata?.uid },
    });
    expect(events.find((e) => e.reason === "ImageDownloaded")?.series).toBeUndefined();
  });
});
