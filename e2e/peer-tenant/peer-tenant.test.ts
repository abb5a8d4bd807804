// PeerTenant on the real control plane: what a tenant converges to, proven by real API calls made as
// the tenant's owners (client certificates for user + group, as OIDC would present them).
import {
  AppsV1Api,
  CoreV1Api,
  EventsV1Api,
  type KubeConfig,
  NetworkingV1Api,
  RbacAuthorizationV1Api,
  type V1Pod,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, type KubeObject, type Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig, impersonating } from "../harness/test-cluster.ts";
import { statusMessage, statusOf, waitFor } from "../harness/wait.ts";
import { startPeerTenantOperator } from "./operator.ts";
import { condition, RUN, tenants, waitReady } from "./tenant-fixtures.ts";

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

/** A pod that passes Pod Security "restricted" and carries the required owner label. */
function compliantPod(
  name: string,
  memory = "128Mi",
  labels: Record<string, string> = { owner: "alice" },
): V1Pod & { spec: V1PodSpec } {
  return {
    metadata: { name, labels },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "app",
          image: "registry.example/app:1",
          imagePullPolicy: "Always",
          resources: { requests: { memory, cpu: "50m" }, limits: { memory, cpu: "100m" } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
}

async function expectAllowed<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new Error(`${what} should be allowed but got ${statusOf(err)}: ${statusMessage(err)}`);
  }
}

async function expectDenied(what: string, call: Promise<unknown>, message?: RegExp): Promise<void> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${what} should be denied`).toBeDefined();
  expect([403, 422], `${what}: ${statusMessage(err)}`).toContain(statusOf(err));
  if (message) expect(statusMessage(err), what).toMatch(message);
}

function tenantSpec(owner: string, extra: Record<string, unknown> = {}) {
  return {
    owners: { users: [owner], groups: [`peers-${owner}`] },
    quota: { perNamespace: { "requests.memory": "4Gi", "limits.memory": "8Gi", pods: "20" } },
    limits: { defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } },
    network: { allowIngressFromNamespaces: ["ingress", "knative-serving"] },
    requiredLabels: ["owner"],
    ...extra,
  };
}

describe("isolation matrix for alice", () => {
  const alice = `alice-${RUN}`;
  const bob = `bob-${RUN}`;
  const nsA = `peers-${alice}`;
  const nsB = `peers-${bob}`;
  let asAlice: KubeConfig;

  beforeAll(async () => {
    await tenants(admin).create(alice, tenantSpec(alice));
    await tenants(admin).create(bob, tenantSpec(bob));
    await waitReady(admin, alice);
    await waitReady(admin, bob);
    asAlice = await impersonating(alice, [`peers-${alice}`]);
    // The namespace's default ServiceAccount must exist before any pod is admitted.
    await waitFor("default service account", () =>
      core().readNamespacedServiceAccount({ name: "default", namespace: nsA }),
    );
  });

  it("reports namespaces, quota and Ready conditions in status", async () => {
    const t = await tenants(admin).get(alice);
    expect(t.status?.namespaces).toEqual([nsA]);
    for (const type of [
      "NamespacesReady",
      "QuotaReady",
      "NetworkIsolated",
      "AccessReady",
      "GuardrailsReady",
    ]) {
      expect(condition(t, type)?.status, type).toBe("True");
    }
    await waitFor("quota status summed over the tenant", async () => {
      const s = (await tenants(admin).get(alice)).status;
      return s?.quota?.hard?.pods === "20" ? s : undefined;
    });
  });

  it("lets alice work in her namespace", async () => {
    const apps = asAlice.makeApiClient(AppsV1Api);
    const c = asAlice.makeApiClient(CoreV1Api);
    const rbac = asAlice.makeApiClient(RbacAuthorizationV1Api);
    const pod = compliantPod("web");
    await expectAllowed(
      "create a Deployment",
      apps.createNamespacedDeployment({
        namespace: nsA,
        body: {
          metadata: { name: "web" },
          spec: {
            selector: { matchLabels: { app: "web" } },
            template: { metadata: { labels: { app: "web", owner: alice } }, spec: pod.spec },
          },
        },
      }),
    );
    await expectAllowed(
      "create a ClusterIP Service",
      c.createNamespacedService({
        namespace: nsA,
        body: {
          metadata: { name: "web" },
          spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
        },
      }),
    );
    await expectAllowed(
      "create a Secret",
      c.createNamespacedSecret({ namespace: nsA, body: { metadata: { name: "s" }, stringData: { a: "b" } } }),
    );
    await expectAllowed(
      "create a ConfigMap",
      c.createNamespacedConfigMap({ namespace: nsA, body: { metadata: { name: "cm" }, data: { a: "b" } } }),
    );
    await expectAllowed(
      "create a Role within her rights",
      rbac.createNamespacedRole({
        namespace: nsA,
        body: {
          metadata: { name: "cm-reader" },
          rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }],
        },
      }),
    );
    await expectAllowed(
      "bind that Role",
      rbac.createNamespacedRoleBinding({
        namespace: nsA,
        body: {
          metadata: { name: "cm-reader" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "cm-reader" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "carol" }],
        },
      }),
    );
    await expectAllowed("create a compliant pod", c.createNamespacedPod({ namespace: nsA, body: pod }));
  });

  it("keeps alice out of everything else", async () => {
    const c = asAlice.makeApiClient(CoreV1Api);
    const rbac = asAlice.makeApiClient(RbacAuthorizationV1Api);
    const net = asAlice.makeApiClient(NetworkingV1Api);
    await expectDenied(
      "create in bob's namespace",
      c.createNamespacedConfigMap({ namespace: nsB, body: { metadata: { name: "x" } } }),
      /cannot create resource "configmaps"/,
    );
    await expectDenied(
      "read bob's secrets",
      c.listNamespacedSecret({ namespace: nsB }),
      /cannot list resource "secrets"/,
    );
    await expectDenied("read one of bob's secrets", c.readNamespacedSecret({ name: "any", namespace: nsB }));
    await expectDenied(
      "create a namespace",
      c.createNamespace({ body: { metadata: { name: `x-${RUN}` } } }),
      /cannot create resource "namespaces"/,
    );
    await expectDenied(
      "create a ClusterRole",
      rbac.createClusterRole({ body: { metadata: { name: `x-${RUN}` }, rules: [] } }),
      /cannot create resource "clusterroles"/,
    );
    await expectDenied(
      "create a ClusterRoleBinding",
      rbac.createClusterRoleBinding({
        body: {
          metadata: { name: `x-${RUN}` },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: alice }],
        },
      }),
    );
    await expectDenied(
      "bind cluster-admin in her namespace",
      rbac.createNamespacedRoleBinding({
        namespace: nsA,
        body: {
          metadata: { name: "escalate" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: alice }],
        },
      }),
      /attempting to grant RBAC permissions not currently held/,
    );
    await expectDenied(
      "edit her own quota",
      c.patchNamespacedResourceQuota({
        name: "tenant-quota",
        namespace: nsA,
        body: { spec: { hard: { pods: "999" } } },
      }),
      /cannot patch resource "resourcequotas"/,
    );
    await expectDenied(
      "edit her own limits",
      c.deleteNamespacedLimitRange({ name: "tenant-limits", namespace: nsA }),
      /cannot delete resource "limitranges"/,
    );
    await expectDenied(
      "delete a baseline network policy",
      net.deleteNamespacedNetworkPolicy({ name: "tenant-default-deny", namespace: nsA }),
      /managed by the PeerTenant/,
    );
    await expectDenied(
      "unbind her own guardrail-protected access",
      rbac.deleteNamespacedRoleBinding({ name: "tenant-owners", namespace: nsA }),
      /managed by the PeerTenant/,
    );
    await expectDenied(
      "forge an operator-managed object",
      c.createNamespacedConfigMap({
        namespace: nsA,
        body: { metadata: { name: "fake", labels: { "app.kubernetes.io/managed-by": "homelab-operator" } } },
      }),
      /reserved/,
    );
    for (const type of ["NodePort", "LoadBalancer"]) {
      await expectDenied(
        `create a ${type} Service`,
        c.createNamespacedService({
          namespace: nsA,
          body: { metadata: { name: type.toLowerCase() }, spec: { type, ports: [{ port: 80 }] } },
        }),
        new RegExp(`Services of type ${type} are not allowed`),
      );
    }
    const privileged = compliantPod("privileged");
    privileged.spec.containers[0]!.securityContext = { privileged: true };
    await expectDenied(
      "run a privileged pod",
      c.createNamespacedPod({ namespace: nsA, body: privileged }),
      /PodSecurity/,
    );
    const hostPath = compliantPod("hostpath") as ReturnType<typeof compliantPod> & {
      spec: { volumes?: unknown[] };
    };
    hostPath.spec.volumes = [{ name: "root", hostPath: { path: "/" } }];
    await expectDenied(
      "mount a hostPath",
      c.createNamespacedPod({ namespace: nsA, body: hostPath }),
      /hostPath/,
    );
    await expectDenied(
      "run a pod without the required owner label",
      c.createNamespacedPod({ namespace: nsA, body: compliantPod("unlabelled", "128Mi", {}) }),
      /missing required pod label\(s\): owner/,
    );
    await expectDenied(
      "run a pod over quota",
      c.createNamespacedPod({ namespace: nsA, body: compliantPod("huge", "5Gi") }),
      /exceeded quota/,
    );
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
    await expectAllowed(
      "1.5Gi more in ns1",
      core().createNamespacedPod({ namespace: ns1, body: compliantPod("b", "1536Mi", owner) }),
    );
    await waitFor("ns2 to shrink to what is left", async () =>
      (await hard(ns2)) === "1280Mi" ? true : undefined,
    );
    await expectDenied(
      "2Gi in ns2 would pass the tenant total",
      core().createNamespacedPod({ namespace: ns2, body: compliantPod("c", "2Gi", owner) }),
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

describe("where Cilium runs", () => {
  // A stand-in for Cilium's CRD with the real group, version, kind and scope; its schema accepts any
  // spec, so this checks what the operator writes, not Cilium's validation.
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "ciliumnetworkpolicies.cilium.io" },
    spec: {
      group: "cilium.io",
      scope: "Namespaced",
      names: {
        plural: "ciliumnetworkpolicies",
        singular: "ciliumnetworkpolicy",
        kind: "CiliumNetworkPolicy",
      },
      versions: [
        {
          name: "v2",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
  const crdGvk = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };

  afterAll(async () => {
    await new KubeClient(admin).delete(crdGvk, { name: crd.metadata.name }, { ignoreNotFound: true });
  });

  it("admits Cilium's gateway (the ingress entity) with a CiliumNetworkPolicy", async () => {
    const client = new KubeClient(admin);
    await client.apply(crd);
    await waitFor("the Cilium CRD to be served", () =>
      client.resourceInfo({ apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" }),
    );
    const name = `jane-${RUN}`;
    await tenants(admin).create(name, tenantSpec(name));
    await waitReady(admin, name);
    const cnp = await client.get<KubeObject & { spec?: unknown }>(
      { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" },
      { namespace: `peers-${name}`, name: "tenant-allow-cilium-gateway" },
    );
    expect(cnp.spec).toEqual({ endpointSelector: {}, ingress: [{ fromEntities: ["ingress"] }] });
    expect(cnp.metadata?.ownerReferences?.[0]?.name).toBe(name);
    const t = await tenants(admin).get(name);
    expect(condition(t, "NetworkIsolated")?.message).toContain("Cilium's gateway");
  });
});

describe("where Gatekeeper runs", () => {
  // Stand-ins for the CRDs Gatekeeper serves: the ConstraintTemplate CRD it installs, and the constraint
  // CRDs it generates from each template it reads (the test plays that part).
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
  const crds = [
    standIn("templates.gatekeeper.sh", "v1", "ConstraintTemplate", "constrainttemplates"),
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
    await client.apply(crds[0]!);
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
