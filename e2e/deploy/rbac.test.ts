// deploy/ is what runs in a cluster: the Helm chart lints, deploy/manifests is its current rendering,
// `kubectl apply -k deploy/manifests` (the README's command) installs it, and the ClusterRole is exactly
// what the operator uses: the controllers run as the chart's ServiceAccount on an API server with an
// audit log, no request of theirs may be refused, and every (verb, resource) the chart grants must show
// up in what that ServiceAccount did. Scenarios: PeerTenant (with the vending quota; it also drifts objects
// by hand, each replaced back: update, and names an absent workload cluster: a get of its kubeconfig
// Secret), AppVending (every part, a hostname claim, deletion), platform components (a HomelabCluster to
// ComponentsReady, this API server as its workload cluster), HomelabCluster and WorkloadMigration. Tried
// by removing rules: without `appvendings/finalizers update` the AppVending's managed resources are
// refused (blockOwnerDeletion) and it never gets Ready; without `peertenants/finalizers update` the tenant
// never gets Ready (the same admission check); without `events patch` the one series update at stop is a
// 403 in the audit log; without `configmaps get` the API server refuses the ValidatingAdmissionPolicies
// (paramKind).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { renderManifestFiles, renderManifests } from "../../scripts/generate-manifests.ts";
import { COMPONENTS_FIELD_MANAGER } from "../../src/components/installer.ts";
import { appVendingController } from "../../src/controllers/app-vending/controller.ts";
import { GVK as VENDING } from "../../src/controllers/app-vending/desired.ts";
import { hostnameClaimName } from "../../src/controllers/app-vending/names.ts";
import { homelabClusterController } from "../../src/controllers/homelab-cluster/controller.ts";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { RELEASED_LABEL, TENANT_LABEL } from "../../src/controllers/peer-tenant/labels.ts";
import { vendingQuotaController } from "../../src/controllers/peer-tenant/vending-quota.ts";
import { platformComponentsController } from "../../src/controllers/platform-components/controller.ts";
import { workloadMigrationController } from "../../src/controllers/workload-migration/controller.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { manifestOf, startChartRepo } from "../../src/local/chart-mirror.ts";
import { WORKLOAD_CRDS_DIR } from "../../src/local/container-stand-ins.ts";
import { ensureControlPlaneBinaries } from "../../src/local/control-plane/binaries.ts";
import { startProviderStandIn } from "../../src/local/provider-stand-in/setup.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { helmBinary } from "../components/workload.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { startHomelab } from "../homelab-cluster/homelab.ts";
import { HC, prepareCluster, seedCluster, waitCondition } from "../homelab-cluster/operator.ts";
import { mappedConnections } from "../homelab-cluster/operator-main.ts";
import { condition, RUN, tenants, waitReady } from "../peer-tenant/tenant-fixtures.ts";
import {
  type AuditEvent,
  type AuditedCluster,
  forbiddenByRBAC,
  resourceOf,
  startAuditedCluster,
} from "../runtime/audited-cluster.ts";
import { runMigrationScenario } from "../workload-migration/rbac-scenario.ts";

const run = promisify(execFile);
const chart = (file: string) =>
  fileURLToPath(new URL(`../../deploy/helm/homelab-operator/${file}`, import.meta.url));
const manifests = (file: string) => fileURLToPath(new URL(`../../deploy/manifests/${file}`, import.meta.url));
const reference = (file: string) => `/work/shared/reference/crds/${file}`;
const NAMESPACE = "homelab-system";
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:homelab-operator`;
const crdGvk = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };
const TENANT = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" };

/**
 * Granted pairs the audit log cannot show, each with why it is still needed. Nothing else may be unused.
 * - bind: RBAC's escalation check when the operator writes a RoleBinding to admin/edit (a 403 on that
 *   RoleBinding otherwise, which the no-refusals test would catch); it is not a request of its own.
 * - peertenants/finalizers and appvendings/finalizers update: checked by the
 *   OwnerReferencesPermissionEnforcement admission plugin (on in this test's API server) for every
 *   ownerReference with blockOwnerDeletion (the tenant's objects, the AppVending's managed resources and
 *   Knative objects), not a request.
 * - configmaps get: the API server refuses a ValidatingAdmissionPolicy whose paramKind is ConfigMap
 *   unless its writer may get all ConfigMaps (found by this test: a 422 naming the missing permission).
 * - peertenants get, appvendings get, homelabclusters get: finalizers.ts re-reads the object after its
 *   JSON patch guard failed because someone changed the finalizers at the same moment; a race this test
 *   cannot produce on purpose.
 */
const NOT_A_REQUEST = new Map([
  ["rbac.authorization.k8s.io clusterroles bind", "escalation check on RoleBindings to admin/edit"],
  ["homelab.shdr.ch peertenants/finalizers update", "OwnerReferencesPermissionEnforcement admission"],
  ["homelab.shdr.ch peertenants get", "re-read after a finalizer patch guard fails (a race)"],
  ["homelab.shdr.ch appvendings/finalizers update", "OwnerReferencesPermissionEnforcement admission"],
  ["homelab.shdr.ch appvendings get", "re-read after a finalizer patch guard fails (a race)"],
  ["homelab.shdr.ch homelabclusters get", "re-read after a finalizer patch guard fails (a race)"],
  [" configmaps get", "required of whoever writes a ValidatingAdmissionPolicy with paramKind ConfigMap"],
]);

let cluster: AuditedCluster;
let admin: KubeConfig;
let manager: Manager | undefined;

async function kubectl(args: string[], input?: string): Promise<string> {
  const { kubectl } = await ensureControlPlaneBinaries();
  const child = run(kubectl, ["--kubeconfig", cluster.cp.kubeconfigPath, ...args]);
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return (await child).stdout;
}

/** A kubeconfig that authenticates with a bound token of the operator's ServiceAccount. */
async function serviceAccountKubeConfig(): Promise<KubeConfig> {
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: "homelab-operator",
    namespace: NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const c = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: c.name, server: c.server, caData: c.caData, caFile: c.caFile, skipTLSVerify: false }],
    users: [{ name: "homelab-operator", token: token.status!.token }],
    contexts: [{ name: "operator", cluster: c.name, user: "homelab-operator" }],
    currentContext: "operator",
  });
  return kc;
}

interface RbacDoc {
  kind?: string;
  metadata?: { name?: string };
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

/**
 * "group resource verb" for every verb of every rule of the roles a rendering binds to the operator's
 * ServiceAccount. Roles for others (the AppVending roles aggregated into admin/edit/view for tenants) are
 * not the operator's permissions and are not counted here.
 */
function grantedPairs(rendering: string): Set<string> {
  const docs = parseAllDocuments(rendering).map((d) => d.toJS() as RbacDoc | null);
  const bound = new Set(
    docs
      .filter((d) => d?.kind === "ClusterRoleBinding" || d?.kind === "RoleBinding")
      .filter((d) =>
        d?.subjects?.some(
          (s) =>
            s.kind === "ServiceAccount" &&
            `system:serviceaccount:${s.namespace}:${s.name}` === SERVICE_ACCOUNT,
        ),
      )
      .map((d) => `${d?.roleRef?.kind} ${d?.roleRef?.name}`),
  );
  const pairs = new Set<string>();
  for (const obj of docs) {
    if (obj?.kind !== "ClusterRole" && obj?.kind !== "Role") continue;
    if (!bound.has(`${obj.kind} ${obj.metadata?.name}`)) continue;
    for (const rule of obj.rules ?? [])
      for (const g of rule.apiGroups)
        for (const r of rule.resources) for (const v of rule.verbs) pairs.add(`${g} ${r} ${v}`);
  }
  return pairs;
}

/** "group resource verb" for what the ServiceAccount did; an apply that created an object also used create. */
function usedPairs(events: AuditEvent[]): Set<string> {
  const pairs = new Set<string>();
  for (const e of events) {
    if (e.user.username !== SERVICE_ACCOUNT) continue;
    const r = resourceOf(e);
    if (!r || forbiddenByRBAC(e)) continue;
    pairs.add(`${r.apiGroup} ${r.resource} ${e.verb}`);
    if (e.verb === "patch" && e.responseStatus?.code === 201) pairs.add(`${r.apiGroup} ${r.resource} create`);
  }
  return pairs;
}

/** What Gatekeeper does when it reads a ConstraintTemplate: serve the constraint kind it names. */
function constraintCRD(
  template: KubeObject & {
    spec?: { crd?: { spec?: { names?: { kind?: string }; validation?: { openAPIV3Schema?: object } } } };
  },
) {
  const kind = template.spec!.crd!.spec!.names!.kind!;
  const plural = kind.toLowerCase();
  const parameters = template.spec?.crd?.spec?.validation?.openAPIV3Schema ?? {
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
  };
  return {
    ...crdGvk,
    metadata: { name: `${plural}.constraints.gatekeeper.sh` },
    spec: {
      group: "constraints.gatekeeper.sh",
      scope: "Cluster",
      names: {
        kind,
        plural,
        listKind: `${kind}List`,
        singular: plural,
        categories: ["constraint", "constraints"],
      },
      versions: ["v1beta1", "v1alpha1", "v1"].map((name) => ({
        name,
        served: true,
        storage: name === "v1beta1",
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                properties: {
                  enforcementAction: { type: "string" },
                  match: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                  parameters,
                },
              },
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          },
        },
      })),
    },
  };
}

beforeAll(async () => {
  cluster = await startAuditedCluster("rbac", {
    // So the finalizers rule is needed here as in clusters that run this plugin.
    extraApiServerArgs: ["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"],
  });
  admin = cluster.cp.kubeConfig();
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await cluster?.stop();
});

describe("deploy/manifests", () => {
  it("renders from a chart that lints, and the committed renderings are current", async () => {
    const helm = (await run("bash", [chart("../build-helm.sh")])).stdout.trim().split("\n").pop()!;
    const lint = await run(helm, ["lint", "--strict", chart("")]);
    expect(lint.stdout).toContain("0 chart(s) failed");
    for (const [file, content] of renderManifestFiles()) {
      expect(readFileSync(manifests(file), "utf8"), `deploy/manifests/${file}`).toBe(content);
    }
  });

  it("with INSTALL_CRDS the ServiceAccount may install the CRDs itself", async () => {
    await kubectl(["apply", "--server-side", "-f", manifests("namespace.yaml")]);
    await kubectl(["apply", "--server-side", "-f", "-"], renderManifests(["operator.installCRDs=true"]));
    const sa = await waitFor("a token for the ServiceAccount", () =>
      serviceAccountKubeConfig().catch(() => undefined),
    );
    await installCRDs(sa);
  });

  it("`kubectl apply -k deploy/manifests` installs the namespace, the CRDs and the operator, twice", async () => {
    for (let i = 0; i < 2; i++)
      await kubectl(["apply", "-k", fileURLToPath(new URL("../../deploy/manifests", import.meta.url))]);
    const out = await kubectl([
      "get",
      "-n",
      NAMESPACE,
      "deployment/homelab-operator",
      "service/homelab-operator-metrics",
      "serviceaccount/homelab-operator",
      "-o",
      "name",
    ]);
    expect(out.split("\n").filter(Boolean)).toEqual([
      "deployment.apps/homelab-operator",
      "service/homelab-operator-metrics",
      "serviceaccount/homelab-operator",
    ]);
    const crds = await kubectl(["get", "crd", "-o", "name"]);
    for (const plural of ["peertenants", "homelabclusters", "appvendings", "workloadmigrations"]) {
      expect(crds).toContain(`customresourcedefinition.apiextensions.k8s.io/${plural}.homelab.shdr.ch`);
    }
    await kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/peertenants.homelab.shdr.ch",
    ]);
    // The ClusterRole is back to the default rendering: no CRD rule.
    const role = await kubectl(["get", "clusterrole", "homelab-operator", "-o", "json"]);
    expect(role).not.toContain("customresourcedefinitions");
  });

  it("aggregates the AppVending roles into admin and edit (all verbs) and view (read only), never status", async () => {
    type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[] };
    const appVendingVerbs = async (role: string) => {
      const json = JSON.parse(await kubectl(["get", "clusterrole", role, "-o", "json"])) as {
        rules?: Rule[];
      };
      const rules = (json.rules ?? []).filter((r) => r.apiGroups?.includes("homelab.shdr.ch"));
      return {
        verbs: new Set(rules.filter((r) => r.resources?.includes("appvendings")).flatMap((r) => r.verbs)),
        resources: new Set(rules.flatMap((r) => r.resources ?? [])),
      };
    };
    const write = ["create", "update", "patch", "delete", "deletecollection"];
    for (const role of ["admin", "edit"]) {
      // kube-controller-manager's clusterrole-aggregation controller copies the rules in.
      const got = await waitFor(
        `appvendings aggregated into ${role}`,
        async () => {
          const v = await appVendingVerbs(role);
          return v.verbs.has("deletecollection") ? v : undefined;
        },
        60_000,
      );
      expect([...got.verbs].sort()).toEqual(["get", "list", "watch", ...write].sort());
      expect([...got.resources]).toEqual(["appvendings"]);
    }
    const view = await waitFor(
      "appvendings aggregated into view",
      async () => {
        const v = await appVendingVerbs("view");
        return v.verbs.has("get") ? v : undefined;
      },
      60_000,
    );
    expect([...view.verbs].sort()).toEqual(["get", "list", "watch"]);
    expect([...view.resources]).toEqual(["appvendings"]);
  });

  it("lets the ServiceAccount read Secrets by name only, create them, and delete them only in its namespace", async () => {
    // `kubectl auth can-i` answers "no" with exit code 1; both answers are on stdout.
    const canI = async (...args: string[]) => {
      const out = await kubectl(["auth", "can-i", "--as", SERVICE_ACCOUNT, ...args]).catch(
        (e: { stdout?: string }) => e.stdout ?? "",
      );
      return out.trim();
    };
    expect(await canI("get", "secrets", "-n", "default")).toBe("yes");
    expect(await canI("create", "secrets", "-n", NAMESPACE)).toBe("yes");
    expect(await canI("delete", "secrets", "-n", NAMESPACE)).toBe("yes");
    for (const ns of [NAMESPACE, "default", "kube-system"]) {
      for (const verb of ["list", "watch", "update", "patch"])
        expect(await canI(verb, "secrets", "-n", ns)).toBe("no");
    }
    // Create anywhere (an AppVending's database password Secret lives in the tenant's namespace), which
    // cannot overwrite an existing Secret; delete only in the operator's namespace.
    expect(await canI("create", "secrets", "-n", "default")).toBe("yes");
    expect(await canI("delete", "secrets", "-n", "default")).toBe("no");
    // The tenants' aggregated AppVending rights are not the operator's.
    expect(await canI("create", "appvendings.homelab.shdr.ch", "-n", NAMESPACE)).toBe("no");
  });

  it("lets the ServiceAccount run the PeerTenant controller through a tenant's whole life, refusing nothing", async () => {
    // Cilium's real CRD, and Gatekeeper's, so the paths for clusters running them are exercised.
    await kubectl(["apply", "--server-side", "-f", reference("cilium/v2_ciliumnetworkpolicies.yaml")]);
    await kubectl([
      "apply",
      "--server-side",
      "-f",
      reference("cilium/v2_ciliumclusterwidenetworkpolicies.yaml"),
    ]);
    await kubectl([
      "apply",
      "--server-side",
      "-f",
      reference("gatekeeper/constrainttemplate-customresourcedefinition.yaml"),
    ]);
    await kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/ciliumnetworkpolicies.cilium.io",
      "crd/ciliumclusterwidenetworkpolicies.cilium.io",
      "crd/constrainttemplates.templates.gatekeeper.sh",
    ]);
    const adminClient = new KubeClient(admin);

    manager = new Manager({
      kubeConfig: await serviceAccountKubeConfig(),
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      leaderElection: { name: `homelab-operator-rbac-${RUN}`, namespace: NAMESPACE },
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      peerTenantController({ operatorNamespace: NAMESPACE, operatorUsernames: [SERVICE_ACCOUNT] }),
    );
    manager.addController(vendingQuotaController());
    manager.addController(workloadMigrationController({ operatorNamespace: NAMESPACE }));
    await manager.start();
    await waitFor("leadership", () => manager!.isLeader());

    const name = `rbac-${RUN}`;
    const extra = `peers-${name}-extra`;
    await tenants(admin).create(name, {
      owners: { users: [name], groups: [`peers-${name}`] },
      namespaces: { additional: [extra], max: 3 },
      quota: { perNamespace: { pods: "10" } },
      limits: { default: { memory: "256Mi" } },
      network: { allowFromGateway: true },
      requiredLabels: ["owner"],
      gitlab: { groupPath: `peers/${name}`, groupID: 7 },
      deletionPolicy: "Retain",
    });
    await waitReady(admin, name, 90_000);
    // Gatekeeper's part: serve the constraint kinds of the templates the operator writes (the guardrails
    // pass runs on the first tenant's event), then wake the tenant to add its constraint.
    const templates = await waitFor(
      "both constraint templates",
      async () => {
        const list = await adminClient.list({
          apiVersion: "templates.gatekeeper.sh/v1",
          kind: "ConstraintTemplate",
        });
        return list.items.length === 2 ? list.items : undefined;
      },
      60_000,
    );
    for (const t of templates) await adminClient.apply(constraintCRD(t as never));

    // Drift by hand in the quota, the owners' RoleBinding and both Cilium policies: each is replaced back (update) at the next
    // reconcile, which the nudge below brings for the Cilium kinds (not watched by default).
    const quotaKey = { namespace: `peers-${name}`, name: "tenant-quota" };
    const binding = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" };
    const bindingKey = { namespace: `peers-${name}`, name: "tenant-owners" };
    type Subjects = KubeObject & { subjects?: { name?: string }[] };
    const owners = await adminClient.get<Subjects>(binding, bindingKey);
    const mallory = { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "mallory" };
    await adminClient.patch(
      binding,
      bindingKey,
      { subjects: [...(owners.subjects ?? []), mallory] },
      "merge",
    );
    const cnp = { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" };
    const cnpKey = { namespace: `peers-${name}`, name: "tenant-allow-cilium-gateway" };
    const ccnp = { apiVersion: "cilium.io/v2", kind: "CiliumClusterwideNetworkPolicy" };
    const ccnpKey = { name: `homelab-tenant-${name}` };
    await waitFor("the clusterwide Cilium policy", () => adminClient.getOrUndefined(ccnp, ccnpKey), 60_000);
    await adminClient.patch(
      { apiVersion: "v1", kind: "ResourceQuota" },
      quotaKey,
      { spec: { hard: { "count/jobs.batch": "1" } } },
      "merge",
    );
    await adminClient.patch(cnp, cnpKey, { spec: { description: "by hand" } }, "merge");
    await adminClient.patch(ccnp, ccnpKey, { spec: { description: "by hand" } }, "merge");

    const requiredLabels = {
      apiVersion: "constraints.gatekeeper.sh/v1beta1",
      kind: "HomelabTenantRequiredLabels",
    };
    await waitFor(
      "the constraint kinds to be served",
      () => adminClient.resourceInfo(requiredLabels),
      60_000,
    );
    await adminClient.patch(
      TENANT,
      { name },
      { metadata: { annotations: { nudge: "gatekeeper" } } },
      "merge",
    );
    await waitFor(
      "the all-tenants Service constraint (the guardrails pass looks again every 5 s)",
      () =>
        adminClient.getOrUndefined(
          { apiVersion: "constraints.gatekeeper.sh/v1beta1", kind: "HomelabTenantServiceTypes" },
          { name: "homelab-tenants" },
        ),
      60_000,
    );
    await waitFor(
      "the tenant's required-labels constraint",
      () => adminClient.getOrUndefined(requiredLabels, { name: `peers-${name}` }),
      60_000,
    );
    const ready = await waitReady(admin, name, 90_000);
    expect(condition(ready, "AccessReady")?.status).toBe("True");
    await waitFor(
      "the drift undone",
      async () => {
        const q = await adminClient.get<KubeObject & { spec?: { hard?: Record<string, string> } }>(
          { apiVersion: "v1", kind: "ResourceQuota" },
          quotaKey,
        );
        const policies = await Promise.all([adminClient.get(cnp, cnpKey), adminClient.get(ccnp, ccnpKey)]);
        const byHand = policies.some(
          (p) => (p as { spec?: { description?: string } }).spec?.description === "by hand",
        );
        const rb = await adminClient.get<Subjects>(binding, bindingKey);
        const extraSubject = (rb.subjects ?? []).some((s) => s.name === "mallory");
        return q.spec?.hard?.["count/jobs.batch"] === undefined && !byHand && !extraSubject;
      },
      60_000,
    );

    // A tenant in a workload cluster whose kubeconfig Secret does not exist: ClusterConnected=False, after
    // a read of that Secret (the only Secret the operator reads).
    const remote = `rbacr-${RUN}`;
    await tenants(admin).create(remote, {
      owners: { users: [remote], groups: [] },
      clusterRef: "absent",
      deletionPolicy: "Delete",
    });
    await waitFor(
      "ClusterConnected=False for the absent cluster",
      async () => condition(await tenants(admin).get(remote), "ClusterConnected")?.status === "False",
      60_000,
    );

    // Everything optional off, the extra namespace released (Retain): every kind is removed once.
    await tenants(admin).patchSpec(name, {
      namespaces: { additional: [], max: 3 },
      limits: null,
      network: { allowFromGateway: false },
      requiredLabels: [],
      gitlab: null,
    });
    await waitReady(admin, name, 90_000);
    await waitFor(
      "the released namespace to lose the tenant's objects and keep the release's quota",
      async () => {
        const quotas = await adminClient.list(
          { apiVersion: "v1", kind: "ResourceQuota" },
          { namespace: extra },
        );
        const labels = quotas.items.map((q) => q.metadata?.labels ?? {});
        return (
          labels.every((l) => l[TENANT_LABEL] === undefined) && labels.some((l) => l[RELEASED_LABEL] === name)
        );
      },
      60_000,
    );

    // A second tenant whose namespace someone else holds: its Warning repeats on every reconcile.
    const blocked = `rbacb-${RUN}`;
    await adminClient.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: `peers-${blocked}` } });
    await tenants(admin).create(blocked, {
      owners: { users: [blocked], groups: [] },
      deletionPolicy: "Delete",
    });
    for (let i = 0; i < 2; i++) {
      await waitFor(
        "the conflict reported",
        async () => {
          const t = await tenants(admin).get(blocked);
          return condition(t, "NamespacesReady")?.reason === "NamespaceConflict";
        },
        60_000,
      );
      await adminClient.patch(
        TENANT,
        { name: blocked },
        { metadata: { annotations: { touched: String(i) } } },
        "merge",
      );
    }

    // Deletion under Delete: namespaces deleted, waited for, finalizer removed.
    await tenants(admin).patchSpec(name, { deletionPolicy: "Delete" });
    await waitReady(admin, name, 60_000);
    await tenants(admin).delete(name);
    await tenants(admin).delete(blocked);
    await waitFor(
      "both tenants gone",
      async () => {
        const gone = await Promise.all(
          [name, blocked].map((n) =>
            tenants(admin)
              .get(n)
              .then(
                () => false,
                (e: unknown) => statusOf(e) === 404,
              ),
          ),
        );
        return gone.every(Boolean);
      },
      90_000,
    );
    // WorkloadMigration: one migration of every built target kind to retirement, one rolled back.
    await runMigrationScenario(admin, `wm-${RUN}`);
    await manager.stop(); // flushes counted Event repeats into their series
    manager = undefined;

    const refused = (await cluster.events()).filter(
      (e) => e.user.username === SERVICE_ACCOUNT && forbiddenByRBAC(e),
    );
    expect(refused.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  }, 400_000);

  it("lets the ServiceAccount run the AppVending controller from a request to Ready to deleted, refusing nothing", async () => {
    // The providers' and Knative's part, as the provider stand-in plays it, runs as the admin on a
    // manager of its own: only the AppVending controller acts as the ServiceAccount.
    const standIns = new Manager({
      kubeConfig: admin,
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    await startProviderStandIn(standIns, admin, { pollMs: 500 });
    manager = new Manager({
      kubeConfig: await serviceAccountKubeConfig(),
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      appVendingController({ operatorNamespace: NAMESPACE, operatorUsernames: [SERVICE_ACCOUNT] }),
    );
    const adminClient = new KubeClient(admin);
    const key = { namespace: NAMESPACE, name: "portfolio" };
    try {
      await standIns.start();
      await manager.start();
      // Every part: the bucket (Bucket + BucketACL), the database (Database + Role), the OIDC client, the
      // app and, for its own hostname, a DomainMapping and the hostname's claim. In the operator's
      // namespace, an admin namespace, so no tenant's quota stands between this test and the request.
      const example = parse(
        readFileSync(new URL("../../examples/app-vending-portfolio.yaml", import.meta.url), "utf8"),
      ) as KubeObject & { spec: { app: { hostname: string } } };
      example.metadata = { ...example.metadata, ...key };
      const host = `portfolio-${RUN}.apps.home.shdr.ch`;
      example.spec.app.hostname = host;
      await adminClient.create(example);
      await waitFor(
        "the AppVending Ready",
        async () => {
          const o = await adminClient.get<KubeObject>(VENDING.appVending, key);
          const conds = (o.status as { conditions?: { type: string; status: string }[] } | undefined)
            ?.conditions;
          return conds?.find((c) => c.type === "Ready")?.status === "True" ? o : undefined;
        },
        120_000,
      );
      await adminClient.delete(VENDING.appVending, key);
      await waitFor(
        "the AppVending gone, with its hostname claim",
        async () =>
          !(await adminClient.getOrUndefined(VENDING.appVending, key)) &&
          !(await adminClient.getOrUndefined(VENDING.lease, {
            namespace: NAMESPACE,
            name: hostnameClaimName(host),
          })),
        90_000,
      );
      await manager.stop();
      manager = undefined;
    } finally {
      await manager?.stop();
      manager = undefined;
      await standIns.stop();
    }
    const refused = (await cluster.events()).filter(
      (e) => e.user.username === SERVICE_ACCOUNT && forbiddenByRBAC(e),
    );
    expect(refused.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  }, 300_000);

  it("lets the ServiceAccount run the platform-components controller to ComponentsReady, refusing nothing", async () => {
    // The workload cluster is this same API server, reached with the admin's kubeconfig: what Helm and
    // the installer do there is the admin's, so the audit log shows only the management-cluster side.
    const helmPath = await helmBinary();
    const repo = await startChartRepo(helmPath, [], {
      "gateway-api/v1.6.1/standard-install.yaml": await manifestOf(
        WORKLOAD_CRDS_DIR,
        "gateway.networking.k8s.io_",
      ),
    });
    const stateDir = await mkdtemp(join(tmpdir(), "homelab-helm-rbac-"));
    const adminClient = new KubeClient(admin, { fieldManager: "homelab-operator" });
    const name = `components-${RUN}`;
    const valuesSecret = `values-${RUN}`;
    manager = new Manager({
      kubeConfig: await serviceAccountKubeConfig(),
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      platformComponentsController({ helmPath, helmStateDir: stateDir, operatorNamespace: NAMESPACE }),
    );
    try {
      await adminClient.apply({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { namespace: NAMESPACE, name: `${name}-kubeconfig` },
        data: { value: Buffer.from(await readFile(cluster.cp.kubeconfigPath, "utf8")).toString("base64") },
      });
      await adminClient.apply({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { namespace: NAMESPACE, name: valuesSecret },
        stringData: { k: "v" },
      });
      await manager.start();
      const example = parse(
        await readFile(new URL("../../examples/homelab-cluster-k8s.yaml", import.meta.url), "utf8"),
      ) as KubeObject & { spec: Record<string, unknown> };
      await adminClient.apply({
        ...example,
        metadata: { name },
        spec: {
          ...example.spec,
          components: [
            {
              name: "gateway-api",
              repository: `${repo.url}/gateway-api`,
              // valuesFrom names a Secret in the operator's namespace only (the API has no namespace
              // field): the ServiceAccount reads it by name (gateway-api maps no values).
              valuesFrom: [{ name: "unused", secretKeyRef: { name: valuesSecret, key: "k" } }],
            },
          ],
        },
      });
      const components = async () =>
        (
          (await adminClient.get<KubeObject>(HC, { name })).status as
            | { conditions?: { type: string; status: string; reason: string }[] }
            | undefined
        )?.conditions?.find((c) => c.type === "ComponentsReady");
      await waitFor(
        "ComponentsReady=False WaitingForKubeconfig",
        async () => (await components())?.reason === "WaitingForKubeconfig",
        60_000,
      );
      // The provisioning controller's part, written as it would: the kubeconfig is stored.
      await adminClient.applyStatus({
        ...HC,
        metadata: { name },
        status: {
          conditions: [
            {
              type: "KubeconfigReady",
              status: "True",
              reason: "KubeconfigStored",
              message: "stored",
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            },
          ],
          secretRefs: { kubeconfig: { name: `${name}-kubeconfig`, namespace: NAMESPACE } },
        },
      });
      await waitFor("ComponentsReady=True", async () => (await components())?.status === "True", 120_000);
      const managers = (
        ((await adminClient.get<KubeObject>(HC, { name })).metadata?.managedFields ?? []) as {
          manager: string;
        }[]
      ).map((m) => m.manager);
      expect(managers).toContain(COMPONENTS_FIELD_MANAGER);
      await manager.stop(); // flushes the install Event
      manager = undefined;
    } finally {
      await manager?.stop();
      manager = undefined;
      await adminClient.delete(HC, { name }, { ignoreNotFound: true });
      await repo.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
    const refused = (await cluster.events()).filter(
      (e) => e.user.username === SERVICE_ACCOUNT && forbiddenByRBAC(e),
    );
    expect(refused.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  }, 300_000);

  it("lets the ServiceAccount run the HomelabCluster controller from apply to Ready to deleted, refusing nothing", async () => {
    const homelab = await startHomelab();
    const adminClient = await prepareCluster(admin, homelab);
    manager = new Manager({
      kubeConfig: await serviceAccountKubeConfig(),
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      homelabClusterController({
        namespace: NAMESPACE,
        connections: mappedConnections(homelab.addresses),
        timings: { pollMs: 150, blockedMs: 1_000, resyncMs: 3_000 },
        maxBackoffMs: 2_000,
      }),
    );
    try {
      await manager.start();
      await adminClient.create(seedCluster(homelab, (o) => (o.spec.deletionPolicy = "Delete")));
      await waitCondition(adminClient, "k8s", "Ready", (c) => c.status === "True", 150_000);
      await adminClient.delete(HC, { name: "k8s" });
      await waitFor(
        "k8s deleted",
        async () => !(await adminClient.getOrUndefined(HC, { name: "k8s" })),
        90_000,
      );
      await manager.stop();
      manager = undefined;
    } finally {
      await homelab.stop();
    }
    const refused = (await cluster.events()).filter(
      (e) => e.user.username === SERVICE_ACCOUNT && forbiddenByRBAC(e),
    );
    expect(refused.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  }, 300_000);

  it("grants no (verb, resource) the ServiceAccount did not use", async () => {
    const granted = new Set([
      ...grantedPairs(renderManifests()),
      ...grantedPairs(renderManifests(["operator.installCRDs=true"])),
    ]);
    const used = usedPairs(await cluster.events());
    const unused = [...granted].filter((p) => !used.has(p) && !NOT_A_REQUEST.has(p)).sort();
    const table = [...granted]
      .sort()
      .map((p) => `${used.has(p) ? "used " : NOT_A_REQUEST.has(p) ? "check" : "UNUSED"}  ${p}`);
    console.log(`[rbac] granted (verb, resource) pairs:\n${table.join("\n")}`);
    expect(unused).toEqual([]);
    // The roles aggregated into admin/edit/view are rendered but are the tenants', not the operator's.
    expect(renderManifests()).toContain("homelab-operator-appvending-edit");
    expect(granted).not.toContain("homelab.shdr.ch appvendings create");
    // And the exceptions are still granted (a stale entry would hide nothing, but would mislead).
    for (const p of NOT_A_REQUEST.keys()) expect(granted).toContain(p);
  });
});
