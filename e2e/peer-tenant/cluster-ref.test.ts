// spec.clusterRef: the tenant lives in a HomelabCluster's workload cluster (here a second control plane
// whose admin kubeconfig is in the `<cluster>-kubeconfig` Secret), its PeerTenant and status stay in the
// management cluster, and the guardrails are proven there by the owner's own requests.
import { readFileSync } from "node:fs";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, type Manager } from "../../src/runtime/index.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { OPERATOR_NAMESPACE, startPeerTenantOperator } from "./operator.ts";
import {
  compliantPod,
  condition,
  expectAllowed,
  expectDenied,
  RUN,
  tenantSpec,
  tenants,
  waitReady,
} from "./tenant-fixtures.ts";

let workload: ControlPlane;
let admin: KubeConfig;
let manager: Manager | undefined;
const clusterName = `wl-${RUN}`;

/** The workload cluster's admin kubeconfig with its certificates inline, as a kubeconfig Secret holds it. */
function inlineKubeconfig(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  // client-node keeps either the file or its base64 data, depending on how the kubeconfig was written.
  const b64 = (data: string | undefined, file: string | undefined) =>
    data ?? Buffer.from(readFileSync(file!)).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "workload",
        cluster: {
          server: cluster.server,
          "certificate-authority-data": b64(cluster.caData, cluster.caFile),
        },
      },
    ],
    users: [
      {
        name: "admin",
        user: {
          "client-certificate-data": b64(user.certData, user.certFile),
          "client-key-data": b64(user.keyData, user.keyFile),
        },
      },
    ],
    contexts: [{ name: "workload", context: { cluster: "workload", user: "admin" } }],
    "current-context": "workload",
  });
}

beforeAll(async () => {
  admin = adminKubeConfig();
  workload = await startControlPlane({ name: "workload" });
  manager = await startPeerTenantOperator(admin);
  await new KubeClient(admin).apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `${clusterName}-kubeconfig`, namespace: OPERATOR_NAMESPACE },
    data: { value: Buffer.from(inlineKubeconfig(workload.kubeConfig())).toString("base64") },
  });
});

afterAll(async () => {
  await manager?.stop();
  await workload?.stop();
});

describe("a tenant in a workload cluster", () => {
  const name = `far-${RUN}`;
  const ns = `peers-${name}`;

  it("is provisioned there and reported here", async () => {
    await tenants(admin).create(
      name,
      tenantSpec(name, { clusterRef: clusterName, deletionPolicy: "Delete" }),
    );
    const t = await waitReady(admin, name, 60_000);
    expect(condition(t, "ClusterConnected")?.status).toBe("True");
    const there = await workload.kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: ns });
    expect(there.metadata?.labels?.["homelab.shdr.ch/tenant"]).toBe(name);
    // Nothing in the management cluster.
    const here = await admin
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: ns })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusOf(here)).toBe(404);
    // No ownerReference to a PeerTenant the workload cluster does not have (its GC would delete them).
    const quota = await workload
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns });
    expect(quota.metadata?.ownerReferences ?? []).toEqual([]);
  });

  it("guards it there: the owner, logged in to the workload cluster, works but cannot get around it", async () => {
    const asOwner = await workload.userKubeConfig(name, [`peers-${name}`]);
    const c = asOwner.makeApiClient(CoreV1Api);
    await waitFor("the default service account", () =>
      workload
        .kubeConfig()
        .makeApiClient(CoreV1Api)
        .readNamespacedServiceAccount({ name: "default", namespace: ns }),
    );
    await expectAllowed(
      "a compliant pod",
      c.createNamespacedPod({ namespace: ns, body: compliantPod("web", "128Mi", { owner: name }) }),
    );
    await expectDenied(
      "a NodePort Service",
      c.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: "np" }, spec: { type: "NodePort", ports: [{ port: 80 }] } },
      }),
      /Services of type NodePort are not allowed/,
    );
    await expectDenied(
      "an allow-all egress NetworkPolicy",
      new KubeClient(asOwner).create({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "all", namespace: ns },
        spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{}] },
      }),
      /must name its peers/,
    );
    await expectDenied(
      "reading another namespace",
      c.listNamespacedSecret({ namespace: "kube-system" }),
      /cannot list resource "secrets"/,
    );
  });

  it("undoes drift in the workload cluster through its watches", async () => {
    const client = new KubeClient(workload.kubeConfig());
    const gvk = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" };
    await client.delete(gvk, { namespace: ns, name: "tenant-default-deny" });
    await waitFor(
      "tenant-default-deny to be back",
      () => client.get(gvk, { namespace: ns, name: "tenant-default-deny" }),
      15_000,
    );
  });

  it("deletes the namespaces there before the tenant goes", async () => {
    await tenants(admin).delete(name);
    await waitFor(
      "the workload namespace and then the tenant to be gone",
      async () => {
        const nsErr = await workload
          .kubeConfig()
          .makeApiClient(CoreV1Api)
          .readNamespace({ name: ns })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        const tErr = await tenants(admin)
          .get(name)
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        return statusOf(nsErr) === 404 && statusOf(tErr) === 404 ? true : undefined;
      },
      90_000,
    );
  });
});
