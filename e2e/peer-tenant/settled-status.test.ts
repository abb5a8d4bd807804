// What a PeerTenant's Ready promises and what a settled tenant costs the API server, counted from the API
// server's own audit log. The control plane runs without kube-controller-manager's resourcequota
// controller, so the test decides when a quota gets counted and plays that controller itself (writing
// status.hard and status.used as it would): a loaded cluster's quota controller lagging behind the
// operator, made deterministic. That lag is what the 1000-tenant bench measured as ~800 status writes in
// its "idle" minute: every tenant had said Ready (quota "enforced") before its quota was counted, and
// wrote again once it was.
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { DEFAULT_CONTROLLERS } from "../harness/control-plane.ts";
import { statusMessage, statusOf, waitFor } from "../harness/wait.ts";
import { type AuditedCluster, startAuditedCluster, WRITE_VERBS } from "../runtime/audited-cluster.ts";
import { OPERATOR_NAMESPACE } from "./operator.ts";
import { condition, RUN, type TenantObject, tenants } from "./tenant-fixtures.ts";

const OPERATOR = "homelab-operator-settled";
const RESYNC_MS = 2_000;
const QUOTA = { apiVersion: "v1", kind: "ResourceQuota" };

let cluster: AuditedCluster;
let admin: KubeConfig;
let manager: Manager | undefined;

beforeAll(async () => {
  cluster = await startAuditedCluster("settled", {
    controllers: DEFAULT_CONTROLLERS.filter((c) => c !== "resourcequota-controller"),
  });
  admin = cluster.cp.kubeConfig();
  await installCRDs(admin);
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } });
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: OPERATOR },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: OPERATOR }],
    },
  });
  // Its own identity, so the audit log tells its writes from the test's.
  manager = new Manager({
    kubeConfig: await cluster.cp.userKubeConfig(OPERATOR),
    logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
    // Every cached object is handed to the controller again this often: each one a full reconcile.
    resyncPeriodMs: RESYNC_MS,
  });
  manager.addController(
    peerTenantController({ operatorNamespace: OPERATOR_NAMESPACE, operatorUsernames: [OPERATOR] }),
  );
  await manager.start();
});

afterAll(async () => {
  await manager?.stop();
  await cluster?.stop();
});

function spec(owner: string) {
  return {
    owners: { users: [owner], groups: [`peers-${owner}`] },
    // 64Mi of requests: a pod asking for 128Mi is over it, if the quota is enforced.
    quota: { perNamespace: { "requests.memory": "64Mi", pods: "5" } },
    network: { allowIngressFromNamespaces: [] },
    requiredLabels: ["owner"],
  };
}

/** A pod that passes Pod Security "restricted" and the required-labels guardrail, asking 128Mi. */
function bigPod(owner: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "big", labels: { owner } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "app",
          image: "registry.example/app:1",
          resources: { requests: { memory: "128Mi", cpu: "50m" }, limits: { memory: "128Mi", cpu: "100m" } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
}

/** Dry-run create of `bigPod`: every admission check runs (quota included), nothing is stored. */
async function bigPodAdmitted(ns: string, owner: string): Promise<true | string> {
  try {
    await new KubeClient(admin).request("POST", `/api/v1/namespaces/${ns}/pods`, {
      query: { dryRun: "All" },
      body: bigPod(owner),
    });
    return true;
  } catch (err) {
    return `${statusOf(err)}: ${statusMessage(err)}`;
  }
}

/** Does what kube-controller-manager's quota controller does for a quota over an empty namespace. */
async function countQuota(ns: string): Promise<void> {
  const client = new KubeClient(admin);
  const rq = await waitFor(`ResourceQuota in ${ns}`, () =>
    client.getOrUndefined<KubeObject & { spec?: { hard?: Record<string, string> } }>(QUOTA, {
      namespace: ns,
      name: "tenant-quota",
    }),
  );
  const hard = rq.spec?.hard ?? {};
  await client.request("PUT", `/api/v1/namespaces/${ns}/resourcequotas/tenant-quota/status`, {
    body: {
      ...rq,
      status: { hard, used: Object.fromEntries(Object.keys(hard).map((r) => [r, "0"])) },
    },
  });
}

async function tenantStatusWrites(name: string, since: Date): Promise<string[]> {
  return (await cluster.events())
    .filter(
      (e) =>
        e.user.username === OPERATOR &&
        WRITE_VERBS.has(e.verb) &&
        e.objectRef?.resource === "peertenants" &&
        e.objectRef.subresource === "status" &&
        e.objectRef.name === name &&
        new Date(e.requestReceivedTimestamp) >= since,
    )
    .map((e) => `${e.requestReceivedTimestamp} ${e.verb} ${e.requestURI}`);
}

async function reconciles(): Promise<number> {
  const metric = await manager!.metrics.reconcileTotal.get();
  return metric.values
    .filter((v) => v.labels["controller"] === "peertenant")
    .reduce((sum, v) => sum + v.value, 0);
}

describe("PeerTenant Ready and a settled tenant's status writes", () => {
  it("is not Ready while its quota is not counted (the API server does not enforce it yet), Ready once it is", async () => {
    const name = `uncounted-${RUN}`;
    const ns = `peers-${name}`;
    await tenants(admin).create(name, spec(name));
    const pending = await waitFor(`${name} QuotaReady=False`, async () => {
      const t = await tenants(admin).get(name);
      return condition(t, "QuotaReady")?.status === "False" ? t : undefined;
    });
    expect(condition(pending, "QuotaReady")?.reason).toBe("QuotaPending");
    expect(condition(pending, "Ready")?.status).toBe("False");
    // Why: with status.hard still empty, quota admission lets through what the quota forbids.
    await waitFor("guardrails enforced", async () =>
      condition(await tenants(admin).get(name), "GuardrailsReady")?.status === "True" ? true : undefined,
    );
    // The ServiceAccount admission plugin refuses pods until the namespace's default ServiceAccount exists.
    await waitFor("default service account", () =>
      admin.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name: "default", namespace: ns }),
    );
    expect(await bigPodAdmitted(ns, name)).toBe(true);

    await countQuota(ns);
    const ready = await waitFor(`${name} Ready`, async () => {
      const t = await tenants(admin).get(name);
      return condition(t, "Ready")?.status === "True" ? t : undefined;
    });
    expect(condition(ready, "QuotaReady")?.reason).toBe("QuotaApplied");
    // The spec's two resources, and the operator-wide defaults for the rest; nothing used yet.
    const quota = ready.status?.quota;
    expect(quota?.hard).toMatchObject({ pods: "5", "requests.memory": "64Mi" });
    expect(Object.keys(quota?.used ?? {}).sort()).toEqual(Object.keys(quota?.hard ?? {}).sort());
    expect(new Set(Object.values(quota?.used ?? {}))).toEqual(new Set(["0"]));
    // And now the same pod is refused: what Ready says is in force.
    expect(await bigPodAdmitted(ns, name)).toMatch(/^403: .*exceeded quota/);
  });

  it("writes no status for a settled tenant, through repeated resyncs (each a full reconcile)", async () => {
    const name = `settled-${RUN}`;
    await tenants(admin).create(name, spec(name));
    await waitFor(`${name} QuotaPending`, async () =>
      condition(await tenants(admin).get(name), "QuotaReady")?.reason === "QuotaPending" ? true : undefined,
    );
    await countQuota(`peers-${name}`);
    const settled: TenantObject = await waitFor(`${name} Ready with its quota`, async () => {
      const t = await tenants(admin).get(name);
      return condition(t, "Ready")?.status === "True" && t.status?.quota?.hard?.pods === "5" ? t : undefined;
    });
    // Let the write that made it Ready (and any reconcile already queued) land first.
    await new Promise((r) => setTimeout(r, 1_000));
    const since = new Date();
    const before = await reconciles();
    await new Promise((r) => setTimeout(r, RESYNC_MS * 6));
    const reconciled = (await reconciles()) - before;

    // The window held reconciles (so "no writes" means something): about two per resync, one per tenant.
    expect(reconciled).toBeGreaterThanOrEqual(3);
    expect(await tenantStatusWrites(name, since)).toEqual([]);
    const after = await tenants(admin).get(name);
    expect(after.status).toEqual(settled.status);
  });
});
