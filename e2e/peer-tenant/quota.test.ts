// Tenant-wide quota under load, on a control plane of its own that also runs the Deployment and
// ReplicaSet controllers: their FailedCreate events ("exceeded quota") are the signal that moves
// headroom to the namespace that asked for it.
import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseQuantity } from "../../src/controllers/shared/quantity.ts";
import { KubeClient, type KubeObject, type Manager } from "../../src/runtime/index.ts";
import { type ControlPlane, DEFAULT_CONTROLLERS, startControlPlane } from "../harness/control-plane.ts";
import { waitFor } from "../harness/wait.ts";
import { startPeerTenantOperator } from "./operator.ts";
import { compliantPod, RUN, tenantSpec, tenants, waitReady } from "./tenant-fixtures.ts";

let cp: ControlPlane;
let admin: KubeConfig;
let manager: Manager | undefined;

beforeAll(async () => {
  cp = await startControlPlane({
    name: "quota",
    controllers: [...DEFAULT_CONTROLLERS, "deployment-controller", "replicaset-controller"],
  });
  admin = cp.kubeConfig();
  manager = await startPeerTenantOperator(admin);
});

afterAll(async () => {
  await manager?.stop();
  await cp?.stop();
});

const MEMORY = "requests.memory";

/** Every ResourceQuota write of one tenant as the API server streams it, and the sums over time. */
class HardAudit {
  readonly rows: { at: number; ns: string; hard: string; sum: bigint }[] = [];
  private readonly latest = new Map<string, bigint>();
  private readonly abort = new AbortController();
  private readonly started = Date.now();
  private loop: Promise<void> | undefined;

  private readonly client: KubeClient;
  private readonly tenant: string;

  constructor(client: KubeClient, tenant: string) {
    this.client = client;
    this.tenant = tenant;
  }

  async start(): Promise<void> {
    const list = await this.client.list<KubeObject & { spec?: { hard?: Record<string, string> } }>(
      { apiVersion: "v1", kind: "ResourceQuota" },
      { labelSelector: `homelab.shdr.ch/tenant=${this.tenant}` },
    );
    for (const q of list.items) this.observe(q);
    const stream = this.client.watch<KubeObject & { spec?: { hard?: Record<string, string> } }>(
      { apiVersion: "v1", kind: "ResourceQuota" },
      {
        labelSelector: `homelab.shdr.ch/tenant=${this.tenant}`,
        resourceVersion: list.resourceVersion,
        signal: this.abort.signal,
      },
    );
    this.loop = (async () => {
      try {
        for await (const ev of stream) if (ev.type !== "BOOKMARK") this.observe(ev.object);
      } catch (err) {
        if (!this.abort.signal.aborted) throw err;
      }
    })();
  }

  private observe(q: KubeObject & { spec?: { hard?: Record<string, string> } }): void {
    const ns = q.metadata?.namespace ?? "";
    const hard = q.spec?.hard?.[MEMORY];
    // Status updates (usage) arrive as events too; only a change of the hard limit is a row.
    if (hard === undefined || this.latest.get(ns) === parseQuantity(hard)) return;
    this.latest.set(ns, parseQuantity(hard));
    const sum = [...this.latest.values()].reduce((a, b) => a + b, 0n);
    this.rows.push({ at: Date.now() - this.started, ns, hard, sum });
  }

  maxSum(): bigint {
    let max = 0n;
    for (const r of this.rows) if (r.sum > max) max = r.sum;
    return max;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  print(title: string): void {
    const gi = (v: bigint) => `${Number(v / 1000n) / 2 ** 30}Gi`;
    console.log(
      `[quota audit] ${title}: ${this.rows.length} ResourceQuota writes seen\n${this.rows
        .map(
          (r) =>
            `  +${String(r.at).padStart(6)} ms  ${r.ns.padEnd(28)} hard=${r.hard.padEnd(8)} sum=${gi(r.sum)}`,
        )
        .join("\n")}`,
    );
  }
}

describe("tenant-wide quota under concurrent load", () => {
  it("never lets the sum of hard limits pass the total while pods race in two namespaces", async () => {
    const name = `race-${RUN}`;
    const ns1 = `peers-${name}`;
    const ns2 = `peers-${name}-b`;
    await tenants(admin).create(
      name,
      tenantSpec(name, {
        namespaces: { additional: [ns2], max: 2 },
        quota: { perNamespace: { [MEMORY]: "4Gi", pods: "20" }, tenantTotal: { [MEMORY]: "6Gi" } },
      }),
    );
    await waitReady(admin, name);
    const core = admin.makeApiClient(CoreV1Api);
    for (const ns of [ns1, ns2]) {
      await waitFor(`service account in ${ns}`, () =>
        core.readNamespacedServiceAccount({ name: "default", namespace: ns }),
      );
    }
    const audit = new HardAudit(new KubeClient(admin), name);
    await audit.start();
    // 16 pods of 512Mi (8Gi) against a 6Gi total, both namespaces at once, in waves so the operator
    // rebalances between them: ns1 asks for more first, then ns2.
    const admitted: string[] = [];
    for (let wave = 0; wave < 4; wave++) {
      const perNs = wave < 2 ? { [ns1]: 3, [ns2]: 1 } : { [ns1]: 1, [ns2]: 3 };
      const attempts = [ns1, ns2].flatMap((ns) =>
        Array.from({ length: perNs[ns]! }, (_, i) => i).map((i) =>
          core
            .createNamespacedPod({
              namespace: ns,
              body: compliantPod(`p${wave}-${i}`, "512Mi", { owner: name }),
            })
            .then(
              () => admitted.push(ns),
              () => undefined,
            ),
        ),
      );
      await Promise.all(attempts);
      await new Promise((r) => setTimeout(r, 1_500));
    }
    await audit.stop();
    audit.print(`${name}, total 6Gi`);
    const used = admitted.length * 512;
    console.log(`[quota audit] admitted ${admitted.length} pods (${used}Mi) of 16 tried`);
    expect(audit.rows.length).toBeGreaterThan(2);
    expect(audit.maxSum()).toBeLessThanOrEqual(parseQuantity("6Gi"));
    expect(used).toBeLessThanOrEqual(6 * 1024);
    // Headroom moved: more than the first even split (3Gi each, 12 pods) was never needed, but both
    // namespaces got pods and the total was used up to what fits.
    expect(admitted.length).toBeGreaterThanOrEqual(10);
  });

  it("moves headroom to the namespace whose 4Gi pod was refused, and the pod lands", async () => {
    const name = `big-${RUN}`;
    const ns1 = `peers-${name}`;
    const ns2 = `peers-${name}-b`;
    await tenants(admin).create(
      name,
      tenantSpec(name, {
        namespaces: { additional: [ns2], max: 2 },
        quota: { perNamespace: { [MEMORY]: "4Gi" }, tenantTotal: { [MEMORY]: "6Gi" } },
      }),
    );
    await waitReady(admin, name);
    const core = admin.makeApiClient(CoreV1Api);
    await waitFor(`service account in ${ns2}`, () =>
      core.readNamespacedServiceAccount({ name: "default", namespace: ns2 }),
    );
    const hard = async (ns: string) =>
      (await core.readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns })).spec?.hard?.[MEMORY];
    expect([await hard(ns1), await hard(ns2)]).toEqual(["3Gi", "3Gi"]);
    const audit = new HardAudit(new KubeClient(admin), name);
    await audit.start();
    const started = Date.now();
    const pod = compliantPod("x", "4Gi", { owner: name, app: "big" });
    await admin.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: ns2,
      body: {
        metadata: { name: "big" },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "big" } },
          template: { metadata: { labels: { app: "big", owner: name } }, spec: pod.spec },
        },
      },
    });
    const landed = await waitFor(
      "the 4Gi pod to be admitted in ns2",
      async () => {
        const pods = await core.listNamespacedPod({ namespace: ns2, labelSelector: "app=big" });
        return pods.items.length > 0 ? pods.items[0] : undefined;
      },
      60_000,
      250,
    );
    const ms = Date.now() - started;
    await audit.stop();
    audit.print(`${name}, a 4Gi Deployment in ${ns2}`);
    console.log(
      `[quota audit] the 4Gi pod ${landed.metadata?.name} was admitted ${ms} ms after the Deployment`,
    );
    expect([await hard(ns1), await hard(ns2)]).toEqual(["2Gi", "4Gi"]);
    expect(audit.maxSum()).toBeLessThanOrEqual(parseQuantity("6Gi"));
    const events = await core.listNamespacedEvent({ namespace: ns2, fieldSelector: "reason=FailedCreate" });
    expect(events.items.some((e) => e.message?.includes("exceeded quota: tenant-quota"))).toBe(true);
  });
});
