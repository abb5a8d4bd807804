// deploy/ is what runs in a cluster: the Helm chart lints, deploy/manifests is its current rendering,
// `kubectl apply -k deploy/manifests` (the README's command) installs it, and the ClusterRole is exactly
// what the operator uses: the controllers run as the chart's ServiceAccount on an API server with an
// audit log, no request of theirs may be refused, and every (verb, resource) the chart grants must show
// up in what that ServiceAccount did. Tried by removing rules: without `peertenants/finalizers update`
// the tenant never gets Ready (admission refuses blockOwnerDeletion); without `events patch` the one
// series update at stop is a 403 in the audit log; without `configmaps get` the API server refuses the
// ValidatingAdmissionPolicies (paramKind).
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { renderManifestFiles, renderManifests } from "../../scripts/generate-manifests.ts";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { ensureControlPlaneBinaries } from "../harness/binaries.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { condition, RUN, tenants, waitReady } from "../peer-tenant/tenant-fixtures.ts";
import {
  type AuditEvent,
  type AuditedCluster,
  forbiddenByRBAC,
  resourceOf,
  startAuditedCluster,
} from "../runtime/audited-cluster.ts";

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
 * - peertenants/finalizers update: checked by the OwnerReferencesPermissionEnforcement admission plugin
 *   (on in this test's API server) for every ownerReference with blockOwnerDeletion, not a request.
 * - configmaps get: the API server refuses a ValidatingAdmissionPolicy whose paramKind is ConfigMap
 *   unless its writer may get all ConfigMaps (found by this test: a 422 naming the missing permission).
 * - peertenants get: finalizers.ts re-reads the object after its JSON patch guard failed because someone
 *   changed the finalizers at the same moment; a race this test cannot produce on purpose.
 */
const NOT_A_REQUEST = new Map([
  ["rbac.authorization.k8s.io clusterroles bind", "escalation check on RoleBindings to admin/edit"],
  ["homelab.shdr.ch peertenants/finalizers update", "OwnerReferencesPermissionEnforcement admission"],
  ["homelab.shdr.ch peertenants get", "re-read after a finalizer patch guard fails (a race)"],
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

/** "group resource verb" for every verb of every rule of the ClusterRole and Role in a rendering. */
function grantedPairs(rendering: string): Set<string> {
  const pairs = new Set<string>();
  for (const doc of parseAllDocuments(rendering)) {
    const obj = doc.toJS() as {
      kind?: string;
      rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    if (obj?.kind !== "ClusterRole" && obj?.kind !== "Role") continue;
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

  it("lets the ServiceAccount run the PeerTenant controller through a tenant's whole life, refusing nothing", async () => {
    // Cilium's real CRD, and Gatekeeper's, so the paths for clusters running them are exercised.
    await kubectl(["apply", "--server-side", "-f", reference("cilium/v2_ciliumnetworkpolicies.yaml")]);
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
    await adminClient.get(
      { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" },
      { namespace: `peers-${name}`, name: "tenant-allow-cilium-gateway" },
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
      "the released namespace to lose the tenant's objects",
      async () => {
        const quotas = await adminClient.list(
          { apiVersion: "v1", kind: "ResourceQuota" },
          { namespace: extra },
        );
        return quotas.items.length === 0;
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
    await manager.stop(); // flushes counted Event repeats into their series
    manager = undefined;

    const refused = (await cluster.events()).filter(
      (e) => e.user.username === SERVICE_ACCOUNT && forbiddenByRBAC(e),
    );
    expect(refused.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  }, 400_000);

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
    // And the exceptions are still granted (a stale entry would hide nothing, but would mislead).
    for (const p of NOT_A_REQUEST.keys()) expect(granted).toContain(p);
  });
});
