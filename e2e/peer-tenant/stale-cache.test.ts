// A namespace delete decided from a stale cache must not happen: the operator's Namespace watch is held
// back by the fault proxy (its cache still shows the namespace as the tenant's), the namespace is handed
// to someone else, and the tenant's spec stops listing it. The operator sees the spec change at once but
// must check the namespace and the tenant live before deleting anything.
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { type FaultProxy, startFaultProxy } from "../runtime/fault-proxy.ts";
import { startPeerTenantOperator } from "./operator.ts";
import { RUN, tenants, waitReady } from "./tenant-fixtures.ts";

const admin = adminKubeConfig();
const core = () => admin.makeApiClient(CoreV1Api);
let proxy: FaultProxy;
let manager: Manager;

beforeAll(async () => {
  proxy = await startFaultProxy(admin);
  manager = await startPeerTenantOperator(proxy.kubeConfig());
});
afterAll(async () => {
  proxy?.releaseWatches();
  await manager?.stop();
  await proxy?.close();
});

describe("PeerTenant namespace deletion from a stale cache", () => {
  it("does not delete a namespace that, live, is no longer the tenant's", async () => {
    const name = `stale-${RUN}`;
    const extra = `peers-${name}-extra`;
    await tenants(admin).create(name, {
      owners: { users: [name] },
      namespaces: { additional: [extra] },
      deletionPolicy: "Delete",
    });
    await waitReady(admin, name, 60_000);
    await core().readNamespace({ name: extra });

    proxy.holdWatches("/api/v1/namespaces");
    // Handed over: the label now names another owner; the operator's cache does not know yet.
    await core().patchNamespace({
      name: extra,
      body: [{ op: "replace", path: "/metadata/labels/homelab.shdr.ch~1tenant", value: "someone-else" }],
    });
    await tenants(admin).patchSpec(name, { namespaces: { additional: [] } });
    // The tenant's watch is not held: the new generation is reconciled (with the stale namespace cache).
    await waitReady(admin, name, 60_000);

    const ns = await core().readNamespace({ name: extra });
    expect(ns.metadata?.deletionTimestamp).toBeUndefined();
    expect(ns.metadata?.labels?.["homelab.shdr.ch/tenant"]).toBe("someone-else");

    proxy.releaseWatches();
    await tenants(admin).delete(name);
    await core().deleteNamespace({ name: extra });
  });
});
