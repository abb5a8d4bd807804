// The platform-components controller end to end: a HomelabCluster in the shared (management) cluster,
// its `<cluster>-kubeconfig` Secret pointing at a second real control plane (the workload cluster),
// the provisioning controller's status written by this test under that controller's field manager.

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Helm } from "../../src/components/helm.ts";
import { findHelm, type HelmLookup } from "../../src/components/helm-binary.ts";
import { COMPONENTS_FIELD_MANAGER } from "../../src/components/installer.ts";
import {
  platformComponentsController,
  reconcileCluster,
} from "../../src/controllers/platform-components/controller.ts";
import { PAUSED_ANNOTATION } from "../../src/controllers/shared/paused.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { type ChartRepo, manifestOf, startChartRepo } from "../../src/local/chart-mirror.ts";
import { WORKLOAD_CRDS_DIR } from "../../src/local/container-stand-ins.ts";
import {
  createLogger,
  FencingError,
  KubeClient,
  type KubeObject,
  Manager,
  type ReconcileContext,
} from "../../src/runtime/index.ts";
import { StatusWriter } from "../../src/runtime/status.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { helmBinary, type KwokWorkload, startKwokWorkload } from "./workload.ts";

const CHARTS = "/work/shared/reference/charts";
const NS = "homelab-components-e2e";
const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };
type Cond = { type: string; status: string; reason: string; message: string };

describe.skipIf(!existsSync(join(CHARTS, "cilium-1.19.6")))("platform-components controller", () => {
  let cp: KwokWorkload;
  let repo: ChartRepo;
  let manager: Manager;
  let stateDir: string;
  let helmPath: string;
  let failingChart: string;
  const mgmt = new KubeClient(adminKubeConfig(), { fieldManager: "homelab-operator" });
  const name = "components-e2e";

  beforeAll(async () => {
    helmPath = await helmBinary();
    // One Node is enough here: Cilium's DaemonSet, Deployments and the Node turning Ready are real.
    cp = await startKwokWorkload("components-ctl", 1);
    // A gitlab-agent chart that fails while rendering and quotes its token in the error, as a chart's
    // `required`/`fail` or a schema error can: Helm's stderr then carries the secret.
    failingChart = await mkdtemp(join(tmpdir(), "homelab-failing-chart-"));
    await mkdir(join(failingChart, "templates"));
    await writeFile(
      join(failingChart, "Chart.yaml"),
      "apiVersion: v2\nname: gitlab-agent\nversion: 2.18.9\n",
    );
    await writeFile(
      join(failingChart, "templates", "fail.yaml"),
      '{{ fail (printf "token %s (%s) rejected" .Values.config.token (b64enc .Values.config.token)) }}\n',
    );
    repo = await startChartRepo(helmPath, [{ dir: join(CHARTS, "cilium-1.19.6") }, { dir: failingChart }], {
      "gateway-api/v1.6.1/standard-install.yaml": await manifestOf(
        WORKLOAD_CRDS_DIR,
        "gateway.networking.k8s.io_",
      ),
    });
    await installCRDs(adminKubeConfig());
    await mgmt.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    await mgmt.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { namespace: NS, name: `${name}-kubeconfig` },
      data: { value: Buffer.from(await readFile(cp.kubeconfigPath, "utf8")).toString("base64") },
    });
    stateDir = await mkdtemp(join(tmpdir(), "homelab-helm-ctl-"));
    manager = new Manager({
      kubeConfig: adminKubeConfig(),
      logger: createLogger({ level: "warn" }),
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      platformComponentsController({
        helmPath,
        helmStateDir: stateDir,
        operatorNamespace: NS,
        resyncMs: 5_000,
      }),
    );
    await manager.start();
  }, 300_000);

  afterAll(async () => {
    await manager?.stop();
    await mgmt.delete(HC, { name }, { ignoreNotFound: true }).catch(() => {});
    await repo?.stop();
    await cp?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    if (failingChart) await rm(failingChart, { recursive: true, force: true });
  });

  const conditions = async () =>
    ((await mgmt.get<KubeObject>(HC, { name })).status as { conditions?: Cond[] } | undefined)?.conditions ??
    [];
  const cond = async (type: string) => (await conditions()).find((c) => c.type === type);

  it("waits for the kubeconfig, installs, reports ComponentsReady, and keeps the provisioning controller's conditions", async () => {
    const example = parse(
      await readFile(new URL("../../examples/homelab-cluster-k8s.yaml", import.meta.url), "utf8"),
    ) as KubeObject & { spec: Record<string, unknown> };
    await mgmt.apply({
      ...example,
      metadata: { name },
      spec: {
        ...example.spec,
        components: [
          { name: "gateway-api", repository: `${repo.url}/gateway-api` },
          { name: "cilium", repository: repo.url },
        ],
      },
    });
    const waiting = await waitFor(
      "ComponentsReady=False WaitingForKubeconfig",
      async () => {
        const c = await cond("ComponentsReady");
        return c?.reason === "WaitingForKubeconfig" ? c : undefined;
      },
      60_000,
    );
    expect(waiting.status).toBe("False");
    // Nothing was installed before the gate opened.
    expect(
      await new KubeClient(cp.cluster.controlPlane.kubeConfig()).getOrUndefined(
        { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
        { name: "gateways.gateway.networking.k8s.io" },
      ),
    ).toBeUndefined();

    // The provisioning controller's write, under its own field manager.
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await mgmt.applyStatus({
      ...HC,
      metadata: { name },
      status: {
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "Provisioning",
            message: "nodes booting",
            lastTransitionTime: now,
          },
          {
            type: "KubeconfigReady",
            status: "True",
            reason: "KubeconfigStored",
            message: "stored",
            lastTransitionTime: now,
          },
        ],
        secretRefs: { kubeconfig: { name: `${name}-kubeconfig`, namespace: NS } },
      },
    });
    const ready = await waitFor(
      "ComponentsReady=True",
      async () => {
        const c = await cond("ComponentsReady");
        return c?.status === "True" ? c : undefined;
      },
      300_000,
      1_000,
    );
    expect(ready.reason).toBe("AllReady");
    const all = await conditions();
    expect(all.find((c) => c.type === "CiliumReady")?.status).toBe("True");
    expect(all.find((c) => c.type === "GatewayApiReady")?.status).toBe("True");
    // h-cluster's conditions are still there, untouched.
    expect(all.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "Provisioning" });
    expect(all.find((c) => c.type === "KubeconfigReady")?.status).toBe("True");
    const obj = await mgmt.get<KubeObject>(HC, { name });
    const managers = ((obj.metadata?.managedFields ?? []) as { manager: string; subresource?: string }[])
      .filter((m) => m.subresource === "status")
      .map((m) => m.manager);
    expect(managers).toEqual(expect.arrayContaining(["homelab-operator", COMPONENTS_FIELD_MANAGER]));
    const components = (obj.status as { components?: { name: string; version?: string; ready: boolean }[] })
      .components;
    expect(components).toEqual(expect.arrayContaining([{ name: "cilium", version: "1.19.6", ready: true }]));

    // The provisioning controller writes again (its full apply): our entries survive it.
    await mgmt.applyStatus({
      ...HC,
      metadata: { name },
      status: {
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "Ready",
            message: "all nodes ready",
            lastTransitionTime: now,
          },
          {
            type: "KubeconfigReady",
            status: "True",
            reason: "KubeconfigStored",
            message: "stored",
            lastTransitionTime: now,
          },
        ],
        secretRefs: { kubeconfig: { name: `${name}-kubeconfig`, namespace: NS } },
      },
    });
    expect((await cond("ComponentsReady"))?.status).toBe("True");
    expect((await cond("Ready"))?.status).toBe("True");
  });

  it("reads valuesFrom Secrets at install time and never shows them, in status or Events, even when the install fails", async () => {
    const token = "glagent-tok-7d1f0c9e-not-for-status";
    const tokenRef = { name: "gitlab-agent-token", key: "token" };
    const withAgent = (extra: Record<string, unknown>) =>
      mgmt.patch(
        HC,
        { name },
        {
          spec: {
            components: [
              { name: "gateway-api", repository: `${repo.url}/gateway-api` },
              { name: "cilium", repository: repo.url },
              {
                name: "gitlab-agent",
                repository: repo.url,
                valuesFrom: [{ name: "token", secretKeyRef: tokenRef }],
                ...extra,
              },
            ],
          },
        },
        "merge",
      );
    // The Secret does not exist yet: the Condition names it, nothing else.
    await withAgent({ version: "2.18.0" });
    const missing = await waitFor(
      "GitlabAgentReady SecretUnavailable",
      async () => {
        const c = await cond("GitlabAgentReady");
        return c?.reason === "SecretUnavailable" ? c : undefined;
      },
      120_000,
      500,
    );
    expect(missing.message).toContain("gitlab-agent-token");
    await mgmt.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { namespace: NS, name: tokenRef.name },
      stringData: { token },
    });
    // A spec change (new version) reconciles again: the value is read and Helm runs, and fails, because the
    // loopback repository has no gitlab-agent chart.
    await withAgent({ version: "2.18.1" });
    const failed = await waitFor(
      "GitlabAgentReady InstallFailed",
      async () => {
        const c = await cond("GitlabAgentReady");
        return c?.reason === "InstallFailed" ? c : undefined;
      },
      120_000,
      500,
    );
    expect(failed.status).toBe("False");
    expect(failed.message).toMatch(/gitlab-agent/);
    // Now a chart that renders the token into its error message: Helm's stderr quotes it, the status must not.
    await withAgent({ version: "2.18.9" });
    const rendered = await waitFor(
      "GitlabAgentReady InstallFailed from rendering",
      async () => {
        const c = await cond("GitlabAgentReady");
        return c?.reason === "InstallFailed" && c.message.includes("rejected") ? c : undefined;
      },
      120_000,
      500,
    );
    expect(rendered.message).toContain("[redacted]");
    const everything = JSON.stringify(await mgmt.get(HC, { name }));
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(Buffer.from(token).toString("base64"));
    const events = await mgmt.list<KubeObject>({ apiVersion: "events.k8s.io/v1", kind: "Event" });
    expect(JSON.stringify(events.items)).not.toContain(token);
    expect(JSON.stringify(events.items)).not.toContain(Buffer.from(token).toString("base64"));
    // cilium is unaffected by the failing agent: it depends on nothing that failed.
    expect((await cond("CiliumReady"))?.status).toBe("True");
  }, 360_000);

  it("leaves a paused cluster alone: a spec change installs nothing until the annotation is removed", async () => {
    const helm = new Helm({ helmPath, stateDir }, await readFile(cp.kubeconfigPath, "utf8"));
    const before = await helm.status("cilium", "kube-system");
    expect(before?.status).toBe("deployed");
    const annotate = (value: string | null) =>
      mgmt.patch(HC, { name }, { metadata: { annotations: { [PAUSED_ANNOTATION]: value } } }, "merge");
    await annotate("true");
    await ciliumOnly({ e2eMarker: "paused" });
    // Several resync periods (5 s here) and the spec-change event itself: none may reach Helm.
    await new Promise((r) => setTimeout(r, 20_000));
    expect((await helm.status("cilium", "kube-system"))?.revision).toBe(before?.revision);
    // The annotation's removal brings the reconcile back, and with it the pending change.
    await annotate(null);
    const after = await waitFor(
      "cilium upgraded after unpausing",
      async () => {
        const s = await helm.status("cilium", "kube-system");
        return s && s.revision > (before?.revision ?? 0) && s.status === "deployed" ? s : undefined;
      },
      120_000,
      1_000,
    );
    expect(await helm.values("cilium", "kube-system")).toMatchObject({ e2eMarker: "paused" });
    expect(after.revision).toBeGreaterThan(before?.revision ?? 0);
  });

  /**
   * One reconcile of `name` run by hand (the manager is stopped first, so nothing else reconciles it), with
   * the signal and fence a test controls: what a lost leadership looks like from inside a pass.
   */
  async function passBy(opts: {
    abort: AbortController;
    fence: (reason: string) => Promise<void>;
    fetchText?: (url: string) => Promise<string>;
    helm?: HelmLookup;
  }): Promise<unknown> {
    const hc = await mgmt.get<KubeObject>(HC, { name });
    const ctx = {
      controller: "platform-components",
      reconcileID: "by-hand",
      logger: createLogger({ level: "warn" }),
      signal: opts.abort.signal,
      client: mgmt.withSignal(opts.abort.signal),
      fence: opts.fence,
      recorder: { record: async () => {} },
      object: () => hc,
    } as unknown as ReconcileContext;
    return reconcileCluster(
      ctx,
      {
        helmPath: opts.helm ? opts.helm.path : helmPath,
        ...(opts.helm ? { helmChecked: opts.helm.checked } : {}),
        helmStateDir: stateDir,
        operatorNamespace: NS,
        ...(opts.fetchText ? { fetchText: opts.fetchText } : {}),
      },
      new StatusWriter(mgmt, { fieldManager: COMPONENTS_FIELD_MANAGER }),
    ).catch((err: unknown) => err);
  }
  const workloadAdmin = () =>
    new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "kubectl-edit" });
  const CRD = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };
  const GATEWAYS_CRD = { name: "gateways.gateway.networking.k8s.io" };
  const ciliumOnly = (values: Record<string, unknown>) =>
    mgmt.patch(
      HC,
      { name },
      {
        spec: {
          components: [
            { name: "gateway-api", repository: `${repo.url}/gateway-api` },
            { name: "cilium", repository: repo.url, values },
          ],
        },
      },
      "merge",
    );

  it("after the reconcile is aborted mid-pass, no further write reaches the workload cluster", async () => {
    await manager.stop();
    // A label of ours removed by hand: any apply of the Gateway API CRDs by this pass puts it back.
    await workloadAdmin().patch(
      CRD,
      GATEWAYS_CRD,
      { metadata: { labels: { "homelab-operator.dev/component": null } } },
      "merge",
    );
    const abort = new AbortController();
    const err = await passBy({
      abort,
      fence: async () => {},
      // Leadership is lost while the manifest downloads: the apply that follows must not go out.
      fetchText: async (url) => {
        const res = await fetch(url);
        const text = await res.text();
        abort.abort(new Error("leadership lost"));
        return text;
      },
    });
    // The status write after it is refused too (the management client is bound to the same signal).
    expect(err).toBeInstanceOf(Error);
    const crd = await workloadAdmin().get<KubeObject>(CRD, GATEWAYS_CRD);
    expect(crd.metadata?.labels?.["homelab-operator.dev/component"]).toBeUndefined();
  });

  it("fences before each Helm write, not once per pass: a lease lost after the first check stops the upgrade", async () => {
    const helm = new Helm({ helmPath, stateDir }, await readFile(cp.kubeconfigPath, "utf8"));
    const before = await helm.status("cilium", "kube-system");
    expect(before?.status).toBe("deployed");
    await ciliumOnly({ e2eMarker: "fenced" });
    const abort = new AbortController();
    const reasons: string[] = [];
    const err = await passBy({
      abort,
      // The first check passes; by the next one the lease belongs to someone else.
      fence: async (reason) => {
        reasons.push(reason);
        if (reasons.length > 1) {
          const refused = new FencingError(`fence before ${reason} refused: lease held by other`);
          abort.abort(refused);
          throw refused;
        }
      },
    });
    expect(err).toBeInstanceOf(FencingError);
    expect(reasons.length).toBeGreaterThan(1);
    const after = await helm.status("cilium", "kube-system");
    expect(after?.revision).toBe(before?.revision);
  });

  it("without a Helm binary says where it looked, and touches nothing in the workload cluster", async () => {
    // The manager was stopped by the abort test above: only this pass reconciles.
    const helm = new Helm({ helmPath, stateDir }, await readFile(cp.kubeconfigPath, "utf8"));
    const before = await helm.status("cilium", "kube-system");
    await ciliumOnly({ e2eMarker: "no-helm" });
    // What findHelm reports on a machine with none: HOMELAB_OPERATOR_HELM unset, no cache, none on PATH.
    const lookup = findHelm({ XDG_CACHE_HOME: join(stateDir, "no-cache"), PATH: join(stateDir, "no-bin") });
    expect(lookup.path).toBeUndefined();
    await passBy({ abort: new AbortController(), fence: async () => {}, helm: lookup });
    const c = await cond("ComponentsReady");
    expect(c).toMatchObject({ status: "False", reason: "HelmNotFound" });
    expect(c?.message).toContain("HOMELAB_OPERATOR_HELM (unset)");
    expect(c?.message).toContain("helm on PATH (absent)");
    expect((await helm.status("cilium", "kube-system"))?.revision).toBe(before?.revision);
  });

  it("says what was tried when a source cannot be reached, and blocks only what depends on it", async () => {
    await mgmt.patch(
      HC,
      { name },
      {
        spec: {
          components: [
            // .invalid never resolves (RFC 2606): what an offline local mode meets for every upstream.
            { name: "gateway-api", repository: "https://gateway-api.invalid/releases" },
            { name: "cilium", repository: "https://charts.invalid/" },
          ],
        },
      },
      "merge",
    );
    await passBy({ abort: new AbortController(), fence: async () => {} });
    const gw = await cond("GatewayApiReady");
    expect(gw).toMatchObject({ status: "False", reason: "InstallFailed" });
    // The URL and the resolver's answer (EAI_AGAIN where DNS itself is unreachable), not "fetch failed".
    expect(gw?.message).toMatch(
      /^GET https:\/\/gateway-api\.invalid\/releases\/v1\.6\.1\/standard-install\.yaml: getaddrinfo (ENOTFOUND|EAI_AGAIN) gateway-api\.invalid$/,
    );
    expect(await cond("CiliumReady")).toMatchObject({ status: "False", reason: "DependencyNotReady" });
    expect((await cond("ComponentsReady"))?.status).toBe("False");
  });

  it("keeps a dependency installed under an enabled dependent whose Secret is missing", async () => {
    const helm = new Helm({ helmPath, stateDir }, await readFile(cp.kubeconfigPath, "utf8"));
    expect((await helm.status("cilium", "kube-system"))?.status).toBe("deployed");
    await mgmt.patch(
      HC,
      { name },
      {
        spec: {
          components: [
            { name: "gateway-api", repository: `${repo.url}/gateway-api` },
            // Disabled, but gitlab-agent (enabled) depends on it: it must stay.
            { name: "cilium", enabled: false, repository: repo.url },
            {
              name: "gitlab-agent",
              repository: repo.url,
              version: "2.18.9",
              valuesFrom: [{ name: "token", secretKeyRef: { name: "no-such-secret", key: "t" } }],
            },
          ],
        },
      },
      "merge",
    );
    const result = await passBy({ abort: new AbortController(), fence: async () => {} });
    expect(result).not.toBeInstanceOf(Error);
    expect(await helm.status("cilium", "kube-system")).toMatchObject({ status: "deployed" });
    expect(await cond("CiliumReady")).toMatchObject({ status: "False", reason: "RequiredByOthers" });
    const agent = await cond("GitlabAgentReady");
    expect(agent).toMatchObject({ status: "False", reason: "SecretUnavailable" });
    expect(agent?.message).toContain("no-such-secret");
    expect(JSON.stringify(await conditions())).not.toContain("DependencyDisabled");
  });
});
