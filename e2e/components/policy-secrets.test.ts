// Gatekeeper, External Secrets and the Crossplane ProviderConfigs on a KWOK workload cluster: the real
// Gatekeeper 3.23.0 and External Secrets 2.9.0 charts from the loopback chart repository, their pods
// scheduled and run by KWOK once Cilium made the Node Ready, readiness from the status kube-controller-
// manager writes, and the seed's objects next to them (the K8sRequiredLabels ConstraintTemplate, the
// OpenBao ClusterSecretStore, the three ClusterProviderConfigs with their credential Secrets) kept exact.
//
// Not here, and why: Knative Operator, Secrets Store CSI, the OpenBao CSI provider, the OpenTelemetry
// Collector and the GitLab agent have no chart in ../shared/reference/charts (no internet in tests).
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { CATALOG, type CatalogEntry, type PlatformSettings } from "../../src/components/catalog.ts";
import { Helm } from "../../src/components/helm.ts";
import {
  COMPONENTS_FIELD_MANAGER,
  type ComponentResult,
  type DesiredComponent,
  type InstallContext,
  reconcileComponents,
} from "../../src/components/installer.ts";
import { type ChartRepo, manifestOf, startChartRepo } from "../../src/local/chart-mirror.ts";
import { WORKLOAD_CRDS_DIR } from "../../src/local/container-stand-ins.ts";
import { KubeClient } from "../../src/runtime/client.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { waitFor } from "../harness/wait.ts";
import { CRDS_DIR, helmBinary, type KwokWorkload, runningPods, startKwokWorkload } from "./workload.ts";

const CHARTS = "/work/shared/reference/charts";
const haveCharts = ["cilium-1.19.6", "gatekeeper-3.23.0", "external-secrets-2.9.0"].every((c) =>
  existsSync(join(CHARTS, c)),
);
const PROVIDER_CRDS = fileURLToPath(new URL("../../src/local/provider-stand-in/crds/", import.meta.url));

const platform: PlatformSettings = {
  domain: "home.shdr.ch",
  kubePrismPort: 7445,
  openBaoAddress: "https://bao.home.shdr.ch:8200",
  s3Endpoint: "https://rgw.home.shdr.ch",
  postgres: { host: "db.home.shdr.ch", port: 5432, sslMode: "verify-full" },
};
const providerSecrets = {
  "s3-credentials": "[default]\naws_access_key_id = rgw-key\naws_secret_access_key = rgw-secret-e2e\n",
  "keycloak-credentials": '{"client_id":"crossplane","client_secret":"kc-secret-e2e","url":"https://id"}',
  "postgres-username": "crossplane",
  "postgres-password": "pg-secret-e2e",
};

/**
 * What External Secrets' release packaging does and its repository tree has not (reference charts
 * README): the CRD templates, generated from its CRD files (the three of ../shared/reference/crds), gated
 * by installCRDs. Its optional bitwarden-sdk-server dependency (off by default) is not vendored, and
 * Helm refuses a chart whose listed dependency is missing, so the copy is packaged without it.
 */
async function packageLikeExternalSecrets(copy: string): Promise<void> {
  const chart = parse(await readFile(join(copy, "Chart.yaml"), "utf8")) as { dependencies?: unknown };
  delete chart.dependencies;
  await writeFile(join(copy, "Chart.yaml"), stringify(chart));
  await unlink(join(copy, "Chart.lock"));
  for (const f of (await readdir(CRDS_DIR)).filter((n) => n.startsWith("external-secrets.io_"))) {
    const crd = await readFile(join(CRDS_DIR, f), "utf8");
    await writeFile(
      join(copy, "templates", "crds", f),
      `{{- if .Values.installCRDs }}\n${crd}\n{{- end }}\n`,
    );
  }
}

describe.skipIf(!haveCharts)("Gatekeeper, External Secrets and ProviderConfigs (real charts, KWOK)", () => {
  let cp: KwokWorkload;
  let repo: ChartRepo;
  let workload: KubeClient;
  let helm: Helm;
  let stateDir: string;
  let desired: DesiredComponent[];
  const entry = (name: string) => CATALOG.find((c) => c.name === name) as CatalogEntry;
  const ctx = (): InstallContext => ({
    clusterName: "talos-k8s",
    workload,
    helm,
    platform,
    fetchText: async (url) => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
      return res.text();
    },
    fence: async () => {},
  });
  const pass = () => reconcileComponents(ctx(), desired);
  const byName = (rs: ComponentResult[]) => Object.fromEntries(rs.map((r) => [r.name, r]));
  async function untilAllReady(what: string): Promise<ComponentResult[]> {
    let last: ComponentResult[] = [];
    return waitFor(
      `${what} (last: ${JSON.stringify(last.filter((r) => r.state !== "Ready" || r.restored).map((r) => [r.name, r.message, r.restored]))})`,
      async () => {
        last = await pass();
        return last.every((r) => r.state === "Ready") ? last : undefined;
      },
      240_000,
      1_000,
    );
  }

  /**
   * Passes until `done` holds for every result seen so far (per component, in order). A loaded machine can
   * let a KWOK heartbeat come late, so a Node, and Cilium with it, may be briefly not Ready: a dependent is
   * then Blocked for a pass, and what it would do happens in the next one.
   */
  async function passesUntil(
    what: string,
    done: (seen: Record<string, ComponentResult[]>) => boolean,
  ): Promise<Record<string, ComponentResult[]>> {
    const seen: Record<string, ComponentResult[]> = {};
    const deadline = Date.now() + 180_000;
    for (;;) {
      for (const r of await pass()) seen[r.name] = [...(seen[r.name] ?? []), r];
      if (done(seen)) return seen;
      if (Date.now() > deadline) throw new Error(`${what}: not within 180 s; seen ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  const restoredBy = (seen: Record<string, ComponentResult[]>, name: string) =>
    (seen[name] ?? []).filter((r) => r.action === "restored");

  beforeAll(async () => {
    const helmPath = await helmBinary();
    cp = await startKwokWorkload("policy", 1);
    workload = new KubeClient(cp.cluster.controlPlane.kubeConfig(), {
      fieldManager: COMPONENTS_FIELD_MANAGER,
    });
    stateDir = await mkdtemp(join(tmpdir(), "homelab-helm-policy-"));
    helm = new Helm({ helmPath, stateDir, timeoutMs: 180_000 }, cp.kubeconfigYaml);
    repo = await startChartRepo(
      helmPath,
      [
        { dir: join(CHARTS, "cilium-1.19.6") },
        { dir: join(CHARTS, "gatekeeper-3.23.0") },
        { dir: join(CHARTS, "external-secrets-2.9.0"), prepare: packageLikeExternalSecrets },
      ],
      {
        "gateway-api/v1.6.1/standard-install.yaml": await manifestOf(
          WORKLOAD_CRDS_DIR,
          "gateway.networking.k8s.io_",
        ),
      },
    );
    // What Crossplane and its three providers would have brought: their namespace and the
    // ClusterProviderConfig kinds (Crossplane itself is covered by components.test.ts).
    await workload.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "crossplane-system" } });
    for (const f of (await readdir(PROVIDER_CRDS)).filter((n) => n.includes("_clusterproviderconfigs"))) {
      await workload.apply(parse(await readFile(join(PROVIDER_CRDS, f), "utf8")) as KubeObject, {
        force: true,
      });
    }
    const mirror = (name: string, extra: Partial<DesiredComponent> = {}): DesiredComponent => ({
      entry: entry(name),
      enabled: true,
      repository: name === "gateway-api" ? `${repo.url}/gateway-api` : repo.url,
      ...extra,
    });
    desired = [
      mirror("gateway-api"),
      mirror("cilium"),
      // No process answers the webhook on KWOK, and the chart's fails closed (Fail) for SecretStores: the
      // OpenBao store could never be written. A real cluster keeps the default.
      mirror("external-secrets", { values: { webhook: { failurePolicy: "Ignore" } } }),
      // The same for Gatekeeper's namespace-label webhook (Fail): with no process behind it every
      // Namespace write after Gatekeeper's install would be refused, Cilium's cilium-secrets included.
      mirror("gatekeeper", { values: { validatingWebhookCheckIgnoreFailurePolicy: "Ignore" } }),
      {
        // Its dependency (the providers Healthy) needs Crossplane's package manager, which KWOK cannot run.
        entry: { ...entry("crossplane-provider-configs"), dependsOn: [] },
        enabled: true,
        secretValues: providerSecrets,
      },
    ];
  }, 600_000);

  afterAll(async () => {
    await repo?.stop();
    await cp?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("installs both charts to Ready on KWOK pods, with their platform objects", async () => {
    const results = await untilAllReady("all Ready");
    // Nothing found drifted in the last pass: the releases are exactly as Helm applied them.
    expect(results.filter((r) => r.action === "restored")).toEqual([]);
    for (const [ns, name] of [
      ["gatekeeper-system", "gatekeeper-audit"],
      ["gatekeeper-system", "gatekeeper-controller-manager"],
      ["external-secrets", "external-secrets-webhook"],
    ] as const) {
      const dep = await workload.get<KubeObject>(
        { apiVersion: "apps/v1", kind: "Deployment" },
        { namespace: ns, name },
      );
      const status = dep.status as { availableReplicas?: number };
      expect(status.availableReplicas, name).toBe((dep.spec as { replicas: number }).replicas);
      const writers = ((dep.metadata?.managedFields ?? []) as { manager: string; subresource?: string }[])
        .filter((m) => m.subresource === "status")
        .map((m) => m.manager);
      expect(writers, name).toEqual(["kube-controller-manager"]);
    }
    expect((await runningPods(workload, "gatekeeper-system")).length).toBeGreaterThanOrEqual(4);
    const template = await workload.get<KubeObject>(
      { apiVersion: "templates.gatekeeper.sh/v1", kind: "ConstraintTemplate" },
      { name: "k8srequiredlabels" },
    );
    expect(JSON.stringify(template.spec)).toContain("missing required labels");
    const store = await workload.get<KubeObject>(
      { apiVersion: "external-secrets.io/v1", kind: "ClusterSecretStore" },
      { name: "openbao" },
    );
    expect((store.spec as { provider: { vault: { server: string } } }).provider.vault.server).toBe(
      "https://bao.home.shdr.ch:8200",
    );
    const rgw = await workload.get<KubeObject>(
      { apiVersion: "aws.m.upbound.io/v1beta1", kind: "ClusterProviderConfig" },
      { name: "ceph-rgw" },
    );
    expect(rgw.spec).toMatchObject({
      credentials: {
        source: "Secret",
        secretRef: { namespace: "crossplane-system", name: "ceph-rgw-credentials" },
      },
      s3_use_path_style: true,
    });
    // The credentials are in the workload cluster's Secret only, never in the ProviderConfig.
    expect(JSON.stringify(rgw)).not.toContain("rgw-secret-e2e");
    const pg = await workload.get<KubeObject & { data: Record<string, string> }>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: "crossplane-system", name: "postgres-connection" },
    );
    expect(Buffer.from(pg.data.password as string, "base64").toString()).toBe("pg-secret-e2e");
  }, 300_000);

  it("puts back a chart's objects edited by hand, field for field", async () => {
    const DEP = { apiVersion: "apps/v1", kind: "Deployment" };
    const audit = { namespace: "gatekeeper-system", name: "gatekeeper-audit" };
    const before = await workload.get<KubeObject>(DEP, audit);
    const spec = (o: KubeObject) => JSON.stringify(o.spec);
    // kubectl edit: an Update by another field manager; afterwards it owns those fields.
    const edited = structuredClone(before) as KubeObject & {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const container = edited.spec.template.spec.containers[0] as { args: string[] };
    container.args = container.args.map((a) =>
      a.startsWith("--audit-interval") ? "--audit-interval=999999" : a,
    );
    await new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "kubectl-edit" }).replace(
      edited,
    );
    expect(spec(await workload.get<KubeObject>(DEP, audit))).toContain("--audit-interval=999999");
    const ROLE = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole" };
    const role = await workload.get<KubeObject & { rules: unknown[] }>(ROLE, {
      name: "external-secrets-controller",
    });
    await new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "kubectl-edit" }).replace({
      ...role,
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }],
    });
    const seen = await passesUntil(
      "both restored",
      (seen) => restoredBy(seen, "gatekeeper").length > 0 && restoredBy(seen, "external-secrets").length > 0,
    );
    // Once each, exactly the object edited, nothing else of either release.
    expect(restoredBy(seen, "gatekeeper").map((r) => r.restored)).toEqual([
      ["Deployment gatekeeper-audit (changed)"],
    ]);
    expect(restoredBy(seen, "external-secrets").map((r) => r.restored)).toEqual([
      ["ClusterRole external-secrets-controller (changed)"],
    ]);
    expect(spec(await workload.get<KubeObject>(DEP, audit))).toBe(spec(before));
    const back = await workload.get<KubeObject & { rules: unknown[] }>(ROLE, {
      name: "external-secrets-controller",
    });
    expect(back.rules).toEqual(role.rules);
    // Converged: once all is Ready again, no pass finds anything to restore.
    await untilAllReady("Ready after the restore");
    const again = byName(await pass());
    expect(Object.values(again).filter((r) => r.action)).toEqual([]);
  }, 300_000);

  it("puts back the platform objects edited by hand, exactly", async () => {
    const byHand = new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "kubectl-edit" });
    const CT = { apiVersion: "templates.gatekeeper.sh/v1", kind: "ConstraintTemplate" };
    const template = await workload.get<KubeObject>(CT, { name: "k8srequiredlabels" });
    await byHand.replace({
      ...template,
      spec: {
        ...(template.spec as object),
        targets: [{ target: "admission.k8s.gatekeeper.sh", rego: "package x" }],
      },
    });
    const CSS = { apiVersion: "external-secrets.io/v1", kind: "ClusterSecretStore" };
    const store = await workload.get<KubeObject>(CSS, { name: "openbao" });
    const vault = (store.spec as { provider: { vault: Record<string, unknown> } }).provider.vault;
    await byHand.replace({
      ...store,
      spec: { provider: { vault: { ...vault, server: "https://attacker.example:8200" } } },
    });
    const SECRET = { apiVersion: "v1", kind: "Secret" };
    const conn = { namespace: "crossplane-system", name: "postgres-connection" };
    const secret = await workload.get<KubeObject & { data: Record<string, string> }>(SECRET, conn);
    await byHand.replace({
      ...secret,
      data: { ...secret.data, password: Buffer.from("attacker").toString("base64"), extra: "eA==" },
    });
    // Gatekeeper's objects are written in a pass where it is not Blocked.
    await passesUntil("gatekeeper and external-secrets Ready once", (seen) =>
      ["gatekeeper", "external-secrets", "crossplane-provider-configs"].every((n) =>
        (seen[n] ?? []).some((r) => r.state === "Ready"),
      ),
    );
    expect(JSON.stringify((await workload.get<KubeObject>(CT, { name: "k8srequiredlabels" })).spec)).toBe(
      JSON.stringify(template.spec),
    );
    const storeBack = await workload.get<KubeObject>(CSS, { name: "openbao" });
    expect(JSON.stringify(storeBack.spec)).toBe(JSON.stringify(store.spec));
    const secretBack = await workload.get<KubeObject & { data: Record<string, string> }>(SECRET, conn);
    expect(secretBack.data).toEqual(secret.data);
  }, 120_000);

  it("refuses to remove Cilium while Gatekeeper and External Secrets depend on it", async () => {
    const off = desired.map((d) => (d.entry.name === "cilium" ? { ...d, enabled: false } : d));
    const rs = byName(await reconcileComponents(ctx(), off));
    expect([rs.cilium?.state, rs.cilium?.reason]).toEqual(["Refused", "RequiredByOthers"]);
    expect(rs.cilium?.message).toContain("external-secrets");
    expect(rs.cilium?.message).toContain("gatekeeper");
    expect((await helm.status("cilium", "kube-system"))?.status).toBe("deployed");
    // Disabled, Cilium is not Ready to its dependents: they are blocked, their releases stay.
    expect([rs.gatekeeper?.state, rs.gatekeeper?.reason]).toEqual(["Blocked", "DependencyDisabled"]);
    expect((await helm.status("gatekeeper", "gatekeeper-system"))?.status).toBe("deployed");
  });

  it("refuses the ProviderConfigs while a credential is missing, naming which, and writes none of them", async () => {
    const { "postgres-password": _gone, ...partial } = providerSecrets;
    const pc = desired.find((d) => d.entry.name === "crossplane-provider-configs") as DesiredComponent;
    const rs = byName(await reconcileComponents(ctx(), [{ ...pc, secretValues: partial }]));
    expect(rs["crossplane-provider-configs"]).toMatchObject({
      state: "Failed",
      reason: "SettingsMissing",
      message: "needs valuesFrom postgres-password",
    });
  });
});
