// Where Cilium runs: the deny rules a tenant's own policies cannot override, on Cilium's real CRDs.
// No CNI runs here, so this asserts what the operator writes and what admission refuses; that deny
// rules win over allows is Cilium's documented semantics, not something a test without Cilium can show.
import { type KubeConfig, NetworkingV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, type KubeObject, type Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig, impersonating } from "../harness/test-cluster.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { startPeerTenantOperator } from "./operator.ts";
import {
  condition,
  expectAllowed,
  expectDenied,
  installFixtureCrd,
  RUN,
  tenantSpec,
  tenants,
  waitReady,
} from "./tenant-fixtures.ts";

const CNP = { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" };
const CCNP = { apiVersion: "cilium.io/v2", kind: "CiliumClusterwideNetworkPolicy" };
const CRD = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };

type Ccnp = KubeObject & {
  spec: {
    endpointSelector: unknown;
    egressDeny: {
      toCIDRSet?: { cidr: string; except?: string[] }[];
      toEntities?: string[];
      toEndpoints?: unknown[];
    }[];
    ingressDeny: unknown[];
  };
};

let admin: KubeConfig;
let client: KubeClient;
let manager: Manager | undefined;

beforeAll(async () => {
  admin = adminKubeConfig();
  client = new KubeClient(admin);
  await installFixtureCrd(admin, "v2_ciliumnetworkpolicies.yaml");
  await installFixtureCrd(admin, "v2_ciliumclusterwidenetworkpolicies.yaml");
  // Tenant owners may write their own CiliumNetworkPolicies, as on a cluster that lets them.
  await client.apply({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: {
      name: "e2e-tenant-cilium-policies",
      labels: { "rbac.authorization.k8s.io/aggregate-to-admin": "true" },
    },
    rules: [{ apiGroups: ["cilium.io"], resources: ["ciliumnetworkpolicies"], verbs: ["*"] }],
  });
  manager = await startPeerTenantOperator(admin, { watchCilium: true });
});

afterAll(async () => {
  await manager?.stop();
  for (const name of ["ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io"]) {
    await client.delete(CRD, { name }, { ignoreNotFound: true });
  }
  await client.delete(
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole" },
    { name: "e2e-tenant-cilium-policies" },
    { ignoreNotFound: true },
  );
});

describe("where Cilium runs", () => {
  const name = `cil-${RUN}`;
  const ns = `peers-${name}`;
  const ccnpName = `homelab-tenant-${name}`;
  let asOwner: KubeConfig;

  beforeAll(async () => {
    await tenants(admin).create(
      name,
      tenantSpec(name, { network: { egress: { cidrs: ["10.0.2.0/24"] }, allowIngressFromNamespaces: [] } }),
    );
    await waitReady(admin, name);
    asOwner = await impersonating(name, [`peers-${name}`]);
  });

  it("writes a clusterwide deny policy over the tenant's namespaces and Cilium's gateway allow", async () => {
    const ccnp = await client.get<Ccnp>(CCNP, { name: ccnpName });
    expect(ccnp.spec.endpointSelector).toEqual({
      matchExpressions: [{ key: "k8s:io.kubernetes.pod.namespace", operator: "In", values: [ns] }],
    });
    const sets = ccnp.spec.egressDeny[0]!.toCIDRSet!;
    expect(sets.map((s) => s.cidr)).toContain("192.168.0.0/16");
    expect(sets.find((s) => s.cidr === "10.0.0.0/8")?.except).toEqual([
      "10.0.2.0/24",
      "10.244.0.0/16",
      "10.96.0.0/12",
    ]);
    expect(ccnp.spec.egressDeny[1]!.toEntities).toEqual(["host", "remote-node"]);
    // Pods of other namespaces stay out of reach even through a `cluster` entity the tenant may name.
    expect(JSON.stringify(ccnp.spec.egressDeny[2])).toContain(
      `"operator":"NotIn","values":["kube-system","${ns}"]`,
    );
    expect(ccnp.metadata?.ownerReferences?.[0]?.name).toBe(name);
    const gateway = await client.get<KubeObject & { spec?: unknown }>(CNP, {
      namespace: ns,
      name: "tenant-allow-cilium-gateway",
    });
    expect(gateway.spec).toEqual({ endpointSelector: {}, ingress: [{ fromEntities: ["ingress"] }] });
    const t = await tenants(admin).get(name);
    expect(condition(t, "NetworkPoliciesApplied")?.message).toContain("CiliumClusterwideNetworkPolicy");
  });

  it("refuses the tenant's own policies that would widen egress, and the deny rules stay as written", async () => {
    const before = (await client.get<Ccnp>(CCNP, { name: ccnpName })).spec;
    const ownClient = new KubeClient(asOwner);
    const cnp = (policy: string, spec: Record<string, unknown>) =>
      ownClient.create({ ...CNP, metadata: { name: policy, namespace: ns }, spec });
    const everything = { endpointSelector: {} };
    await expectDenied(
      "a CiliumNetworkPolicy to the world",
      cnp("world", { ...everything, egress: [{ toEntities: ["world"] }] }),
      /tenant CiliumNetworkPolicies/,
    );
    await expectDenied(
      "a CiliumNetworkPolicy to the LAN by CIDR",
      cnp("lan", { ...everything, egress: [{ toCIDR: ["10.0.0.10/32"] }] }),
      /tenant CiliumNetworkPolicies/,
    );
    await expectDenied(
      "an L4-only rule (port 8006 to any peer)",
      cnp("pve", { ...everything, egress: [{ toPorts: [{ ports: [{ port: "8006", protocol: "TCP" }] }] }] }),
      /tenant CiliumNetworkPolicies/,
    );
    await expectDenied(
      "endpoints of another namespace",
      cnp("other-ns", {
        ...everything,
        egress: [{ toEndpoints: [{ matchLabels: { "k8s:io.kubernetes.pod.namespace": "kube-system" } }] }],
      }),
      /tenant CiliumNetworkPolicies/,
    );
    await expectDenied(
      "ingress from everything",
      cnp("from-all", { ...everything, ingress: [{ fromEntities: ["all"] }] }),
      /tenant CiliumNetworkPolicies/,
    );
    await expectDenied(
      "an allow-all NetworkPolicy",
      asOwner.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
        namespace: ns,
        body: {
          metadata: { name: "allow-all" },
          spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{}] },
        },
      }),
      /must name its peers/,
    );
    await expectAllowed(
      "a policy among her own pods",
      cnp("own", { ...everything, egress: [{ toEndpoints: [{ matchLabels: { app: "db" } }] }] }),
    );
    await expectAllowed(
      "a deny rule of her own (it only takes away)",
      cnp("deny-more", { ...everything, egressDeny: [{ toEntities: ["world"] }] }),
    );
    expect((await client.get<Ccnp>(CCNP, { name: ccnpName })).spec).toEqual(before);
  });

  it("restores the clusterwide policy at once when it is weakened (it is watched)", async () => {
    await client.patch(CCNP, { name: ccnpName }, { spec: { egressDeny: null } }, "merge");
    const restored = await waitFor(
      "the deny rules to be back",
      async () => {
        const c = await client.get<Ccnp>(CCNP, { name: ccnpName });
        return (c.spec.egressDeny?.length ?? 0) === 3 ? c : undefined;
      },
      10_000,
    );
    expect(restored.spec.ingressDeny).toHaveLength(1);
  });

  it("removes the clusterwide policy with the tenant", async () => {
    await tenants(admin).patchSpec(name, { deletionPolicy: "Delete" });
    await tenants(admin).delete(name);
    await waitFor(
      "the clusterwide policy to be gone",
      async () => {
        const err = await client.get(CCNP, { name: ccnpName }).then(
          () => undefined,
          (e: unknown) => e,
        );
        return statusOf(err) === 404 || (err as { statusCode?: number })?.statusCode === 404
          ? true
          : undefined;
      },
      30_000,
    );
  });
});
