// The vending quota controller watches ResourceQuotas through the PeerTenant controller's label selector,
// so both read one cache (bench/peer-tenant: a second, unselected one held every quota of the cluster).
// Attacks: the quota's labels stripped by hand (it leaves the selected cache: the API server reports a
// delete of its last labelled state) and the quota deleted; both times it comes back as it was.
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { TENANT_LABEL } from "../../src/controllers/peer-tenant/labels.ts";
import {
  VENDING_QUOTA_NAME,
  vendingQuotaController,
} from "../../src/controllers/peer-tenant/vending-quota.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { OPERATOR_NAMESPACE } from "./operator.ts";
import { RUN, tenantSpec, tenants, waitReady } from "./tenant-fixtures.ts";

const QUOTA = { apiVersion: "v1", kind: "ResourceQuota" };
const TENANT = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" };
const name = `vq-${RUN}`;
const ns = `peers-${name}`;

type Quota = KubeObject & { spec?: { hard?: Record<string, string> } };

let admin: KubeConfig;
let client: KubeClient;
let manager: Manager;

beforeAll(async () => {
  admin = adminKubeConfig();
  client = new KubeClient(admin);
  await installCRDs(admin);
  await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: OPERATOR_NAMESPACE } });
  manager = new Manager({
    kubeConfig: admin,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
    healthPort: 0,
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(
    peerTenantController({ operatorNamespace: OPERATOR_NAMESPACE, operatorUsernames: [] }),
  );
  manager.addController(vendingQuotaController());
  await manager.start();
  await tenants(admin).create(name, tenantSpec(name));
  await waitReady(admin, name, 60_000);
});

afterAll(async () => {
  await client?.delete(TENANT, { name }, { ignoreNotFound: true });
  await waitFor(
    "the tenant to be gone",
    async () => ((await client.getOrUndefined(TENANT, { name })) ? undefined : true),
    60_000,
  ).catch(() => {});
  await manager?.stop();
});

const quota = () => client.getOrUndefined<Quota>(QUOTA, { namespace: ns, name: VENDING_QUOTA_NAME });

async function labelledBack(what: string): Promise<Quota> {
  return waitFor(
    what,
    async () => {
      const q = await quota();
      return q?.metadata?.labels?.[TENANT_LABEL] === name && q.spec?.hard ? q : undefined;
    },
    30_000,
  );
}

describe("the vending quota on the tenant's ResourceQuota cache", () => {
  it("holds one ResourceQuota cache for both controllers", async () => {
    await labelledBack("the vending quota");
    const metrics = await (await fetch(`http://127.0.0.1:${manager.healthPort}/metrics`)).text();
    const caches = [
      ...metrics.matchAll(/^homelab_informer_cached_objects\{kind="v1, Kind=ResourceQuota",[^}]*\}/gm),
    ];
    expect(caches.map(([line]) => line)).toHaveLength(1);
  });

  it("puts back labels stripped by hand", async () => {
    const before = await labelledBack("the vending quota");
    const stripped = await client.patch<Quota>(
      QUOTA,
      { namespace: ns, name: VENDING_QUOTA_NAME },
      { metadata: { labels: { [TENANT_LABEL]: null, "app.kubernetes.io/managed-by": null } } },
      "merge",
    );
    expect(stripped.metadata?.labels?.[TENANT_LABEL]).toBeUndefined();
    const back = await labelledBack("the labels back");
    expect(back.metadata?.uid).toBe(before.metadata?.uid);
    expect(back.spec?.hard).toEqual(before.spec?.hard);
  });

  it("makes a deleted quota again", async () => {
    const before = await labelledBack("the vending quota");
    await client.delete(QUOTA, { namespace: ns, name: VENDING_QUOTA_NAME });
    const back = await waitFor(
      "a new vending quota",
      async () => {
        const q = await labelledBack("the vending quota");
        return q.metadata?.uid !== before.metadata?.uid ? q : undefined;
      },
      30_000,
    );
    expect(back.spec?.hard).toEqual(before.spec?.hard);
  });
});
