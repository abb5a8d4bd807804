// The isolation matrix: every attempt of a tenant owner to get around PeerTenant, run with whatever
// login the caller brings (client certificates on the shared cluster, OIDC tokens on a cluster that
// trusts a real OpenID provider). Each attempt must be denied; what alice may still do must work.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  NetworkingV1Api,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
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

export interface MatrixOptions {
  /** How alice logs in, for the suite's title, e.g. "client certificates" or "OIDC ID tokens". */
  login: string;
  admin: () => KubeConfig;
  /** A client authenticated as `user` in `groups`, the way this run's cluster authenticates people. */
  loginAs: (user: string, groups: string[]) => Promise<KubeConfig>;
  /** Appended to tenant names so runs never share tenants. */
  suffix?: string;
}

/**
 * Lets tenant owners create HTTPRoutes and DomainMappings, as a cluster that vends routes would (the
 * built-in admin role aggregates ClusterRoles with this label).
 */
const routesForAdmins = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: {
    name: "e2e-tenant-routes",
    labels: { "rbac.authorization.k8s.io/aggregate-to-admin": "true" },
  },
  rules: [
    { apiGroups: ["gateway.networking.k8s.io"], resources: ["httproutes"], verbs: ["*"] },
    { apiGroups: ["serving.knative.dev"], resources: ["domainmappings"], verbs: ["*"] },
  ],
};

export function isolationMatrix(opts: MatrixOptions): void {
  const suffix = opts.suffix ?? RUN;
  let admin: KubeConfig;
  const core = () => admin.makeApiClient(CoreV1Api);
  beforeAll(async () => {
    admin = opts.admin();
    await installFixtureCrd(admin, "gateway.networking.k8s.io_httproutes.yaml");
    await installFixtureCrd(admin, "domain-mapping.yaml");
    await new KubeClient(admin).apply(routesForAdmins);
  });
  const _opts = { ...opts, suffix };

  describe(`isolation matrix for alice (${_opts.login})`, () => {
    const alice = `alice-${_opts.suffix}`;
    const bob = `bob-${_opts.suffix}`;
    const nsA = `peers-${alice}`;
    const nsB = `peers-${bob}`;
    let asAlice: KubeConfig;

    beforeAll(async () => {
      await tenants(admin).create(alice, tenantSpec(alice, { hostnameDomain: `${alice}.apps.home.shdr.ch` }));
      await tenants(admin).create(bob, tenantSpec(bob));
      await waitReady(admin, alice);
      await waitReady(admin, bob);
      asAlice = await _opts.loginAs(alice, [`peers-${alice}`]);
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
        "NetworkPoliciesApplied",
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
        c.createNamespacedSecret({
          namespace: nsA,
          body: { metadata: { name: "s" }, stringData: { a: "b" } },
        }),
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
      await expectDenied(
        "read one of bob's secrets",
        c.readNamespacedSecret({ name: "any", namespace: nsB }),
      );
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
          body: {
            metadata: { name: "fake", labels: { "app.kubernetes.io/managed-by": "homelab-operator" } },
          },
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

    it("keeps alice from widening her network isolation", async () => {
      // Raw JSON, not client-node's models: they spell `from` as `_from` and drop an unknown key silently.
      const np = (name: string, spec: Record<string, unknown>) =>
        new KubeClient(asAlice).create({
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name, namespace: nsA },
          spec: { podSelector: {}, ...spec },
        });
      await expectDenied(
        "an allow-all egress NetworkPolicy (egress: [{}])",
        np("allow-all-egress", { policyTypes: ["Egress"], egress: [{}] }),
        /must name its peers/,
      );
      await expectDenied(
        "egress to any address on a port (no peers)",
        np("port-only", { policyTypes: ["Egress"], egress: [{ ports: [{ port: 8006, protocol: "TCP" }] }] }),
        /must name its peers/,
      );
      await expectDenied(
        "egress to the LAN by ipBlock",
        np("lan", { policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }] }),
        /ipBlock is not allowed/,
      );
      await expectDenied(
        "ingress from every namespace",
        np("all-ns", { policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {} }] }] }),
        /only the tenant's own namespaces/,
      );
      await expectDenied(
        "egress to bob's namespace",
        np("to-bob", {
          policyTypes: ["Egress"],
          egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": nsB } } }] }],
        }),
        /only the tenant's own namespaces/,
      );
      await expectDenied(
        "a namespace selector by a label bob could also carry",
        np("by-label", {
          policyTypes: ["Egress"],
          egress: [{ to: [{ namespaceSelector: { matchLabels: { team: "x" } } }] }],
        }),
        /only the tenant's own namespaces/,
      );
      await expectDenied(
        "weaken a managed policy (ingress: [{}] on tenant-default-deny)",
        new KubeClient(asAlice).patch(
          { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
          { namespace: nsA, name: "tenant-default-deny" },
          { spec: { ingress: [{}] } },
          "merge",
        ),
        /managed by the PeerTenant/,
      );
      // What she may still do: policies within her own namespaces.
      await expectAllowed(
        "allow traffic between her own pods",
        np("own-pods", {
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [
                { podSelector: { matchLabels: { app: "web" } } },
                { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": nsA } } },
              ],
            },
          ],
        }),
      );
    });

    it("keeps alice from the other guardrail holes", async () => {
      const c = asAlice.makeApiClient(CoreV1Api);
      const apps = asAlice.makeApiClient(AppsV1Api);
      await expectDenied(
        "an ExternalName Service pointing at the LAN",
        c.createNamespacedService({
          namespace: nsA,
          body: { metadata: { name: "pve" }, spec: { type: "ExternalName", externalName: "pve.home.arpa" } },
        }),
        /ExternalName are not allowed/,
      );
      const critical = compliantPod("critical", "128Mi", { owner: alice });
      critical.spec.priorityClassName = "system-cluster-critical";
      await expectDenied(
        "a system-cluster-critical pod",
        c.createNamespacedPod({ namespace: nsA, body: critical }),
        /PriorityClass system-cluster-critical is not allowed/,
      );
      await expectDenied(
        "forge homelab.shdr.ch/tenant: bob on a ConfigMap",
        c.createNamespacedConfigMap({
          namespace: nsA,
          body: { metadata: { name: "forged", labels: { "homelab.shdr.ch/tenant": bob } } },
        }),
        /reserved for the operator/,
      );
      await expectDenied(
        "add homelab.shdr.ch/tenant: bob to her existing ConfigMap",
        new KubeClient(asAlice).patch(
          { apiVersion: "v1", kind: "ConfigMap" },
          { namespace: nsA, name: "cm" },
          { metadata: { labels: { "homelab.shdr.ch/tenant": bob } } },
          "merge",
        ),
        /reserved for the operator/,
      );
      await expectDenied(
        "forge homelab.shdr.ch/tenant: bob on a Deployment's pods",
        apps.createNamespacedDeployment({
          namespace: nsA,
          body: {
            metadata: { name: "forged" },
            spec: {
              selector: { matchLabels: { app: "forged" } },
              template: {
                metadata: { labels: { app: "forged", owner: alice, "homelab.shdr.ch/tenant": bob } },
                spec: compliantPod("x").spec,
              },
            },
          },
        }),
        /reserved for the operator/,
      );
      await expectDenied(
        "a PVC larger than the limit range allows",
        c.createNamespacedPersistentVolumeClaim({
          namespace: nsA,
          body: {
            metadata: { name: "huge" },
            spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "500Gi" } } },
          },
        }),
        /maximum storage usage per PersistentVolumeClaim/,
      );
    });

    it("confines alice's hostnames to her own subdomain", async () => {
      const routes = asAlice.makeApiClient(CustomObjectsApi);
      const route = (name: string, hostnames?: string[]) =>
        routes.createNamespacedCustomObject({
          group: "gateway.networking.k8s.io",
          version: "v1",
          namespace: nsA,
          plural: "httproutes",
          body: {
            apiVersion: "gateway.networking.k8s.io/v1",
            kind: "HTTPRoute",
            metadata: { name },
            spec: {
              ...(hostnames ? { hostnames } : {}),
              rules: [{ backendRefs: [{ name: "web", port: 80 }] }],
            },
          },
        });
      await expectDenied("squat bob's hostname", route("squat", [`app.${bob}.apps.home.shdr.ch`]), /must be/);
      await expectDenied("a wildcard over every tenant", route("wild", ["*.apps.home.shdr.ch"]), /must be/);
      await expectDenied("a route without hostnames", route("any"), /must list their hostnames/);
      // apps.home.shdr.ch is her vending.allowedDomains (the default): only the operator claims names there.
      await expectDenied(
        "a name in the shared vending domain",
        route("shared", [`shared-${alice}.apps.home.shdr.ch`]),
        /must be/,
      );
      await expectAllowed("her own subdomain", route("mine", [`app.${alice}.apps.home.shdr.ch`]));
      // An update that keeps the hostnames is let through; one that adds a name is a new claim.
      const routeKey = {
        group: "gateway.networking.k8s.io",
        version: "v1",
        namespace: nsA,
        plural: "httproutes",
        name: "mine",
      };
      const mine = (await routes.getNamespacedCustomObject(routeKey)) as {
        metadata: Record<string, unknown>;
        spec: { hostnames: string[] };
      };
      await expectAllowed(
        "an update keeping her hostnames",
        routes.replaceNamespacedCustomObject({
          ...routeKey,
          body: { ...mine, metadata: { ...mine.metadata, annotations: { note: "kept" } } },
        }),
      );
      const kept = (await routes.getNamespacedCustomObject(routeKey)) as typeof mine;
      await expectDenied(
        "an update adding bob's hostname",
        routes.replaceNamespacedCustomObject({
          ...routeKey,
          body: {
            ...kept,
            spec: { ...kept.spec, hostnames: [...kept.spec.hostnames, `app.${bob}.apps.home.shdr.ch`] },
          },
        }),
        /must be/,
      );
      await expectDenied(
        "a DomainMapping for someone else's name",
        routes.createNamespacedCustomObject({
          group: "serving.knative.dev",
          version: "v1beta1",
          namespace: nsA,
          plural: "domainmappings",
          body: {
            apiVersion: "serving.knative.dev/v1beta1",
            kind: "DomainMapping",
            metadata: { name: "keycloak.home.shdr.ch" },
            spec: { ref: { name: "web", kind: "Service", apiVersion: "serving.knative.dev/v1" } },
          },
        }),
        // Where the AppVending controller ran on this control plane, its policy (no DomainMappings by
        // tenants at all) may be the one that answers first.
        /must be|vended through an AppVending/,
      );
    });
  });
}
