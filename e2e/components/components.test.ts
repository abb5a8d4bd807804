// The components installer against a second real control plane as the workload cluster: real upstream
// charts (Cilium with the Talos values, cert-manager, Crossplane) pulled from a chart repository on
// loopback, releases by the pinned Helm v4 binary, readiness from the objects' own status.
//
// The workload cluster is local mode's (workload.ts): kube-scheduler, every kube-controller-manager
// controller, and KWOK as the kubelet of two Nodes that stay NotReady until a Cilium agent pod runs on
// them. The charts' pods are scheduled and run there, and Deployment/DaemonSet status comes from the real
// controllers. Only what a running container would do to the API (the Cilium agent's and Crossplane
// init's CRDs, cilium-operator accepting its GatewayClass) is done by workload.ts, once that pod runs.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CATALOG,
  type CatalogEntry,
  type ChartSource,
  type PlatformSettings,
} from "../../src/components/catalog.ts";
import { CLUSTER_LABEL, Helm, OWNER_LABEL } from "../../src/components/helm.ts";
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
import {
  applyCrdFile,
  helmBinary,
  type KwokWorkload,
  nodeReadiness,
  runningPods,
  startKwokWorkload,
} from "./workload.ts";

const CHARTS = "/work/shared/reference/charts";
const haveCharts = existsSync(join(CHARTS, "cilium-1.19.6"));
const SMALL_APP = fileURLToPath(new URL("./charts/small-app", import.meta.url));
const HOOK_APP = fileURLToPath(new URL("./charts/hook-app", import.meta.url));

const platform: PlatformSettings = {
  domain: "home.shdr.ch",
  kubePrismPort: 7445,
  loadBalancerRange: { start: "10.0.3.200", stop: "10.0.3.220" },
};

describe.skipIf(!haveCharts)(`components installer (real charts from ${CHARTS})`, () => {
  let cp: KwokWorkload;
  let repo: ChartRepo;
  let workload: KubeClient;
  let helm: Helm;
  let helmPath: string;
  let stateDir: string;
  const seen: string[] = [];
  let stopObserver: () => Promise<void>;

  const entry = (name: string) => {
    const e = CATALOG.find((c) => c.name === name);
    if (!e) throw new Error(name);
    return e;
  };
  let desired: DesiredComponent[];
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
    // One replica in this suite: nobody to be fenced from (controller.test.ts tests a refused fence).
    fence: async () => {},
  });
  const pass = () => reconcileComponents(ctx(), desired);
  const byName = (rs: ComponentResult[]) => Object.fromEntries(rs.map((r) => [r.name, r]));
  async function untilAllReady(what: string, timeoutMs = 240_000): Promise<ComponentResult[]> {
    let last: ComponentResult[] = [];
    return waitFor(
      `${what} (last: ${JSON.stringify(last.filter((r) => r.state !== "Ready").map((r) => [r.name, r.state, r.message]))})`,
      async () => {
        last = await pass();
        return last.every((r) => r.state === "Ready" || r.state === "Disabled") ? last : undefined;
      },
      timeoutMs,
      500,
    );
  }

  beforeAll(async () => {
    helmPath = await helmBinary();
    cp = await startKwokWorkload("components");
    workload = new KubeClient(cp.cluster.controlPlane.kubeConfig(), {
      fieldManager: COMPONENTS_FIELD_MANAGER,
    });
    stateDir = await mkdtemp(join(tmpdir(), "homelab-helm-state-"));
    helm = new Helm({ helmPath, stateDir, timeoutMs: 180_000 }, cp.kubeconfigYaml);
    repo = await startChartRepo(
      helmPath,
      [
        { dir: join(CHARTS, "cilium-1.19.6") },
        { dir: join(CHARTS, "cert-manager-v1.21.1"), version: "v1.21.1" },
        { dir: join(CHARTS, "crossplane-2.3.4"), version: "2.3.4" },
        { dir: SMALL_APP },
        { dir: HOOK_APP },
      ],
      {
        "gateway-api/v1.6.1/standard-install.yaml": await manifestOf(
          WORKLOAD_CRDS_DIR,
          "gateway.networking.k8s.io_",
        ),
      },
    );
    // The order releases (and the Gateway API CRDs) appeared, polled independently of the installer.
    let observing = true;
    const observer = (async () => {
      while (observing) {
        const secrets = await workload
          .list<KubeObject>({ apiVersion: "v1", kind: "Secret" }, { labelSelector: "owner=helm" })
          .catch(() => ({ items: [] as KubeObject[] }));
        for (const s of secrets.items) {
          const name = s.metadata?.labels?.name as string;
          if (!seen.includes(name)) seen.push(name);
        }
        const gw = await workload
          .getOrUndefined(
            { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
            { name: "gateways.gateway.networking.k8s.io" },
          )
          .catch(() => undefined);
        if (gw && !seen.includes("gateway-api")) seen.push("gateway-api");
        const nodes = await nodeReadiness(workload).catch(() => ({}));
        if (
          Object.keys(nodes).length === cp.nodes.length &&
          Object.values(nodes).every((r) => r === "True") &&
          !seen.includes("nodes-ready")
        )
          seen.push("nodes-ready");
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    stopObserver = async () => {
      observing = false;
      await observer;
    };
    const mirror = (name: string, extra: Partial<DesiredComponent> = {}): DesiredComponent => ({
      entry: entry(name),
      enabled: true,
      ...(entry(name).source.kind === "chart" || name === "gateway-api"
        ? { repository: name === "gateway-api" ? `${repo.url}/gateway-api` : repo.url }
        : {}),
      ...extra,
    });
    desired = [
      mirror("gateway-api"),
      mirror("cilium"),
      mirror("main-gateway"),
      mirror("hubble-ui-route"),
      // With the chart's defaults: its post-install startupapicheck Job runs (KWOK completes its pod).
      mirror("cert-manager"),
      mirror("crossplane"),
    ];
  }, 600_000);

  afterAll(async () => {
    await stopObserver?.();
    await repo?.stop();
    await cp?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("installs from nothing to all Ready, in dependency order, with the real charts accepted", async () => {
    // A Talos cluster with `cni: none`: every Node is NotReady until Cilium runs on it.
    expect(Object.values(await nodeReadiness(workload))).toEqual(cp.nodes.map(() => "False"));
    const results = await untilAllReady("all components Ready");
    expect(results.map((r) => r.state)).toEqual(results.map(() => "Ready"));
    // Dependencies appear first: gateway-api before cilium, cilium before everything that needs pods.
    const at = (n: string) => seen.indexOf(n);
    expect(at("gateway-api")).toBeGreaterThanOrEqual(0);
    expect(at("gateway-api")).toBeLessThan(at("cilium"));
    for (const later of ["cert-manager", "crossplane"]) expect(at("cilium")).toBeLessThan(at(later));
    // The Nodes turned Ready after the Cilium release, once its agent pods ran on them.
    expect(at("cilium")).toBeLessThan(at("nodes-ready"));
    expect(Object.values(await nodeReadiness(workload))).toEqual(cp.nodes.map(() => "True"));
    // Readiness came from the real DaemonSet controller counting pods KWOK runs on both Nodes.
    const ciliumStatus = (
      await workload.get<KubeObject>(
        { apiVersion: "apps/v1", kind: "DaemonSet" },
        { namespace: "kube-system", name: "cilium" },
      )
    ).status as { desiredNumberScheduled: number; numberAvailable: number };
    expect([ciliumStatus.desiredNumberScheduled, ciliumStatus.numberAvailable]).toEqual([2, 2]);
    const webhook = await workload.get<KubeObject>(
      { apiVersion: "apps/v1", kind: "Deployment" },
      { namespace: "cert-manager", name: "cert-manager-webhook" },
    );
    const managers = ((webhook.metadata?.managedFields ?? []) as { manager: string; subresource?: string }[])
      .filter((m) => m.subresource === "status")
      .map((m) => m.manager);
    expect(managers).toEqual(["kube-controller-manager"]);
    const running = await runningPods(workload, "cert-manager");
    expect(running.map((p) => p.metadata?.name)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^cert-manager-webhook-/)]),
    );
    // The real Cilium chart with the Talos values: accepted, and the values are what the API holds.
    const ds = await workload.get<KubeObject>(
      { apiVersion: "apps/v1", kind: "DaemonSet" },
      { namespace: "kube-system", name: "cilium" },
    );
    type Container = { name: string; env: unknown[]; securityContext: { capabilities: { add: string[] } } };
    const podSpec = (ds.spec as { template: { spec: { containers: Container[] } } }).template.spec;
    const agent = podSpec.containers.find((c) => c.name === "cilium-agent") as Container;
    expect(agent.securityContext.capabilities.add).not.toContain("SYS_MODULE");
    expect(agent.env).toEqual(
      expect.arrayContaining([
        { name: "KUBERNETES_SERVICE_HOST", value: "localhost" },
        { name: "KUBERNETES_SERVICE_PORT", value: "7445" },
      ]),
    );
    // Gateway API CRDs were there first, so the chart rendered the cilium GatewayClass.
    expect(
      await workload.getOrUndefined(
        { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
        { name: "cilium" },
      ),
    ).toBeDefined();
    // Platform objects by SSA under our field manager.
    const pool = await workload.get<KubeObject>(
      { apiVersion: "cilium.io/v2", kind: "CiliumLoadBalancerIPPool" },
      { name: "vip-pool" },
    );
    expect(((pool.metadata?.managedFields ?? []) as { manager: string }[]).map((m) => m.manager)).toContain(
      COMPONENTS_FIELD_MANAGER,
    );
    const gw = await workload.get<KubeObject>(
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway" },
      { namespace: "gateway", name: "main-gateway" },
    );
    expect((gw.spec as { listeners: { hostname: string }[] }).listeners[0]?.hostname).toBe(
      "*.apps.home.shdr.ch",
    );
    // Releases are labelled ours.
    expect((await helm.status("cilium", "kube-system"))?.labels[OWNER_LABEL]).toBe("homelab-operator");
    // The charts came from the loopback repository.
    expect(repo.requests).toContain("index.yaml");
    expect(repo.requests.some((p) => p.startsWith("cilium-1.19.6"))).toBe(true);
  });

  it("renders Hubble TLS the same way twice (no new certificates per upgrade)", async () => {
    const before = await helm.manifest("cilium", "kube-system");
    const release = await helm.status("cilium", "kube-system");
    // Our labels only: Helm refuses its own system labels (name, owner, status, ...) as user labels.
    const ours = Object.fromEntries(Object.entries(release?.labels ?? {}).filter(([k]) => k.includes("/")));
    const source = { ...(entry("cilium").source as ChartSource), repository: repo.url };
    await helm.upgradeInstall({
      release: "cilium",
      namespace: "kube-system",
      source,
      values: entry("cilium").values(platform),
      labels: ours,
    });
    expect((await helm.status("cilium", "kube-system"))?.revision).toBe((release?.revision ?? 0) + 1);
    expect(await helm.manifest("cilium", "kube-system")).toBe(before);
    // cronJob: certgen creates the certificates in the cluster; the chart carries no key material.
    expect(before).not.toMatch(/tls\.key:/);
    expect(before).toContain("kind: CronJob");
  });

  it("upgrades a component when its values change", async () => {
    const before = await helm.status("crossplane", "crossplane-system");
    desired = desired.map((d) => (d.entry.name === "crossplane" ? { ...d, values: { replicas: 2 } } : d));
    const results = byName(await pass());
    expect(results.crossplane?.action).toBe("upgraded");
    const after = await helm.status("crossplane", "crossplane-system");
    expect(after?.revision).toBe((before?.revision ?? 0) + 1);
    const dep = await workload.get<KubeObject>(
      { apiVersion: "apps/v1", kind: "Deployment" },
      { namespace: "crossplane-system", name: "crossplane" },
    );
    expect((dep.spec as { replicas: number }).replicas).toBe(2);
    // Nothing else was touched by that pass.
    expect(
      Object.values(results)
        .filter((r) => r.action)
        .map((r) => r.name),
    ).toEqual(["crossplane"]);
    await untilAllReady("Ready after the upgrade");
  });

  it("refuses a same-named release that is not ours and leaves it alone", async () => {
    const run = (await import("node:util")).promisify((await import("node:child_process")).execFile);
    await run(
      helmPath,
      [
        "install",
        "gatekeeper",
        "small-app",
        "--repo",
        repo.url,
        "--namespace",
        "gatekeeper-system",
        "--create-namespace",
        "--kubeconfig",
        cp.kubeconfigPath,
      ],
      {
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(stateDir, "foreign-cache"),
          HELM_CONFIG_HOME: join(stateDir, "foreign-config"),
        },
      },
    );
    const foreign = {
      ...entry("gatekeeper"),
      source: { ...(entry("gatekeeper").source as ChartSource), repository: repo.url },
    };
    const rs = byName(await reconcileComponents(ctx(), [...desired, { entry: foreign, enabled: true }]));
    expect(rs.gatekeeper?.state).toBe("Refused");
    expect(rs.gatekeeper?.reason).toBe("ForeignRelease");
    const still = await helm.status("gatekeeper", "gatekeeper-system");
    expect([still?.revision, still?.labels[OWNER_LABEL]]).toEqual([1, undefined]);
    // Disabling it does not uninstall someone else's release either.
    const off = byName(await reconcileComponents(ctx(), [...desired, { entry: foreign, enabled: false }]));
    expect(off.gatekeeper?.reason).toBe("NotOurs");
    expect((await helm.status("gatekeeper", "gatekeeper-system"))?.status).toBe("deployed");
  });

  it("restores drift: a deleted Deployment, a hand-edited Gateway, a hand-run helm upgrade", async () => {
    await workload.delete(
      { apiVersion: "apps/v1", kind: "Deployment" },
      { namespace: "cert-manager", name: "cert-manager-webhook" },
    );
    const byHand = new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "kubectl-edit" });
    await byHand.apply(
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { namespace: "gateway", name: "main-gateway" },
        spec: {
          gatewayClassName: "cilium",
          listeners: [{ name: "http", protocol: "HTTP", port: 80, hostname: "*.evil.example" }],
        },
      },
      { force: true },
    );
    const run = (await import("node:util")).promisify((await import("node:child_process")).execFile);
    await run(
      helmPath,
      [
        "upgrade",
        "crossplane",
        "crossplane",
        "--repo",
        repo.url,
        "--version",
        "2.3.4",
        "--namespace",
        "crossplane-system",
        "--reuse-values",
        "--set",
        "replicas=3",
        "--kubeconfig",
        cp.kubeconfigPath,
      ],
      {
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(stateDir, "foreign-cache"),
          HELM_CONFIG_HOME: join(stateDir, "foreign-config"),
        },
      },
    );
    const rs = byName(await pass());
    expect(rs["cert-manager"]?.action).toBe("restored");
    expect(rs.crossplane?.action).toBe("upgraded");
    expect(
      await workload.getOrUndefined(
        { apiVersion: "apps/v1", kind: "Deployment" },
        { namespace: "cert-manager", name: "cert-manager-webhook" },
      ),
    ).toBeDefined();
    const dep = await workload.get<KubeObject>(
      { apiVersion: "apps/v1", kind: "Deployment" },
      { namespace: "crossplane-system", name: "crossplane" },
    );
    expect((dep.spec as { replicas: number }).replicas).toBe(2);
    await untilAllReady("Ready after drift");
    const gw = await workload.get<KubeObject>(
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway" },
      { namespace: "gateway", name: "main-gateway" },
    );
    expect((gw.spec as { listeners: { hostname: string }[] }).listeners[0]?.hostname).toBe(
      "*.apps.home.shdr.ch",
    );
  });

  it("drift is exact content: a listener another field manager added to the Gateway is removed", async () => {
    const GW = { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway" };
    // Its own list entry (listeners are keyed by name), so a force-apply of ours never conflicts with it.
    await new KubeClient(cp.cluster.controlPlane.kubeConfig(), { fieldManager: "intruder" }).apply(
      {
        ...GW,
        metadata: { namespace: "gateway", name: "main-gateway" },
        spec: { listeners: [{ name: "evil", protocol: "HTTP", port: 8080, hostname: "*.evil.example" }] },
      },
      { force: false },
    );
    const listeners = async () =>
      (
        (await workload.get<KubeObject>(GW, { namespace: "gateway", name: "main-gateway" })).spec as {
          listeners: { name: string; hostname?: string }[];
        }
      ).listeners;
    expect((await listeners()).map((l) => l.name)).toEqual(expect.arrayContaining(["http", "evil"]));
    await pass();
    const after = await listeners();
    expect(after.map((l) => l.name)).toEqual(["http"]);
    expect(JSON.stringify(after)).not.toContain("evil.example");
    // Converged: a second pass finds nothing foreign and leaves the object as it is.
    const rv = (await workload.get<KubeObject>(GW, { namespace: "gateway", name: "main-gateway" })).metadata
      ?.resourceVersion;
    await pass();
    expect(
      (await workload.get<KubeObject>(GW, { namespace: "gateway", name: "main-gateway" })).metadata
        ?.resourceVersion,
    ).toBe(rv);
    await untilAllReady("Ready after the foreign listener");
  });

  it("a failing component blocks only what depends on it, and its running release stays", async () => {
    const withBadVersion = desired.map((d) =>
      d.entry.name === "cert-manager" ? { ...d, version: "v9.9.9" } : d,
    );
    const stepIssuer = { entry: entry("step-issuer"), enabled: true, repository: repo.url };
    const rs = byName(await reconcileComponents(ctx(), [...withBadVersion, stepIssuer]));
    expect([rs["cert-manager"]?.state, rs["cert-manager"]?.reason]).toEqual(["Failed", "InstallFailed"]);
    expect(rs["cert-manager"]?.message).toContain("v9.9.9");
    expect([rs["step-issuer"]?.state, rs["step-issuer"]?.reason]).toEqual(["Blocked", "DependencyNotReady"]);
    for (const n of ["gateway-api", "cilium", "main-gateway", "hubble-ui-route", "crossplane"]) {
      expect(rs[n]?.state, n).toBe("Ready");
    }
    expect(await helm.status("step-issuer", "cert-manager")).toBeUndefined();
    const running = await helm.status("cert-manager", "cert-manager");
    expect([running?.status, running?.chartVersion]).toEqual(["deployed", "v1.21.1"]);
  });

  it("disabling a platform-objects component deletes its objects; enabling brings them back", async () => {
    const route = { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" };
    const key = { namespace: "kube-system", name: "hubble-ui" };
    const off = desired.map((d) => (d.entry.name === "hubble-ui-route" ? { ...d, enabled: false } : d));
    const rs = byName(await reconcileComponents(ctx(), off));
    expect([rs["hubble-ui-route"]?.state, rs["hubble-ui-route"]?.action]).toEqual(["Removed", "uninstalled"]);
    expect(await workload.getOrUndefined(route, key)).toBeUndefined();
    // main-gateway is needed by nothing enabled now, but it is enabled itself: it stays.
    expect(rs["main-gateway"]?.state).toBe("Ready");
    await untilAllReady("route back");
    expect(await workload.getOrUndefined(route, key)).toBeDefined();
  });

  it("deletes only the object it checked: one replaced by someone else's between the check and the delete stays", async () => {
    const route = { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" };
    const key = { namespace: "kube-system", name: "hubble-ui" };
    const ours = await workload.get<KubeObject>(route, key);
    const off = desired.map((d) => (d.entry.name === "hubble-ui-route" ? { ...d, enabled: false } : d));
    // The fence runs between the label check (GET) and the DELETE: swap the route for a foreign one there.
    const racing: InstallContext = {
      ...ctx(),
      fence: async (reason) => {
        if (!reason.startsWith("delete hubble-ui-route")) return;
        await workload.delete(route, key);
        await waitFor("old route gone", async () => !(await workload.getOrUndefined(route, key)), 30_000);
        await workload.create({
          ...route,
          metadata: { ...key, labels: ours.metadata?.labels ?? {} },
          spec: { parentRefs: [{ name: "someone-elses", namespace: "gateway" }] },
        });
      },
    };
    await reconcileComponents(racing, off);
    const left = await workload.getOrUndefined<KubeObject>(route, key);
    expect(left).toBeDefined();
    expect(left?.metadata?.uid).not.toBe(ours.metadata?.uid);
    await workload.delete(route, key);
    await untilAllReady("route back after the race");
  });

  it("refuses to remove Crossplane while managed resources exist, removes it once none do", async () => {
    await applyCrdFile(workload, "s3.aws.m.upbound.io_buckets.yaml");
    await waitFor(
      "Bucket CRD served",
      () =>
        workload.resourceInfo({ apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "Bucket" }).then(() => true),
      30_000,
    );
    await workload.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-a" } });
    await workload.create({
      apiVersion: "s3.aws.m.upbound.io/v1beta1",
      kind: "Bucket",
      metadata: { namespace: "tenant-a", name: "photos" },
      spec: { forProvider: { region: "garage" } },
    });
    desired = desired.map((d) => (d.entry.name === "crossplane" ? { ...d, enabled: false } : d));
    const refused = byName(await pass()).crossplane;
    expect(refused?.state).toBe("Refused");
    expect(refused?.reason).toBe("WouldDestroyData");
    expect(refused?.message).toContain("Bucket tenant-a/photos");
    expect((await helm.status("crossplane", "crossplane-system"))?.status).toBe("deployed");
    await workload.delete(
      { apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "Bucket" },
      { namespace: "tenant-a", name: "photos" },
    );
    const removed = byName(await pass()).crossplane;
    expect([removed?.state, removed?.action]).toEqual(["Removed", "uninstalled"]);
    expect(await helm.status("crossplane", "crossplane-system")).toBeUndefined();
  });

  it("recovers a release left pending-install by a helm process killed mid-install", async () => {
    const hookApp: CatalogEntry = {
      name: "hook-app",
      release: "hook-app",
      namespace: "hook-app",
      source: { kind: "chart", repository: repo.url, chart: "hook-app", version: "0.1.0" },
      dependsOn: [],
      values: () => ({}),
      readiness: [],
      platformObjects: () => [],
    };
    const abort = new AbortController();
    const { readFile } = await import("node:fs/promises");
    const dying = new Helm(
      // SIGKILL: a crash gives Helm no chance to record anything (a SIGTERM sometimes lets it mark the
      // release failed, which is not the state under test).
      { helmPath, stateDir, signal: abort.signal, killSignal: "SIGKILL" },
      await readFile(cp.kubeconfigPath, "utf8"),
    );
    // The post-install hook's pod fits no Node, so the Job never completes and helm waits until killed.
    const install = dying
      .upgradeInstall({
        release: "hook-app",
        namespace: "hook-app",
        source: hookApp.source as ChartSource,
        values: { hook: true },
        labels: { [OWNER_LABEL]: "homelab-operator", [CLUSTER_LABEL]: "talos-k8s" },
      })
      .catch((err: unknown) => err);
    await waitFor(
      "hook Job created",
      () =>
        workload.getOrUndefined(
          { apiVersion: "batch/v1", kind: "Job" },
          { namespace: "hook-app", name: "hook-app-post-install" },
        ),
      60_000,
    );
    abort.abort();
    expect(await install).toBeInstanceOf(Error);
    expect((await helm.status("hook-app", "hook-app"))?.status).toBe("pending-install");
    const rs = byName(await reconcileComponents(ctx(), [{ entry: hookApp, enabled: true }]));
    expect([rs["hook-app"]?.state, rs["hook-app"]?.action]).toEqual(["Ready", "installed"]);
    const after = await helm.status("hook-app", "hook-app");
    expect([after?.status, after?.revision]).toEqual(["deployed", 1]);
  });

  it("refuses to remove a component others depend on", async () => {
    desired = desired.map((d) =>
      d.entry.name === "cert-manager" ? d : d.entry.name === "cilium" ? { ...d, enabled: false } : d,
    );
    const rs = byName(await pass());
    expect(rs.cilium?.reason).toBe("RequiredByOthers");
    expect(rs.cilium?.message).toMatch(/main-gateway|cert-manager/);
    expect(rs["cert-manager"]?.state).toBe("Blocked");
    expect((await helm.status("cilium", "kube-system"))?.status).toBe("deployed");
  });
});
