// Status and Events as the API server sees them, counted from its audit log: two controllers' conditions
// on one object survive each other (server-side apply per field manager), a reconcile failing 100 times
// writes its Ready=False once and a handful of Event requests, and a paused object gets no writes at all
// until the annotation goes.
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PAUSED_ANNOTATION } from "../../src/controllers/shared/paused.ts";
import { installCRDs } from "../../src/crds/install.ts";
import {
  type Condition,
  createLogger,
  KubeClient,
  type KubeObject,
  Manager,
} from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import { startPeerTenantOperator } from "../peer-tenant/operator.ts";
import { condition, RUN, tenants, waitReady } from "../peer-tenant/tenant-fixtures.ts";
import { type AuditEvent, type AuditedCluster, startAuditedCluster, WRITE_VERBS } from "./audited-cluster.ts";

const TENANT = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" };

let cluster: AuditedCluster;
let admin: KubeConfig;
let client: KubeClient;
const managers: Manager[] = [];

beforeAll(async () => {
  cluster = await startAuditedCluster("status");
  admin = cluster.cp.kubeConfig();
  client = new KubeClient(admin);
  await installCRDs(admin);
}, 180_000);

afterAll(async () => {
  for (const m of managers) await m.stop();
  await cluster?.stop();
});

function manager(level = "warn"): Manager {
  const m = new Manager({
    kubeConfig: admin,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? level }),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  managers.push(m);
  return m;
}

/** A PeerTenant no PeerTenant controller acts on here (none runs in these tests): just an object with our status schema. */
async function bareTenant(name: string): Promise<KubeObject> {
  return tenants(admin).create(name, {
    owners: { users: [name], groups: [] },
  }) as unknown as Promise<KubeObject>;
}

const writesTo = (events: AuditEvent[], match: (e: AuditEvent) => boolean) =>
  events.filter((e) => WRITE_VERBS.has(e.verb) && match(e));

async function conditionsOf(name: string): Promise<Condition[]> {
  const t = await client.get<KubeObject>(TENANT, { name });
  return ((t.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];
}

describe("status through server-side apply per controller", () => {
  it("keeps both conditions when two controllers write different conditions of one object", async () => {
    const name = `two-writers-${RUN}`;
    const m = manager();
    for (const who of ["alpha", "beta"]) {
      m.addController({
        name: `cond-${who}`,
        for: TENANT,
        async reconcile(_req, ctx) {
          const obj = ctx.object();
          if (!obj || obj.metadata?.name !== name) return undefined;
          const round = obj.metadata?.annotations?.["round"] ?? "0";
          await ctx.writeStatus(obj, {
            conditions: [
              {
                type: who === "alpha" ? "AlphaChecked" : "BetaChecked",
                status: "True",
                reason: "Checked",
                message: `${who} saw round ${round}`,
              },
            ],
          });
          return undefined;
        },
      });
    }
    await m.start();
    await bareTenant(name);
    for (const round of ["1", "2", "3"]) {
      await client.patch(TENANT, { name }, { metadata: { annotations: { round } } }, "merge");
      const both = await waitFor(`both conditions at round ${round}`, async () => {
        const c = await conditionsOf(name);
        const ok = ["alpha", "beta"].every((who) => c.some((x) => x.message === `${who} saw round ${round}`));
        return ok ? c : undefined;
      });
      expect(both.map((c) => c.type).sort()).toEqual(["AlphaChecked", "BetaChecked"]);
    }
    const t = await client.get<KubeObject>(TENANT, { name });
    const fields = (t.metadata?.managedFields ?? []) as { manager?: string; subresource?: string }[];
    const managersOfStatus = fields
      .filter((f) => f.subresource === "status")
      .map((f) => f.manager)
      .sort();
    expect(managersOfStatus).toEqual(["homelab-operator/cond-alpha", "homelab-operator/cond-beta"]);
    // Settled: neither wakes the other into another write (each writes only when its own part changes).
    const before = writesTo(await cluster.events(), (e) => e.objectRef?.name === name).length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(writesTo(await cluster.events(), (e) => e.objectRef?.name === name).length).toBe(before);
  });

  it("a reconcile failing 100 times in a row writes Ready=False once and a handful of Event requests", async () => {
    const name = `failing-${RUN}`;
    await bareTenant(name);
    let attempts = 0;
    const m = manager("fatal"); // a hundred logged failures say nothing new
    m.addController({
      name: "always-failing",
      for: TENANT,
      backoff: { baseMs: 5, maxMs: 20 },
      async reconcile(_req, ctx) {
        const obj = ctx.object();
        if (!obj || obj.metadata?.name !== name || attempts >= 100) return undefined;
        attempts++;
        const message = "dependency example.com is unavailable";
        await ctx.writeStatus(obj, {
          conditions: [{ type: "Ready", status: "False", reason: "ReconcileFailed", message }],
        });
        await ctx.recorder.record(obj, {
          type: "Warning",
          reason: "ReconcileFailed",
          action: "Reconcile",
          note: message,
        });
        throw new Error(message);
      },
    });
    const startedAt = new Date();
    await m.start();
    await waitFor("100 failed reconciles", () => attempts >= 100, 60_000);
    await m.stop(); // flushes the Event's counted repeats
    await new Promise((r) => setTimeout(r, 200));

    const events = (await cluster.events()).filter((e) => new Date(e.requestReceivedTimestamp) >= startedAt);
    const statusWrites = writesTo(
      events,
      (e) =>
        e.objectRef?.resource === "peertenants" &&
        e.objectRef.subresource === "status" &&
        e.objectRef.name === name,
    );
    // Only this controller records Events here (about a cluster-scoped object: in namespace default).
    const eventWrites = writesTo(
      events,
      (e) => e.objectRef?.resource === "events" && e.objectRef.namespace === "default",
    );
    console.log(
      `[status-events] ${attempts} failed reconciles: ${statusWrites.length} status write(s), ${eventWrites.length} Event request(s) (${eventWrites.map((e) => e.verb).join(", ")})`,
    );
    expect(attempts).toBe(100);
    expect(statusWrites).toHaveLength(1);
    expect(eventWrites.length).toBeGreaterThanOrEqual(1);
    expect(eventWrites.length).toBeLessThanOrEqual(3);
    const ready = (await conditionsOf(name)).find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "ReconcileFailed" });
    const list = await client.list<KubeObject & { series?: { count: number }; reason?: string }>(
      { apiVersion: "events.k8s.io/v1", kind: "Event" },
      { namespace: "default" },
    );
    const mine = list.items.filter((e) => (e as { regarding?: { name?: string } }).regarding?.name === name);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.series?.count).toBe(100);
  });
});

describe("the paused annotation", () => {
  it("stops every write of the PeerTenant controller for the object, and removing it resumes", async () => {
    const operator = await startPeerTenantOperator(admin);
    managers.push(operator);
    const name = `paused-${RUN}`;
    const ns = `peers-${name}`;
    const touches = (e: AuditEvent) =>
      e.objectRef?.name === name || e.objectRef?.namespace === ns || e.objectRef?.name === ns;
    const pausedCount = async () => {
      const m = await operator.metrics.registry.getSingleMetric("controller_runtime_reconcile_total")?.get();
      return (m?.values ?? [])
        .filter((v) => v.labels["result"] === "paused")
        .reduce((s, v) => s + v.value, 0);
    };

    // Created paused: the controller sees it and does nothing (no finalizer, no namespace, no status).
    const created = await client.create<KubeObject>({
      ...TENANT,
      metadata: { name, annotations: { [PAUSED_ANNOTATION]: "true" } },
      spec: { owners: { users: [name], groups: [] }, quota: { perNamespace: { pods: "10" } } },
    });
    const since = new Date();
    expect(created.metadata?.annotations?.[PAUSED_ANNOTATION]).toBe("true");
    await waitFor("the controller to skip the paused tenant", async () => (await pausedCount()) >= 1);
    await client.patch(TENANT, { name }, { metadata: { annotations: { nudge: "1" } } }, "merge");
    await waitFor("a second skipped reconcile", async () => (await pausedCount()) >= 2);
    await new Promise((r) => setTimeout(r, 1000));
    const ourWrites = () =>
      cluster
        .events()
        .then((all) =>
          writesTo(all, touches).filter(
            (e) => new Date(e.requestReceivedTimestamp) >= since && !e.user.username.startsWith("system:"),
          ),
        );
    // The test's own nudge is the only write since the create.
    expect((await ourWrites()).map((e) => `${e.verb} ${e.objectRef?.resource}`)).toEqual([
      "patch peertenants",
    ]);
    expect(
      await client.getOrUndefined({ apiVersion: "v1", kind: "Namespace" }, { name: ns }),
    ).toBeUndefined();

    // Unpaused: reconciled at once.
    await client.patch(
      TENANT,
      { name },
      { metadata: { annotations: { [PAUSED_ANNOTATION]: null } } },
      "merge",
    );
    const ready = await waitReady(admin, name, 60_000);
    expect(condition(ready, "Ready")?.status).toBe("True");

    // Paused again, then a spec change: the quota stays as it was until the pause ends.
    await client.patch(
      TENANT,
      { name },
      { metadata: { annotations: { [PAUSED_ANNOTATION]: "true" } } },
      "merge",
    );
    const skipped = await pausedCount();
    await client.patch(TENANT, { name }, { spec: { quota: { perNamespace: { pods: "20" } } } }, "merge");
    await waitFor("the change to be skipped", async () => (await pausedCount()) > skipped);
    const hard = async () =>
      (
        await client.list<KubeObject & { spec?: { hard?: Record<string, string> } }>(
          { apiVersion: "v1", kind: "ResourceQuota" },
          { namespace: ns },
        )
      ).items[0]?.spec?.hard?.["pods"];
    await new Promise((r) => setTimeout(r, 1000));
    expect(await hard()).toBe("10");
    await client.patch(
      TENANT,
      { name },
      { metadata: { annotations: { [PAUSED_ANNOTATION]: null } } },
      "merge",
    );
    await waitFor("the quota to follow the spec once unpaused", async () => (await hard()) === "20", 30_000);
  });
});
