// HelmRelease targets (the seed's GitLab and Synapse): a Helm release named after the target, in the
// migration's namespace of the workload cluster, driven by the components installer's Helm v4 driver.
// The release's record is the state: its labels say whose it is (this migration, by uid) and which
// chart, version and values it was made from (a digest), so a restarted operator decides from Helm's
// own answer whether to install, upgrade or leave it, never from memory. Held (a data sync pending,
// a rollback), the release's Deployments and StatefulSets are scaled to zero through their scale
// subresource; taken up again, back to the replicas the release's manifest gives them.
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { Helm, HelmError, type InstallRequest, OWNER_LABEL, OWNER_VALUE } from "../../components/helm.ts";
import { findHelm } from "../../components/helm-binary.ts";
import { rolloutComplete } from "../../components/readiness.ts";
import { canonicalJson } from "../../components/values.ts";
import { ApiError, type KubeObject, type OwnerReference } from "../../runtime/index.ts";
import { GATEWAY, labelsFor, MIGRATION_LABEL } from "./names.ts";
import { failed, type MigrationRun, type StepOutcome, waiting } from "./step.ts";
import type { Target } from "./workloads.ts";

/** Release label: the uid of the migration that made the release (a migration of the same name made anew differs). */
export const RELEASE_UID_LABEL = "homelab.shdr.ch/migration-uid";
/** Release label: digest of the repository, chart, version and values the release was made from. */
export const RELEASE_DESIRED_LABEL = "homelab.shdr.ch/desired";
/** Helm v4's field manager for the objects of a release it applies server-side. */
const HELM_FIELD_MANAGER = "helm";
/** Kubernetes and Helm read YAML as YAML 1.1 (installer.ts says why that matters). */
const GO_YAML = { version: "1.1" } as const;
/** The workload kinds of a release whose rollout makes it Ready; the first two are the ones scaled. */
const ROLLED_OUT = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const SCALED = new Set(["Deployment", "StatefulSet"]);

/** A namespaced kind read from the API always has its namespace. */
const namespaceOf = (run: MigrationRun) => run.wm.metadata.namespace as string;

export type HelmTarget = Target & { helm: NonNullable<Target["helm"]> };
export const isHelmTarget = (t: Target): t is HelmTarget => t.kind === "HelmRelease" && !!t.helm;

/** The Helm binary and where its state lives; found once by the controller (helm-binary.ts). */
export interface HelmSetup {
  path?: string;
  checked?: string[];
  stateDir?: string;
}

/** What one reconcile drives Helm with: a driver bound to the target cluster, or why there is none. */
export type HelmAccess = { helm: Helm } | { unavailable: string };

export function resolveHelmSetup(setup: HelmSetup | undefined): Required<HelmSetup> {
  // An empty path is a lookup already made that found nothing (the controller resolves once).
  const found = setup?.path !== undefined ? { path: setup.path, checked: setup.checked ?? [] } : findHelm();
  return {
    path: found.path ?? "",
    checked: found.checked,
    stateDir: setup?.stateDir ?? join(tmpdir(), "homelab-operator-helm-migrations"),
  };
}

/**
 * The driver for this reconcile. Helm reaches a cluster only through a kubeconfig: a workload cluster's
 * `<cluster>-kubeconfig` Secret gives one; the management cluster's own (in-cluster) credentials are not
 * handed to Helm by this version.
 */
export function helmAccess(
  setup: Required<HelmSetup>,
  kubeconfig: string | undefined,
  signal: AbortSignal,
): HelmAccess {
  if (!kubeconfig)
    return {
      unavailable:
        "HelmRelease targets need spec.clusterRef: Helm reaches the workload cluster through its kubeconfig Secret (the management cluster is not a Helm target in this version)",
    };
  if (!setup.path)
    return { unavailable: `no Helm binary to install releases with; looked at: ${setup.checked.join("; ")}` };
  return { helm: new Helm({ helmPath: setup.path, stateDir: setup.stateDir, signal }, kubeconfig) };
}

/** Exported for its unit test: the same spec, in any key order, is the same digest. */
export function desiredDigest(t: HelmTarget): string {
  const { repository, chart, version, values } = t.helm;
  const canonical = canonicalJson({ repository, chart, version, values: values ?? {} });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 40);
}

function releaseLabels(run: MigrationRun, t: HelmTarget): Record<string, string> {
  return {
    [OWNER_LABEL]: OWNER_VALUE,
    [MIGRATION_LABEL]: run.wm.metadata.name,
    [RELEASE_UID_LABEL]: run.wm.metadata.uid ?? "",
    [RELEASE_DESIRED_LABEL]: desiredDigest(t),
  };
}

const isOurs = (run: MigrationRun, labels: Record<string, string>) =>
  labels[OWNER_LABEL] === OWNER_VALUE &&
  !!run.wm.metadata.uid &&
  labels[RELEASE_UID_LABEL] === run.wm.metadata.uid;

function request(run: MigrationRun, t: HelmTarget): InstallRequest {
  return {
    release: t.name,
    namespace: namespaceOf(run),
    source: { kind: "chart", repository: t.helm.repository, chart: t.helm.chart, version: t.helm.version },
    values: (t.helm.values ?? {}) as Record<string, unknown>,
    labels: releaseLabels(run, t),
  };
}

function driver(run: MigrationRun): Helm | StepOutcome {
  const access = run.helm;
  if (!access) return waiting("HelmUnavailable", "no Helm driver was set up for this reconcile", 60_000);
  if ("unavailable" in access)
    return run.local
      ? failed("HelmNeedsWorkloadCluster", access.unavailable)
      : waiting("HelmUnavailable", access.unavailable, 60_000);
  return access.helm;
}

/** Whether the release as Helm records it already is the one the spec asks for (nothing to do). */
function upToDate(t: HelmTarget, release: { status: string; labels: Record<string, string> }) {
  return release.status === "deployed" && release.labels[RELEASE_DESIRED_LABEL] === desiredDigest(t);
}

/**
 * Before anything is installed: a release of the target's name that is not this migration's stops the
 * migration (never upgraded, never uninstalled); one that needs installing or upgrading is rendered by
 * Helm and every object sent to the API server as a server-side dry run, forced as Helm's own field
 * manager (exactly the apply Helm will make). A string is a refusal for the deploy step to collect;
 * an outcome ends the step; undefined: nothing to refuse.
 */
export async function checkHelmTarget(
  run: MigrationRun,
  t: HelmTarget,
): Promise<string | StepOutcome | undefined> {
  const helm = driver(run);
  if (!(helm instanceof Helm)) return helm;
  const namespace = namespaceOf(run);
  const release = await helm.status(t.name, namespace);
  if (release && !isOurs(run, release.labels))
    return failed(
      "ReleaseNameTaken",
      `Helm release ${namespace}/${t.name} exists and was not installed by this migration (uid ${run.wm.metadata.uid}); it is left alone: delete it, or rename the target`,
    );
  if (release && upToDate(t, release)) return undefined;
  // A release a killed helm left pending refuses every operation, a dry run too: recovered first.
  if (release?.status.startsWith("pending-")) await recoverPending(run, helm, t, release);
  let manifests: string[];
  try {
    manifests = await helm.render(request(run, t));
  } catch (err) {
    if (!(err instanceof HelmError)) throw err;
    // The repository unreachable is no verdict on the chart: asked again later. Anything else Helm
    // refuses (no such chart or version, a template's fail, a values schema) is the spec's to fix.
    if (/dial tcp|connection refused|i\/o timeout|no such host|TLS handshake timeout|EOF$/.test(err.stderr))
      return waiting("ChartUnreachable", `${t.name}: ${err.message}`, 30_000);
    // An object of the release's name that Helm does not record as this release's is never adopted;
    // removing it fixes this without a spec change, so it is waited on rather than failed.
    if (/invalid ownership metadata/.test(err.stderr))
      return waiting(
        "ObjectNotOurs",
        `${t.name}: ${err.message} (not adopted: delete that object or rename the release)`,
        30_000,
      );
    return `HelmRelease ${t.name}: ${err.message}`;
  }
  const refused: string[] = [];
  for (const obj of objectsOf(manifests)) {
    const why = await dryRun(run, obj, namespace);
    if (why) refused.push(`HelmRelease ${t.name} ${obj.kind} ${obj.metadata?.name}: ${why}`);
  }
  return refused.length ? refused.join("; ") : undefined;
}

function objectsOf(manifests: string[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const m of manifests)
    for (const doc of parseAllDocuments(m, GO_YAML)) {
      const obj = doc.toJS() as KubeObject | null;
      if (obj?.kind && obj.apiVersion && obj.metadata?.name) out.push(obj);
    }
  return out;
}

/** The API server's refusal of one object of the release, or undefined (accepted, or not judgeable). */
async function dryRun(run: MigrationRun, obj: KubeObject, namespace: string): Promise<string | undefined> {
  try {
    const info = await run.target.resourceInfo({ apiVersion: obj.apiVersion!, kind: obj.kind! });
    const metadata = info.namespaced
      ? { ...obj.metadata, namespace: obj.metadata?.namespace ?? namespace }
      : obj.metadata;
    await run.target.apply({ ...obj, metadata } as KubeObject, {
      dryRun: true,
      force: true,
      fieldManager: HELM_FIELD_MANAGER,
    });
    return undefined;
  } catch (err) {
    // 404: a kind the chart brings its own CRD for (not there before the install), or the namespace
    // of a foreign object: nothing to judge before Helm applies it. 409: a conflict, not a refusal.
    if (!(err instanceof ApiError) || err.code >= 500) throw err;
    if (err.code === 404 || err.code === 409) return undefined;
    return err.message;
  }
}

/**
 * Installs or upgrades the release when Helm's record differs from the spec (a release a killed helm
 * left pending is first recovered as the components installer does it), then holds it at zero or
 * gives it its replicas back, and reports its readiness: deployed, and every Deployment, StatefulSet
 * and DaemonSet of its manifest rolled out. checkHelmTarget ran first in the same pass (ownership).
 */
export async function deployHelmTarget(
  run: MigrationRun,
  t: HelmTarget,
  held: boolean,
): Promise<{ ready: boolean; message?: string }> {
  const helm = driver(run) as Helm;
  const namespace = namespaceOf(run);
  let release = await helm.status(t.name, namespace);
  if (release && !isOurs(run, release.labels)) return { ready: false, message: "release not ours" };
  if (release?.status.startsWith("pending-")) {
    await recoverPending(run, helm, t, release);
    release = await helm.status(t.name, namespace);
  }
  // Helm's record says these very values failed (a hook, a timeout): not tried again on every pass,
  // which would rerun the chart's hooks (a database migration Job) in a loop; a spec change retries.
  if (release?.status === "failed" && release.labels[RELEASE_DESIRED_LABEL] === desiredDigest(t))
    return {
      ready: false,
      message: `Helm release ${t.name} revision ${release.revision} failed with these values (see helm history ${t.name} -n ${namespace}); change the target's helm settings to try again`,
    };
  if (!release || !upToDate(t, release)) {
    await run.ctx.fence(`helm upgrade --install ${t.name}`);
    try {
      await helm.upgradeInstall(request(run, t));
    } catch (err) {
      if (!(err instanceof HelmError)) throw err;
      // The release's record (failed or pending) decides the next pass; the reason goes to the target.
      return { ready: false, message: `helm upgrade --install ${t.name}: ${err.message}` };
    }
    run.ctx.recorder.record(run.obj, {
      type: "Normal",
      reason: release ? "HelmReleaseUpgraded" : "HelmReleaseInstalled",
      action: release ? "Upgrade" : "Install",
      note: `Helm release ${namespace}/${t.name}: chart ${t.helm.chart} ${t.helm.version}`,
    });
  }
  const workloads = objectsOf([await helm.manifest(t.name, namespace)]).filter(
    (o) => o.apiVersion === "apps/v1" && ROLLED_OUT.has(o.kind!),
  );
  // Every pass, not once: an upgrade (Helm applies the chart's replicas, forcing conflicts) undoes a
  // hold, and the hold is put back right after it in the same pass.
  await scaleWorkloads(run, workloads, namespace, held ? () => 0 : chartReplicas);
  if (held) return { ready: false, message: "at zero replicas until the final data sync" };
  for (const w of workloads) {
    const live = await run.target.getOrUndefined<KubeObject>(
      { apiVersion: "apps/v1", kind: w.kind! },
      { namespace: w.metadata?.namespace ?? namespace, name: w.metadata!.name! },
    );
    if (!live) return { ready: false, message: `${w.kind} ${w.metadata!.name} does not exist` };
    const r = rolloutComplete(live);
    if (!r.done) return { ready: false, message: `${w.kind} ${w.metadata!.name}: ${r.why}` };
  }
  return { ready: true };
}

/**
 * "another operation is in progress" would refuse every later Helm call on the release (installer.ts,
 * verified with Helm v4.3.1). A first revision left pending-install has nothing to keep: uninstalled
 * (the install follows); anything later goes back one revision. Only ever called on our own release.
 */
async function recoverPending(
  run: MigrationRun,
  helm: Helm,
  t: HelmTarget,
  release: { status: string; revision: number },
): Promise<void> {
  const first = release.status === "pending-install" && release.revision === 1;
  if (first) {
    await run.ctx.fence(`uninstall Helm release ${t.name} left pending-install`);
    await helm.uninstall(t.name, namespaceOf(run));
  } else {
    await run.ctx.fence(`roll back Helm release ${t.name} left ${release.status}`);
    await helm.rollback(t.name, namespaceOf(run));
  }
  run.ctx.recorder.record(run.obj, {
    type: "Warning",
    reason: "HelmReleaseRecovered",
    action: first ? "Uninstall" : "Rollback",
    note: `Helm release ${t.name} was left ${release.status} (revision ${release.revision}) by an interrupted helm: ${first ? "uninstalled to install again" : "rolled back one revision"}`,
  });
}

const chartReplicas = (w: KubeObject) => (w.spec as { replicas?: number } | undefined)?.replicas ?? 1;

/**
 * Sets each Deployment's and StatefulSet's replicas through its scale subresource (the field the
 * HorizontalPodAutoscaler and `kubectl scale` use), only where it differs: Helm's next upgrade takes the
 * field back with the chart's value (it forces conflicts), which is what taking the release up means.
 */
async function scaleWorkloads(
  run: MigrationRun,
  workloads: KubeObject[],
  namespace: string,
  replicas: (w: KubeObject) => number,
): Promise<void> {
  for (const w of workloads) {
    if (!SCALED.has(w.kind!)) continue;
    const gvk = { apiVersion: "apps/v1", kind: w.kind! };
    const key = { namespace: w.metadata?.namespace ?? namespace, name: w.metadata!.name! };
    const live = await run.target.getOrUndefined<KubeObject>(gvk, key);
    if (!live) continue;
    const want = replicas(w);
    if ((live.spec as { replicas?: number }).replicas === want) continue;
    await run.ctx.fence(`scale ${w.kind} ${key.name} to ${want}`);
    await run.target.patch(gvk, key, { spec: { replicas: want } }, "merge", "scale");
  }
}

/**
 * Rollback's part for HelmRelease targets: their routes go and, once deployed (`deployed`: the deploy
 * step listed the targets), this migration's releases (none other) keep their objects with their
 * Deployments and StatefulSets at zero replicas. Nothing is uninstalled: the cluster's volumes keep
 * what the release wrote.
 */
export async function rollBackHelmTargets(run: MigrationRun, deployed: boolean): Promise<void> {
  for (const t of run.wm.spec.targets.filter(isHelmTarget)) {
    if (t.hostname)
      await run.target.delete(
        { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" },
        { namespace: namespaceOf(run), name: t.name },
        { ignoreNotFound: true },
      );
    if (deployed) await holdHelmTarget(run, t);
  }
}

async function holdHelmTarget(run: MigrationRun, t: HelmTarget): Promise<void> {
  const helm = driver(run);
  if (!(helm instanceof Helm)) return;
  const namespace = namespaceOf(run);
  const release = await helm.status(t.name, namespace);
  if (!release || !isOurs(run, release.labels)) return;
  const workloads = objectsOf([await helm.manifest(t.name, namespace)]).filter(
    (o) => o.apiVersion === "apps/v1" && SCALED.has(o.kind!),
  );
  await scaleWorkloads(run, workloads, namespace, () => 0);
}

/** Where a HelmRelease target's hostname goes: the chart's Service named in backend (default: the target's name). */
export function helmBackend(t: HelmTarget): { service: string; port: number } | undefined {
  if (!t.hostname || !t.backend) return undefined;
  return { service: t.backend.service ?? t.name, port: t.backend.port };
}

/** The HTTPRoute of a HelmRelease target: its hostname to the chart's Service, from cutover on. */
export function helmRouteFor(
  run: MigrationRun,
  t: HelmTarget & { hostname: string },
  owner: OwnerReference[],
): KubeObject | undefined {
  const backend = helmBackend(t);
  if (!backend) return undefined;
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: {
      name: t.name,
      namespace: namespaceOf(run),
      labels: labelsFor(run.wm.metadata.name, t.name),
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec: {
      parentRefs: [{ name: GATEWAY.name }],
      hostnames: [t.hostname],
      rules: [{ backendRefs: [{ name: backend.service, port: backend.port }] }],
    },
  };
}

/**
 * Cutover's routes for HelmRelease targets, each only once the chart made the Service it names with
 * that port; otherwise the outcome cutover waits with (a route to nothing would send the hostname's
 * traffic nowhere while the VM still serves it).
 */
export async function helmRoutes(
  run: MigrationRun,
  owner: OwnerReference[],
): Promise<{ routes: KubeObject[]; hostnames: string[]; wait?: StepOutcome }> {
  const routes: KubeObject[] = [];
  const missing: string[] = [];
  for (const t of run.wm.spec.targets) {
    if (!isHelmTarget(t) || !t.hostname) continue;
    const route = helmRouteFor(run, t as HelmTarget & { hostname: string }, owner);
    const backend = helmBackend(t);
    if (!route || !backend) continue;
    const svc = await run.target.getOrUndefined<KubeObject>(
      { apiVersion: "v1", kind: "Service" },
      { namespace: namespaceOf(run), name: backend.service },
    );
    const ports = ((svc?.spec as { ports?: { port: number }[] } | undefined)?.ports ?? []).map((p) => p.port);
    if (!svc) missing.push(`Service ${backend.service} (of HelmRelease ${t.name}) does not exist`);
    else if (!ports.includes(backend.port))
      missing.push(
        `Service ${backend.service} has no port ${backend.port} (it has ${ports.join(", ") || "none"})`,
      );
    else routes.push(route);
  }
  const hostnames = routes.map((r) => (r.spec as { hostnames: string[] }).hostnames[0] as string);
  return missing.length
    ? {
        routes,
        hostnames,
        wait: waiting("BackendMissing", `${missing.join("; ")}: the route waits for it`, 10_000),
      }
    : { routes, hostnames };
}
