// HelmRelease targets (the seed's GitLab and Synapse) with a real chart: the reference Crossplane 2.3.4
// chart, served over HTTPS by the chart repository the components e2e uses (a throwaway CA that Helm
// trusts through SSL_CERT_FILE), installed by the operator's Helm v4 into the workload cluster where
// KWOK runs its pods. Its `extraObjects` value adds a StatefulSet, the shape GitLab and Synapse have.
// The operator runs as its own process, so one test can kill it (and the helm it runs) mid-install.
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Helm } from "../../src/components/helm.ts";
import { findHelm } from "../../src/components/helm-binary.ts";
import { type ChartRepo, startChartRepo } from "../../src/local/chart-mirror.ts";
import { createServingPki } from "../../src/proxmox/simulator/x509.ts";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import {
  CLUSTER,
  createSourceVm,
  type MigrationEnv,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  proxmoxRef,
  ROUTE,
  startMigrationEnv,
  startOperatorProcess,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, simRecords } from "./status.ts";

const CHART_DIR = "/work/shared/reference/charts/crossplane-2.3.4";
const SECRET = { apiVersion: "v1", kind: "Secret" } as const;
const apps = (kind: string) => ({ apiVersion: "apps/v1", kind }) as const;

let env: MigrationEnv;
let repo: ChartRepo;
let operator: OperatorProcess | undefined;
let helm: Helm;
let dir: string;
const previousCertFile = process.env.SSL_CERT_FILE;

describe.skipIf(!existsSync(CHART_DIR))("WorkloadMigration HelmRelease targets", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "wm-helm-"));
    const pki = createServingPki(["127.0.0.1"], "chart repository");
    // Helm (Go) takes its trusted roots from this file; the operator process inherits it.
    await writeFile(join(dir, "ca.pem"), pki.caPem);
    process.env.SSL_CERT_FILE = join(dir, "ca.pem");
    const helmPath = findHelm().path;
    if (!helmPath) throw new Error("no Helm v4 binary (deploy/helm/build-helm.sh builds the pin)");
    repo = await startChartRepo(helmPath, [{ dir: CHART_DIR, version: "2.3.4" }], {}, pki);
    env = await startMigrationEnv(adminKubeConfig(), { inProcess: false });
    const secret = await env.admin.get<KubeObject & { data: Record<string, string> }>(SECRET, {
      namespace: OPERATOR_NAMESPACE,
      name: `${CLUSTER}-kubeconfig`,
    });
    // The test's own look at Helm's record, with the same driver (its own state folder).
    helm = new Helm(
      { helmPath, stateDir: join(dir, "helm") },
      Buffer.from(secret.data.value ?? "", "base64").toString(),
    );
    operator = await startOperatorProcess(kubeconfigPath());
  }, 240_000);
  afterAll(async () => {
    await operator?.killAll();
    await env?.stop();
    await repo?.stop();
    if (previousCertFile === undefined) delete process.env.SSL_CERT_FILE;
    else process.env.SSL_CERT_FILE = previousCertFile;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // One namespace per test: the chart gives some objects fixed names (the rbac-manager ServiceAccount,
  // the crossplane-root-ca Secret), so two of its releases cannot share one.
  const { waitStatus } = migrationStatus(() => env, {
    timeoutMs: 180_000,
    intervalMs: 250,
    namespaceOf: (name) => name,
  });
  const { recordsOf } = simRecords(() => env);
  const replicasOf = async (namespace: string, kind: string, name: string) =>
    (
      await env.workload.get<
        KubeObject & { spec: { replicas: number }; status?: { readyReplicas?: number } }
      >(apps(kind), { namespace, name })
    ).spec.replicas;
  const readyOf = async (namespace: string, kind: string, name: string) =>
    (
      (await env.workload.get<KubeObject>(apps(kind), { namespace, name })).status as {
        readyReplicas?: number;
      }
    ).readyReplicas ?? 0;
  const setRollback = (name: string, rollback: boolean) =>
    env.admin.patch(WM, { namespace: name, name }, { spec: { rollback } }, "merge");

  /** The release's workloads: the chart's two Deployments and the StatefulSet added through extraObjects. */
  const workloadsOf = (release: string) => [
    ["Deployment", release],
    ["Deployment", `${release}-rbac-manager`],
    ["StatefulSet", `${release}-db`],
  ];

  function chartValues(release: string, extra: Record<string, unknown> = {}) {
    return {
      // Every name the chart gives (Deployments, Service, the cluster-wide ClusterRoles) follows it, so
      // the releases of several tests live side by side in one workload cluster.
      nameOverride: release,
      extraObjects: [
        {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          metadata: { name: `${release}-db` },
          spec: {
            replicas: 1,
            serviceName: `${release}-db`,
            selector: { matchLabels: { app: `${release}-db` } },
            template: {
              metadata: { labels: { app: `${release}-db` } },
              spec: { containers: [{ name: "postgres", image: "postgres:17" }] },
            },
          },
        },
      ],
      ...extra,
    };
  }

  /** A migration named after its VM, in a namespace of that name (made here in the management cluster). */
  async function helmMigration(
    name: string,
    vm: { vmid: number; name: string },
    release: string,
    values: Record<string, unknown>,
  ): Promise<KubeObject> {
    await env.admin.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
    return {
      ...WM,
      metadata: { name, namespace: name },
      spec: {
        clusterRef: { name: CLUSTER },
        proxmox: proxmoxRef(env),
        source: { vmid: vm.vmid, name: vm.name },
        targets: [
          {
            name: release,
            kind: "HelmRelease",
            helm: { repository: repo.url, chart: "crossplane", version: "2.3.4", values },
            hostname: `${release}.apps.home.shdr.ch`,
            // The chart's own Service (crossplane.name + "-webhooks"), as the GitLab example names its Workhorse.
            backend: { service: `${release}-webhooks`, port: 9443 },
          },
        ],
        verify: {
          successThreshold: 1,
          interval: "1s",
          timeout: "2m",
          checks: [{ name: "ui", http: { url: `${env.checksUrl}/ok`, bodyContains: "PeaNUT" } }],
        },
        cutover: { mode: "Automatic" },
        decommission: { stopVM: true, requireApproval: true },
      },
    };
  }

  it("installs the chart in the workload cluster, turns Ready, routes to the chart's Service at cutover, stops the VM; rollback scales the release to zero and taking it up again scales it back", async () => {
    const vm = { vmid: 1401, name: "helm-gitlab", node: "trinity", memoryMiB: 2048, diskGiB: 8, ha: true };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    await env.admin.create(await helmMigration(vm.name, vm, "gitlab", chartValues("gitlab")));
    const stopped = await waitStatus(vm.name, "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    expect(cond(stopped, "Deployed")).toMatchObject({ status: "True", reason: "TargetsReady" });

    // Helm's own record: one deployed revision, marked as this migration's.
    const wm = await env.admin.get<KubeObject>(WM, { namespace: vm.name, name: vm.name });
    const release = await helm.status("gitlab", ns);
    expect(release).toMatchObject({ revision: 1, status: "deployed", chartVersion: "2.3.4" });
    expect(release?.labels).toMatchObject({
      "homelab-operator.dev/managed-by": "homelab-operator",
      "homelab.shdr.ch/migration": vm.name,
      "homelab.shdr.ch/migration-uid": wm.metadata?.uid,
    });
    // Rolled out by the workload cluster's own controllers (KWOK runs the pods).
    for (const [kind, name] of workloadsOf("gitlab")) expect(await readyOf(ns, kind!, name!)).toBe(1);
    const route = await env.workload.get<KubeObject>(ROUTE, { namespace: ns, name: "gitlab" });
    expect(route.spec).toMatchObject({
      hostnames: ["gitlab.apps.home.shdr.ch"],
      rules: [{ backendRefs: [{ name: "gitlab-webhooks", port: 9443 }] }],
    });
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("stopped");
    const shutdown = recordsOf(vm.vmid).find((r) => r.kind === "power" && r.action === "shutdown");
    expect(shutdown?.at).toBeGreaterThanOrEqual(Date.parse(String(stopped["cutoverTime"])));

    await setRollback(vm.name, true);
    const rolledBack = await waitStatus(vm.name, "rolled back", (s) => s.phase === "RolledBack");
    expect(rolledBack.rollbackMessage).toContain("gitlab are stateful");
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("running");
    expect(await env.workload.getOrUndefined(ROUTE, { namespace: ns, name: "gitlab" })).toBeUndefined();
    for (const [kind, name] of workloadsOf("gitlab")) expect(await replicasOf(ns, kind!, name!)).toBe(0);
    // Held through the scale subresource: the release itself is neither upgraded nor uninstalled.
    expect(await helm.status("gitlab", ns)).toMatchObject({ revision: 1, status: "deployed" });

    await setRollback(vm.name, false);
    await waitStatus(vm.name, "deployed again", (s) => cond(s, "Deployed")?.status === "True");
    for (const [kind, name] of workloadsOf("gitlab")) {
      expect(await replicasOf(ns, kind!, name!)).toBe(1);
      await waitFor(
        `${kind} ${name} ready again`,
        async () => (await readyOf(ns, kind!, name!)) === 1,
        60_000,
      );
    }
    expect(await helm.status("gitlab", ns)).toMatchObject({ revision: 1, status: "deployed" });

    // A values change is one upgrade: Helm takes replicas back from the scale subresource's field
    // manager without a conflict, and applies the chart's new value.
    await env.admin.patch(
      WM,
      { namespace: vm.name, name: vm.name },
      {
        spec: {
          targets: [
            {
              ...(wm.spec as { targets: Record<string, unknown>[] }).targets[0],
              helm: {
                repository: repo.url,
                chart: "crossplane",
                version: "2.3.4",
                values: chartValues("gitlab", { rbacManager: { replicas: 2 } }),
              },
            },
          ],
        },
      },
      "merge",
    );
    await waitFor(
      "the upgraded release",
      // Revision 2 is recorded pending-upgrade before Helm applies anything; deployed after.
      async () => {
        const r = await helm.status("gitlab", ns);
        return r?.revision === 2 && r.status === "deployed";
      },
      120_000,
      500,
    );
    await waitStatus(vm.name, "deployed after the upgrade", (s) => cond(s, "Deployed")?.status === "True");
    expect(await replicasOf(ns, "Deployment", "gitlab-rbac-manager")).toBe(2);
    expect(await replicasOf(ns, "Deployment", "gitlab")).toBe(1);
    expect(await helm.status("gitlab", ns)).toMatchObject({ revision: 2, status: "deployed" });
  }, 420_000);

  it("creates nothing when the API server refuses the chart's objects (a values error): phase Failed, VM running", async () => {
    const vm = { vmid: 1402, name: "helm-refused", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    // Valid for the CRD and for the chart's templates; the API server's Deployment validation refuses it.
    const values = chartValues("refused", { replicas: -1 });
    await env.admin.create(await helmMigration(vm.name, vm, "refused", values));
    const failed = await waitStatus(vm.name, "refused", (s) => s.phase === "Failed");
    expect(cond(failed, "Deployed")).toMatchObject({ status: "False", reason: "TargetRefused" });
    expect(cond(failed, "Deployed")?.message).toMatch(
      /HelmRelease refused Deployment refused: .*spec.replicas: Invalid value: -1/,
    );
    expect(await helm.status("refused", ns)).toBeUndefined();
    for (const [kind, name] of workloadsOf("refused"))
      expect(await env.workload.getOrUndefined(apps(kind!), { namespace: ns, name: name! })).toBeUndefined();
    expect(
      await env.workload.getOrUndefined(
        { apiVersion: "v1", kind: "Service" },
        { namespace: ns, name: "refused-webhooks" },
      ),
    ).toBeUndefined();
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("running");
    expect(recordsOf(vm.vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
  }, 240_000);

  it("refuses a release of the target's name it did not make, even one carrying its managed-by label, and never touches it", async () => {
    const vm = { vmid: 1403, name: "helm-foreign", node: "niobe", memoryMiB: 1024, diskGiB: 8 };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    // Someone else's release, made first, with labels copied from ours except for the migration's uid.
    await helm.upgradeInstall({
      release: "foreign",
      namespace: ns,
      source: { kind: "chart", repository: repo.url, chart: "crossplane", version: "2.3.4" },
      values: chartValues("foreign"),
      labels: { "homelab-operator.dev/managed-by": "homelab-operator", "homelab.shdr.ch/migration": vm.name },
    });
    const before = await helm.status("foreign", ns);
    const valuesBefore = await helm.values("foreign", ns);
    await env.admin.create(
      await helmMigration(vm.name, vm, "foreign", chartValues("foreign", { rbacManager: { replicas: 3 } })),
    );
    const failed = await waitStatus(vm.name, "refused", (s) => s.phase === "Failed");
    expect(cond(failed, "Deployed")).toMatchObject({ status: "False", reason: "ReleaseNameTaken" });
    await setRollback(vm.name, true);
    await waitStatus(vm.name, "rolled back", (s) => s.phase === "RolledBack");
    // Neither upgraded (same revision and values) nor scaled down by the rollback.
    expect(await helm.status("foreign", ns)).toEqual(before);
    expect(await helm.values("foreign", ns)).toEqual(valuesBefore);
    await waitFor(
      "the foreign Deployment rolled out",
      async () => (await readyOf(ns, "Deployment", "foreign")) === 1,
      60_000,
    );
    for (const [kind, name] of workloadsOf("foreign")) expect(await replicasOf(ns, kind!, name!)).toBe(1);
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("running");
    expect(recordsOf(vm.vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
  }, 240_000);

  it("killed (with its helm) mid-install, the operator recovers the pending release and converges to one release, one revision; killed mid-upgrade, it rolls back and upgrades again", async () => {
    const vm = { vmid: 1404, name: "helm-crash", node: "trinity", memoryMiB: 1024, diskGiB: 8 };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    // Without the RBAC manager (and so without aggregating ClusterRoles): once, the recovery's
    // uninstall was followed by the ClusterRole "crash" existing again without Helm's labels, which
    // left the install waiting (ObjectNotOurs); the README lists this under Not done.
    const crashValues = (extra: Record<string, unknown> = {}) =>
      chartValues("crash", { rbacManager: { deploy: false }, ...extra });
    await env.admin.create(await helmMigration(vm.name, vm, "crash", crashValues()));
    // Helm's storage: one Secret per revision of the release, its status in a label.
    const revisions = async () =>
      (
        await env.workload.list<KubeObject>(SECRET, {
          namespace: ns,
          labelSelector: "owner=helm,name=crash",
        })
      ).items.map((s) => ({ version: s.metadata?.labels?.version, status: s.metadata?.labels?.status }));
    await waitFor(
      "the install under way",
      async () => (await revisions()).some((r) => r.status === "pending-install"),
      120_000,
      10,
    );
    await operator?.killAll();
    // Killed with the operator, helm never finished: the release stays locked as it was.
    expect(await revisions()).toEqual([{ version: "1", status: "pending-install" }]);

    operator = await startOperatorProcess(kubeconfigPath());
    await waitStatus(vm.name, "deployed after the restart", (s) => cond(s, "Deployed")?.status === "True");
    expect(await revisions()).toEqual([{ version: "1", status: "deployed" }]);
    expect(await helm.status("crash", ns)).toMatchObject({ revision: 1, status: "deployed" });
    const deployments = await env.workload.list<KubeObject>(apps("Deployment"), {
      namespace: ns,
      labelSelector: "app.kubernetes.io/instance=crash",
    });
    expect(deployments.items.map((d) => d.metadata?.name).sort()).toEqual(["crash"]);
    const uid = (await env.admin.get<KubeObject>(WM, { namespace: ns, name: vm.name })).metadata?.uid;
    const events = await env.admin.list<KubeObject & { regarding?: { uid?: string }; reason?: string }>(
      { apiVersion: "events.k8s.io/v1", kind: "Event" },
      { namespace: ns },
    );
    expect(
      events.items.filter((e) => e.regarding?.uid === uid && e.reason === "HelmReleaseRecovered").length,
    ).toBeGreaterThanOrEqual(1);
    // Reconciled again and again from here on (verification, cutover): never a second revision.
    await waitStatus(vm.name, "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    expect(await revisions()).toEqual([{ version: "1", status: "deployed" }]);

    // Killed again mid-upgrade (a values change): the release left pending-upgrade is rolled back one
    // revision, then upgraded to what the spec says.
    const spec = (await env.admin.get<KubeObject>(WM, { namespace: ns, name: vm.name })).spec as {
      targets: Record<string, unknown>[];
    };
    await env.admin.patch(
      WM,
      { namespace: ns, name: vm.name },
      {
        spec: {
          targets: [
            {
              ...spec.targets[0],
              helm: {
                repository: repo.url,
                chart: "crossplane",
                version: "2.3.4",
                values: crashValues({ replicas: 2 }),
              },
            },
          ],
        },
      },
      "merge",
    );
    await waitFor(
      "the upgrade under way",
      async () => (await revisions()).some((r) => r.status === "pending-upgrade"),
      120_000,
      10,
    );
    await operator?.killAll();
    expect((await revisions()).filter((r) => r.status === "pending-upgrade")).toEqual([
      { version: "2", status: "pending-upgrade" },
    ]);
    operator = await startOperatorProcess(kubeconfigPath());
    // Helm's rollback writes revision 3 (revision 1 again) and leaves the interrupted revision 2 in its
    // history as it was; the upgrade is then revision 4, the one deployed (what `helm status` reads).
    const byVersion = async () => (await revisions()).sort((a, b) => Number(a.version) - Number(b.version));
    const want = [
      { version: "1", status: "superseded" },
      { version: "2", status: "pending-upgrade" },
      { version: "3", status: "superseded" },
      { version: "4", status: "deployed" },
    ];
    await waitFor(
      "the upgrade after the restart",
      async () =>
        JSON.stringify(await byVersion()) === JSON.stringify(want) &&
        (await replicasOf(ns, "Deployment", "crash")) === 2,
      180_000,
      500,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; revisions ${JSON.stringify(await byVersion())}`);
    });
    expect(await helm.status("crash", ns)).toMatchObject({ revision: 4, status: "deployed" });
    // Reconciled on (the migration stays at VMStopped): no further revision.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await byVersion()).toEqual(want);
    const recovered = await env.admin.list<
      KubeObject & { regarding?: { uid?: string }; reason?: string; note?: string }
    >({ apiVersion: "events.k8s.io/v1", kind: "Event" }, { namespace: ns });
    expect(
      recovered.items.some(
        (e) =>
          e.regarding?.uid === uid &&
          e.reason === "HelmReleaseRecovered" &&
          /pending-upgrade/.test(e.note ?? ""),
      ),
    ).toBe(true);
  }, 600_000);

  it("holds the release at zero replicas while a data sync is pending, and gives the chart's replicas back after the final sync", async () => {
    const vm = { vmid: 1405, name: "helm-synapse", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    const wm = await helmMigration(vm.name, vm, "synapse", chartValues("synapse"));
    // The user's dump Job runs only on a node labelled for it: none is, until the test says so.
    (wm.spec as Record<string, unknown>)["dataSync"] = {
      method: "Job",
      job: {
        template: {
          spec: {
            restartPolicy: "Never",
            nodeSelector: { "e2e.homelab.shdr.ch/sync": "open" },
            containers: [{ name: "dump", image: "postgres:17", command: ["true"] }],
          },
        },
      },
    };
    await env.admin.create(wm);
    const held = await waitStatus(
      vm.name,
      "held for the sync",
      (s) => cond(s, "Deployed")?.reason === "HeldForSync",
    );
    expect(cond(held, "DataSynced")?.status).toBe("False");
    expect(await helm.status("synapse", ns)).toMatchObject({ revision: 1, status: "deployed" });
    // Held, and still held a few reconciles later (the release is not upgraded back to its replicas).
    for (let i = 0; i < 2; i++) {
      for (const [kind, name] of workloadsOf("synapse")) expect(await replicasOf(ns, kind!, name!)).toBe(0);
      await new Promise((r) => setTimeout(r, 3_000));
    }
    expect(await helm.status("synapse", ns)).toMatchObject({ revision: 1 });

    await env.workload.patch(
      { apiVersion: "v1", kind: "Node" },
      { name: "talos-neo" },
      { metadata: { labels: { "e2e.homelab.shdr.ch/sync": "open" } } },
      "merge",
    );
    const ready = await waitStatus(
      vm.name,
      "deployed after the final sync",
      (s) => cond(s, "Deployed")?.reason === "TargetsReady",
    );
    expect(ready["finalSyncTime"]).toBeDefined();
    for (const [kind, name] of workloadsOf("synapse")) expect(await replicasOf(ns, kind!, name!)).toBe(1);
    expect(await helm.status("synapse", ns)).toMatchObject({ revision: 1, status: "deployed" });
  }, 300_000);

  it("waits at cutover while the backend Service is not there (no route, VM running), and routes once it is", async () => {
    const vm = { vmid: 1406, name: "helm-backend", node: "niobe", memoryMiB: 1024, diskGiB: 8 };
    const ns = vm.name;
    await createSourceVm(env.proxmox, vm);
    const wm = await helmMigration(vm.name, vm, "element", chartValues("element"));
    const target = (wm.spec as { targets: Record<string, unknown>[] }).targets[0]!;
    target["backend"] = { service: "element-web", port: 80 };
    await env.admin.create(wm);
    const waiting = await waitStatus(
      vm.name,
      "waiting for the backend",
      (s) => cond(s, "CutOver")?.reason === "BackendMissing",
    );
    expect(cond(waiting, "CutOver")?.message).toContain(
      "Service element-web (of HelmRelease element) does not exist",
    );
    expect(waiting["cutoverTime"]).toBeUndefined();
    expect(await env.workload.getOrUndefined(ROUTE, { namespace: ns, name: "element" })).toBeUndefined();
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("running");
    expect(recordsOf(vm.vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);

    // The Service appears (here made by hand, as a later chart version would): cutover goes on.
    await env.workload.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "element-web", namespace: ns },
      spec: { selector: { app: "element-web" }, ports: [{ port: 80 }] },
    });
    await waitStatus(vm.name, "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    const route = await env.workload.get<KubeObject>(ROUTE, { namespace: ns, name: "element" });
    expect(route.spec).toMatchObject({ rules: [{ backendRefs: [{ name: "element-web", port: 80 }] }] });
  }, 300_000);
});
