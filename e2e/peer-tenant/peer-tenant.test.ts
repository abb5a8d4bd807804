// PeerTenant on the real control plane: what a tenant converges to, proven by real API calls made as
// the tenant's owners (client certificates for user + group, as OIDC would present them).
import {
  CoreV1Api,
  EventsV1Api,
  type KubeConfig,
  NetworkingV1Api,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GITLAB_CI_ACCESS_CONFIGMAP } from "../../src/controllers/peer-tenant/controller.ts";
import { parseQuantity } from "../../src/controllers/shared/quantity.ts";
import { KubeClient, type KubeObject, type Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig, impersonating } from "../harness/test-cluster.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { isolationMatrix } from "./matrix.ts";
import { OPERATOR_NAMESPACE, startPeerTenantOperator } from "./operator.ts";
import {
  compliantPod,
  condition,
  expectAllowed,
  expectDenied,
  installFixtureCrd,
  RUN,
  tenantSpec,
  tenants,
  waitReady,
} from "./tenant-fixtures.ts";

let admin: KubeConfig;
let manager: Manager;

beforeAll(async () => {
  admin = adminKubeConfig();
  manager = await startPeerTenantOperator(admin);
});

afterAll(async () => {
  await manager?.stop();
});

const core = () => admin.makeApiClient(CoreV1Api);

isolationMatrix({
  login: "client certificates",
  admin: adminKubeConfig,
  loginAs: (user, groups) => impersonating(user, groups),
});

describe("GitLab ci_access list", () => {
  const name = `gitlab-${RUN}`;
  const groups = async () => {
    const cm = await core()
      .readNamespacedConfigMap({ name: GITLAB_CI_ACCESS_CONFIGMAP, namespace: OPERATOR_NAMESPACE })
      .catch(() => undefined);
    const doc = parse(cm?.data?.["config.yaml"] ?? "{}") as {
      ci_access?: { groups?: { id: string; default_namespace: string }[] };
    };
    return (doc.ci_access?.groups ?? []).filter((g) => g.default_namespace === `peers-${name}`);
  };

  // The list is rebuilt on tenants' spec and metadata changes only (their status writes are ignored):
  // each spec change below must still reach it.
  it("follows a tenant's gitlab group through create, change and removal", async () => {
    await tenants(admin).create(
      name,
      tenantSpec(name, { gitlab: { groupPath: `peers/${name}`, groupID: 7 } }),
    );
    await waitFor(
      "the tenant's group in ci_access",
      async () => (await groups())[0]?.id === `peers/${name}`,
      90_000,
    );
    await waitReady(admin, name);
    await tenants(admin).patchSpec(name, { gitlab: { groupPath: `peers/${name}-moved`, groupID: 8 } });
    await waitFor(
      "the moved group in ci_access",
      async () =>
        JSON.stringify((await groups()).map((g) => g.id)) === JSON.stringify([`peers/${name}-moved`]),
    );
    await tenants(admin).patchSpec(name, { gitlab: null });
    await waitFor("the group gone from ci_access", async () => (await groups()).length === 0);
    await tenants(admin).delete(name);
  });
});

describe("tenant-wide quota", () => {
  const name = `carol-${RUN}`;
  const ns1 = `peers-${name}`;
  const ns2 = `peers-${name}-b`;

  const hard = async (ns: string) =>
    (await core().readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns })).spec?.hard?.[
      "requests.memory"
    ];

  it("holds the total across two namespaces and moves headroom to where it is used", async () => {
    await tenants(admin).create(
      name,
      tenantSpec(name, {
        namespaces: { additional: [ns2], max: 2 },
        quota: { perNamespace: { "requests.memory": "4Gi" }, tenantTotal: { "requests.memory": "6Gi" } },
      }),
    );
    await waitReady(admin, name);
    expect([await hard(ns1), await hard(ns2)]).toEqual(["3Gi", "3Gi"]);
    for (const ns of [ns1, ns2]) {
      await waitFor(`service account in ${ns}`, () =>
        core().readNamespacedServiceAccount({ name: "default", namespace: ns }),
      );
    }

    const owner = { owner: name };
    await expectAllowed(
      "2Gi in ns1",
      core().createNamespacedPod({ namespace: ns1, body: compliantPod("a", "2Gi", owner) }),
    );
    // 2Gi used, 4Gi left, split 2/2: ns1 may grow to 4Gi (its own cap), ns2 keeps 2Gi.
    await waitFor("headroom to move to ns1", async () => ((await hard(ns1)) === "4Gi" ? true : undefined));
    expect(await hard(ns2)).toBe("2Gi");
    const sum = async () => parseQuantity((await hard(ns1)) ?? "0") + parseQuantity((await hard(ns2)) ?? "0");
    await expectAllowed(
      "1.5Gi more in ns1",
      core().createNamespacedPod({ namespace: ns1, body: compliantPod("b", "1536Mi", owner) }),
    );
    // 3.5Gi used in ns1 (capped at 4Gi), so what its cap leaves goes to ns2: 2Gi, and never more in sum.
    await waitFor("the used quota to show 3.5Gi in ns1", async () => {
      const q = await core().readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns1 });
      return q.status?.used?.["requests.memory"] === "3584Mi" ? q : undefined;
    });
    expect([await hard(ns1), await hard(ns2)]).toEqual(["4Gi", "2Gi"]);
    expect(await sum()).toBeLessThanOrEqual(parseQuantity("6Gi"));
    await expectDenied(
      "3Gi in ns2 would pass the tenant total",
      core().createNamespacedPod({ namespace: ns2, body: compliantPod("c", "3Gi", owner) }),
      /exceeded quota/,
    );
    await expectAllowed(
      "1Gi in ns2 still fits",
      core().createNamespacedPod({ namespace: ns2, body: compliantPod("d", "1Gi", owner) }),
    );
    const t = await waitFor("tenant status to show the summed usage", async () => {
      const s = (await tenants(admin).get(name)).status;
      return s?.quota?.used?.["requests.memory"] === "4608Mi" ? s : undefined;
    });
    expect(t.quota?.used?.["requests.memory"]).toBe("4608Mi");
  });
});

describe("drift", () => {
  const name = `dora-${RUN}`;
  const ns = `peers-${name}`;

  beforeAll(async () => {
    await tenants(admin).create(name, tenantSpec(name));
    await waitReady(admin, name);
  });

  it("restores a deleted network policy", async () => {
    const net = admin.makeApiClient(NetworkingV1Api);
    await net.deleteNamespacedNetworkPolicy({ name: "tenant-default-deny", namespace: ns });
    await waitFor(
      "a DriftCorrected event naming it",
      async () => {
        const events = await admin.makeApiClient(EventsV1Api).listNamespacedEvent({
          namespace: "default",
          fieldSelector: `regarding.name=${name},reason=DriftCorrected`,
        });
        return events.items.some((e) => e.note?.includes(`${ns}/tenant-default-deny`)) ? true : undefined;
      },
      10_000,
    );
    await waitFor(
      "tenant-default-deny to be back",
      () => net.readNamespacedNetworkPolicy({ name: "tenant-default-deny", namespace: ns }),
      10_000,
    );
  });

  it("undoes an extra ingress: [{}] that would make tenant-default-deny allow-all", async () => {
    const net = admin.makeApiClient(NetworkingV1Api);
    await new KubeClient(admin).patch(
      { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
      { namespace: ns, name: "tenant-default-deny" },
      { spec: { ingress: [{}] } },
      "merge",
    );
    const restored = await waitFor(
      "the extra ingress rule to be gone",
      async () => {
        const np = await net.readNamespacedNetworkPolicy({ name: "tenant-default-deny", namespace: ns });
        return (np.spec?.ingress ?? []).length === 0 ? np : undefined;
      },
      10_000,
    );
    expect(restored.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
  });

  it("removes a resource added to the quota by hand (exact content, not just its own fields)", async () => {
    await new KubeClient(admin).patch(
      { apiVersion: "v1", kind: "ResourceQuota" },
      { namespace: ns, name: "tenant-quota" },
      { spec: { hard: { "count/jobs.batch": "1" } } },
      "merge",
    );
    await waitFor(
      "the added resource to be gone",
      async () => {
        const q = await core().readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns });
        return q.spec?.hard?.["count/jobs.batch"] === undefined ? q : undefined;
      },
      10_000,
    );
  });

  it("restores an edited quota", async () => {
    await new KubeClient(admin).patch(
      { apiVersion: "v1", kind: "ResourceQuota" },
      { namespace: ns, name: "tenant-quota" },
      { spec: { hard: { pods: "999" } } },
      "merge",
    );
    await waitFor(
      "the quota to be restored",
      async () => {
        const q = await core().readNamespacedResourceQuota({ name: "tenant-quota", namespace: ns });
        return q.spec?.hard?.pods === "20" ? q : undefined;
      },
      10_000,
    );
  });

  it("restores a weakened Pod Security label", async () => {
    await new KubeClient(admin).patch(
      { apiVersion: "v1", kind: "Namespace" },
      { name: ns },
      { metadata: { labels: { "pod-security.kubernetes.io/enforce": "privileged" } } },
      "merge",
    );
    await waitFor(
      "enforce=restricted to be back",
      async () => {
        const n = await core().readNamespace({ name: ns });
        return n.metadata?.labels?.["pod-security.kubernetes.io/enforce"] === "restricted" ? n : undefined;
      },
      10_000,
    );
  });
});

describe("deletion", () => {
  it("Retain keeps the namespace and its data but releases it", async () => {
    const name = `erin-${RUN}`;
    const ns = `peers-${name}`;
    await tenants(admin).create(name, tenantSpec(name, { deletionPolicy: "Retain" }));
    await waitReady(admin, name);
    await core().createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "data" }, data: { keep: "me" } },
    });
    // The owner, as the attacker, gives herself access of her own that the operator did not make.
    const asOwner = await impersonating(name, [`peers-${name}`]);
    const rbacAsOwner = asOwner.makeApiClient(RbacAuthorizationV1Api);
    await expectAllowed(
      "bind edit to herself",
      rbacAsOwner.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: "my-own-access" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name }],
        },
      }),
    );
    await expectAllowed(
      "bind a service account whose token she can mint",
      rbacAsOwner.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: "my-robot" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
          subjects: [{ kind: "ServiceAccount", name: "default", namespace: ns }],
        },
      }),
    );
    await expectAllowed(
      "share her namespace with every authenticated user",
      rbacAsOwner.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: "everyone" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:authenticated" }],
        },
      }),
    );
    await tenants(admin).delete(name);
    await waitFor("the tenant to be gone", async () => {
      const err = await tenants(admin)
        .get(name)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      return statusOf(err) === 404 ? true : undefined;
    });
    const kept = await core().readNamespace({ name: ns });
    expect(kept.status?.phase).toBe("Active");
    expect(kept.metadata?.labels?.["homelab.shdr.ch/tenant"]).toBeUndefined();
    expect((await core().readNamespacedConfigMap({ name: "data", namespace: ns })).data).toEqual({
      keep: "me",
    });
    // Her access is gone, the bindings she made herself included, and the namespace stays locked down.
    const left = await admin
      .makeApiClient(RbacAuthorizationV1Api)
      .listNamespacedRoleBinding({ namespace: ns });
    expect(left.items.map((rb) => rb.metadata?.name)).toEqual([]);
    await expectDenied(
      "the former owner reading the namespace",
      asOwner.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns }),
      /cannot list resource "configmaps"/,
    );
    expect(kept.metadata?.labels?.["homelab.shdr.ch/released-from"]).toBe(name);
    expect(kept.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const deny = await admin
      .makeApiClient(NetworkingV1Api)
      .readNamespacedNetworkPolicy({ name: "released-default-deny", namespace: ns });
    expect(deny.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    const quota = await core().readNamespacedResourceQuota({ name: "released-quota", namespace: ns });
    expect(quota.spec?.hard).toEqual({ "services.nodeports": "0", "services.loadbalancers": "0" });

    // A new tenant may take it over only when it says so.
    const heir = `heir-${RUN}`;
    await tenants(admin).create(heir, tenantSpec(heir, { namespaces: { primary: ns } }));
    const conflict = await waitFor("NamespaceConflict naming the release", async () => {
      const t = await tenants(admin).get(heir);
      return condition(t, "NamespacesReady")?.reason === "NamespaceConflict" ? t : undefined;
    });
    expect(condition(conflict, "NamespacesReady")?.message).toContain(`released by tenant ${name}`);
    await tenants(admin).patchSpec(heir, { namespaces: { primary: ns, adopt: [ns] } });
    await waitReady(admin, heir);
    const adopted = await core().readNamespace({ name: ns });
    expect(adopted.metadata?.labels?.["homelab.shdr.ch/tenant"]).toBe(heir);
    expect(adopted.metadata?.labels?.["homelab.shdr.ch/released-from"]).toBeUndefined();
    await waitFor("the release defaults to make way", async () => {
      const q = await core().listNamespacedResourceQuota({ namespace: ns });
      return q.items.map((i) => i.metadata?.name).join() === "tenant-quota" ? true : undefined;
    });
    expect((await core().readNamespacedConfigMap({ name: "data", namespace: ns })).data).toEqual({
      keep: "me",
    });
    await tenants(admin).patchSpec(heir, { deletionPolicy: "Delete" });
    await tenants(admin).delete(heir);
  });

  it("Delete removes the namespaces before the tenant goes", async () => {
    const name = `fred-${RUN}`;
    const ns = `peers-${name}`;
    await tenants(admin).create(name, tenantSpec(name, { deletionPolicy: "Delete" }));
    await waitReady(admin, name);
    await tenants(admin).delete(name);
    await waitFor(
      "the namespace and then the tenant to be gone",
      async () => {
        const nsErr = await core()
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
      60_000,
    );
  });
});

describe("namespace conflicts", () => {
  it("reports a namespace it does not own and never touches it", async () => {
    const name = `gina-${RUN}`;
    const ns = `peers-${name}`;
    await core().createNamespace({ body: { metadata: { name: ns, labels: { team: "someone-else" } } } });
    await tenants(admin).create(name, tenantSpec(name));
    const t = await waitFor("NamespaceConflict", async () => {
      const obj = await tenants(admin).get(name);
      return condition(obj, "NamespacesReady")?.reason === "NamespaceConflict" ? obj : undefined;
    });
    expect(condition(t, "Ready")?.status).toBe("False");
    expect(condition(t, "NamespacesReady")?.message).toContain(`${ns} (not created by a PeerTenant)`);
    const untouched = await core().readNamespace({ name: ns });
    expect(untouched.metadata?.labels).toEqual({ team: "someone-else", "kubernetes.io/metadata.name": ns });
    const events = await admin
      .makeApiClient(EventsV1Api)
      .listEventForAllNamespaces({ fieldSelector: `regarding.name=${name},reason=NamespaceConflict` });
    expect(events.items.length).toBeGreaterThan(0);
    await tenants(admin).delete(name);
  });
});

describe("validation", () => {
  const cases: Record<string, { name: string; spec: Record<string, unknown>; message: RegExp }> = {
    "no owners": {
      name: `h-${RUN}`,
      spec: { owners: {} },
      message: /owners needs at least one user or group/,
    },
    "a name too long for peers-<name>": {
      name: `a-very-long-tenant-name-${RUN}-abcdefgh`,
      spec: { owners: { users: ["x"] } },
      message: /at most 30 characters/,
    },
    "system:masters as an owner group": {
      name: `sm-${RUN}`,
      spec: { owners: { groups: ["system:masters"] } },
      message: /owners must be people/,
    },
    "a service account as an owner": {
      name: `sa-${RUN}`,
      spec: { owners: { users: ["system:serviceaccount:kube-system:default"] } },
      message: /owners must be people/,
    },
    "every service account as owners": {
      name: `sas-${RUN}`,
      spec: { owners: { groups: ["system:serviceaccounts"] } },
      message: /owners must be people/,
    },
    "kube-system as the primary namespace": {
      name: `ks-${RUN}`,
      spec: { owners: { users: ["x"] }, namespaces: { primary: "kube-system" } },
      message: /cannot be default, homelab-system or a kube-\* namespace/,
    },
    "an additional namespace outside the tenant's prefix": {
      name: `i-${RUN}`,
      spec: { owners: { users: ["x"] }, namespaces: { additional: ["kube-system"] } },
      message: /peers-<tenant name>-<suffix>/,
    },
  };
  for (const [what, c] of Object.entries(cases)) {
    it(`rejects ${what}`, async () => {
      await expectDenied(what, tenants(admin).create(c.name, c.spec), c.message);
    });
  }
});

describe("order of phases", () => {
  it("has every guardrail in place at the revision where the owners' binding is created", async () => {
    const name = `ord-${RUN}`;
    const ns = `peers-${name}`;
    await tenants(admin).create(name, tenantSpec(name));
    await waitReady(admin, name);
    const client = new KubeClient(admin);
    const binding = await client.get(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" },
      { namespace: ns, name: "tenant-owners" },
    );
    // The binding is written once, so its resourceVersion is the revision that created it; the API
    // server can show the world exactly as it was then.
    const at = binding.metadata!.resourceVersion!;
    const names = async (path: string) => {
      const list = await client.request<{ items: KubeObject[] }>("GET", path, {
        query: { resourceVersion: at, resourceVersionMatch: "Exact" },
      });
      return list.items.map((i) => i.metadata?.name);
    };
    expect(await names(`/api/v1/namespaces/${ns}/resourcequotas`)).toContain("tenant-quota");
    expect(await names(`/api/v1/namespaces/${ns}/limitranges`)).toContain("tenant-limits");
    expect(await names(`/api/v1/namespaces/${ns}/configmaps`)).toContain("tenant-guardrails");
    expect(await names(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`)).toEqual(
      expect.arrayContaining(["tenant-default-deny", "tenant-allow-same-tenant", "tenant-allow-dns"]),
    );
    const policies = await names("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings");
    for (const p of [
      "homelab-tenant-managed-objects",
      "homelab-tenant-services",
      "homelab-tenant-network-policies",
      "homelab-tenant-reserved-labels",
    ]) {
      expect(policies, p).toContain(p);
    }
    await tenants(admin).delete(name);
  });
});

describe("clusterRef", () => {
  it("says when the HomelabCluster's workload cluster cannot be reached, and creates nothing here", async () => {
    const name = `wl-${RUN}`;
    await tenants(admin).create(name, tenantSpec(name, { clusterRef: `nowhere-${RUN}` }));
    const t = await waitFor("ClusterConnected=False", async () => {
      const obj = await tenants(admin).get(name);
      return condition(obj, "ClusterConnected")?.status === "False" ? obj : undefined;
    });
    expect(condition(t, "ClusterConnected")?.reason).toBe("ClusterNotConnected");
    expect(condition(t, "ClusterConnected")?.message).toContain(`homelab-system/nowhere-${RUN}-kubeconfig`);
    expect(condition(t, "Ready")?.status).toBe("False");
    const err = await core()
      .readNamespace({ name: `peers-${name}` })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusOf(err)).toBe(404);
  });
});

describe("network policy enforcement", () => {
  it("is Unknown, not True, when no CNI that implements NetworkPolicy is detectable", async () => {
    const name = `np-${RUN}`;
    await tenants(admin).create(name, tenantSpec(name));
    const t = await waitReady(admin, name);
    const enforced = condition(t, "NetworkPolicyEnforced");
    expect(enforced?.status).toBe("Unknown");
    expect(enforced?.reason).toBe("NoEnforcingCNIFound");
    expect(condition(t, "NetworkPoliciesApplied")?.status).toBe("True");
    await tenants(admin).delete(name);
  });
});

describe("where Gatekeeper runs", () => {
  const crdGvk = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };
  const standIn = (group: string, version: string, kind: string, plural: string) => ({
    apiVersion: crdGvk.apiVersion,
    kind: crdGvk.kind,
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: "Cluster",
      names: { plural, singular: kind.toLowerCase(), kind },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  });
  // The ConstraintTemplate CRD is Gatekeeper's own (fixtures/crds); the constraint CRDs Gatekeeper
  // generates from each template it reads are played by stand-ins of the generated kinds.
  const crds = [
    { metadata: { name: "constrainttemplates.templates.gatekeeper.sh" } },
    standIn("constraints.gatekeeper.sh", "v1beta1", "HomelabTenantServiceTypes", "homelabtenantservicetypes"),
    standIn(
      "constraints.gatekeeper.sh",
      "v1beta1",
      "HomelabTenantRequiredLabels",
      "homelabtenantrequiredlabels",
    ),
  ];

  afterAll(async () => {
    const client = new KubeClient(admin);
    for (const crd of crds)
      await client.delete(crdGvk, { name: crd.metadata.name }, { ignoreNotFound: true });
  });

  it("adds constraint templates, the Service constraint and each tenant's required-labels constraint", async () => {
    const client = new KubeClient(admin);
    await installFixtureCrd(admin, "constrainttemplate-customresourcedefinition.yaml");
    const name = `kate-${RUN}`;
    await tenants(admin).create(name, tenantSpec(name));
    await waitReady(admin, name);
    const templates = await waitFor("both constraint templates", async () => {
      const list = await client.list<KubeObject & { spec?: { targets?: { rego: string }[] } }>({
        apiVersion: "templates.gatekeeper.sh/v1",
        kind: "ConstraintTemplate",
      });
      return list.items.length === 2 ? list.items : undefined;
    });
    expect(templates.map((t) => t.metadata?.name).sort()).toEqual([
      "homelabtenantrequiredlabels",
      "homelabtenantservicetypes",
    ]);
    expect(templates[0]!.spec?.targets?.[0]?.rego).toMatch(/^package homelabtenant/);

    // Gatekeeper has now read the templates and serves their constraint kinds.
    await client.apply(crds[1]!);
    await client.apply(crds[2]!);
    const services = await waitFor(
      "the all-tenants Service constraint",
      () =>
        client.getOrUndefined<KubeObject & { spec?: unknown }>(
          { apiVersion: "constraints.gatekeeper.sh/v1beta1", kind: "HomelabTenantServiceTypes" },
          { name: "homelab-tenants" },
        ),
      15_000,
    );
    expect(JSON.stringify(services.spec)).toContain('"key":"homelab.shdr.ch/tenant","operator":"Exists"');
    // A spec change makes the tenant reconcile again and add its own constraint.
    await tenants(admin).patchSpec(name, { requiredLabels: ["owner", "team"] });
    const required = await waitFor(
      "the tenant's required-labels constraint",
      () =>
        client.getOrUndefined<KubeObject & { spec?: { parameters?: unknown; match?: unknown } }>(
          { apiVersion: "constraints.gatekeeper.sh/v1beta1", kind: "HomelabTenantRequiredLabels" },
          { name: `peers-${name}` },
        ),
      15_000,
    );
    expect(required.spec?.parameters).toEqual({ labels: ["owner", "team"] });
    expect(required.spec?.match).toEqual({
      kinds: [{ apiGroups: [""], kinds: ["Pod"] }],
      namespaces: [`peers-${name}`],
    });
  });
});
