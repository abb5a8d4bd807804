// One pass over the catalog for one workload cluster: install/upgrade in dependency order, gate each
// component on its own readiness, keep platform objects applied, refuse what must not be done. Pure of
// the management cluster: the controller resolves Secrets and turns the results into Conditions.
import { parseAllDocuments } from "yaml";
import { deleteExactly, type KubeClient } from "../runtime/client.ts";
import { ApiError, describeError, isConflict, isNotFound } from "../runtime/errors.ts";
import { isFencingError } from "../runtime/fencing.ts";
import type { KubeObject } from "../runtime/object.ts";
import { type CatalogEntry, type ChartSource, isBuiltin, type PlatformSettings } from "./catalog.ts";
import { CLUSTER_LABEL, type Helm, OWNER_LABEL, OWNER_VALUE } from "./helm.ts";
import { blockers, dependents, installOrder } from "./plan.ts";
import { firstUnready } from "./readiness.ts";
import { canonicalJson, mergeValues, setPath } from "./values.ts";

/** Field manager for the platform objects (and the status this controller writes). */
export const COMPONENTS_FIELD_MANAGER = "homelab-operator/components";

export interface DesiredComponent {
  entry: CatalogEntry;
  enabled: boolean;
  /** Overrides the catalog's pin. */
  version?: string;
  /** Overrides the catalog's source (a mirror, or a loopback repository in tests). */
  repository?: string;
  values?: Record<string, unknown>;
  /** Values read from Secrets by the controller, keyed by the catalog's `from` name. Never logged. */
  secretValues?: Record<string, string>;
  /**
   * Set when the controller could not read a Secret this component needs: it stays enabled (so what it
   * depends on is not removed from under it) and only its Helm call is skipped, with this as its result.
   */
  unavailable?: { reason: string; message: string };
}

export type ComponentState =
  | "Ready"
  | "Progressing"
  | "Blocked"
  | "Refused"
  | "Failed"
  | "Removed"
  | "Disabled";

export interface ComponentResult {
  name: string;
  state: ComponentState;
  reason: string;
  message: string;
  version?: string;
  /** What this pass did to the release: for Events. */
  action?: "installed" | "upgraded" | "restored" | "uninstalled";
  /** With action "restored": the objects found deleted or changed by hand. */
  restored?: string[];
}

export interface InstallContext {
  clusterName: string;
  workload: KubeClient;
  helm: Helm;
  platform: PlatformSettings;
  /** Fetches a manifest URL (injected so a proxy/CA can be configured; tests pass plain fetch). */
  fetchText(url: string): Promise<string>;
  /**
   * Called right before every write to the workload cluster (apply, delete, helm install/upgrade/rollback/
   * uninstall): a pass can take minutes of Helm, far longer than one lease check stays valid, and no
   * resourceVersion in the workload cluster fences a deposed leader.
   */
  fence(reason: string): Promise<void>;
}

function sourceOf(d: DesiredComponent): CatalogEntry["source"] {
  const s = d.entry.source;
  return {
    ...s,
    ...(d.version ? { version: d.version } : {}),
    ...(d.repository ? { repository: d.repository } : {}),
  };
}

export function desiredValues(d: DesiredComponent, p: PlatformSettings): Record<string, unknown> {
  let values = mergeValues(d.entry.values(p), d.values ?? {});
  for (const sv of d.entry.secretValues ?? []) {
    const v = d.secretValues?.[sv.from];
    if (v === undefined) throw new MissingSecretValue(sv.from);
    values = setPath(values, sv.valuesPath, v);
  }
  return values;
}

class MissingSecretValue extends Error {
  readonly from: string;
  constructor(from: string) {
    super(`valuesFrom ${from} is required`);
    this.from = from;
  }
}

/** Labels (of a release or an object) that say this operator made it for this very cluster. */
function isOurs(ctx: InstallContext, labels: Record<string, string>): boolean {
  return labels[OWNER_LABEL] === OWNER_VALUE && labels[CLUSTER_LABEL] === ctx.clusterName;
}

/** Refuses removal while something enabled depends on the component. */
function requiredByOthers(entry: CatalogEntry, enabled: CatalogEntry[]): ComponentResult | undefined {
  const needed = dependents(entry.name, enabled);
  if (needed.length === 0) return undefined;
  return {
    name: entry.name,
    state: "Refused",
    reason: "RequiredByOthers",
    message: `not removed: ${needed.join(", ")} depend${needed.length === 1 ? "s" : ""} on it`,
  };
}

function ownedLabels(ctx: InstallContext, component: string): Record<string, string> {
  return {
    [OWNER_LABEL]: OWNER_VALUE,
    [CLUSTER_LABEL]: ctx.clusterName,
    "homelab-operator.dev/component": component,
  };
}

async function applyAll(
  ctx: InstallContext,
  component: string,
  objects: KubeObject[],
): Promise<string | undefined> {
  if (objects.length > 0) await ctx.fence(`apply ${component} platform objects`);
  for (const obj of objects) {
    const labelled: KubeObject = {
      ...obj,
      metadata: { ...obj.metadata, labels: { ...obj.metadata?.labels, ...ownedLabels(ctx, component) } },
    };
    try {
      await applyExactly(ctx.workload, labelled);
    } catch (err) {
      return `${obj.kind} ${obj.metadata?.name}: ${describeError(err)}`;
    }
  }
  return undefined;
}

/** Everything but metadata and status: what "the same object" means for drift. */
function content(obj: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = obj as KubeObject & { status?: unknown };
  return canonicalJson(rest);
}

/**
 * Makes the live object's content exactly `desired`. Force-apply puts back the fields we set, but leaves
 * whatever another field manager added (an extra listener on the shared Gateway survives an SSA); so a
 * dry-run PUT of the desired content (defaulted by the server the same way as the live object) tells
 * whether anything foreign is left, and only then a PUT at the applied resourceVersion replaces it.
 * Labels, annotations and finalizers others set on metadata stay (controllers add those legitimately).
 */
async function applyExactly(client: KubeClient, desired: KubeObject): Promise<void> {
  // Force: these objects are ours; a hand edit of a field we set is drift and is put back.
  const live = await client.apply(desired, { force: true });
  const { managedFields: _mf, ...liveMeta } = live.metadata ?? {};
  const replacement = {
    ...desired,
    metadata: { ...liveMeta, labels: { ...liveMeta.labels, ...desired.metadata?.labels } },
    ...((live as { status?: unknown }).status ? { status: (live as { status?: unknown }).status } : {}),
  } as KubeObject;
  const path = await client.pathFor(
    { apiVersion: desired.apiVersion as string, kind: desired.kind as string },
    {
      ...(live.metadata?.namespace ? { namespace: live.metadata.namespace } : {}),
      name: live.metadata?.name as string,
    },
  );
  const asDesired = await client.request<KubeObject>("PUT", path, {
    body: replacement,
    query: { fieldManager: client.fieldManager, dryRun: "All" },
  });
  if (content(asDesired) !== content(live)) await client.replace(replacement);
}

/**
 * Kubernetes and Helm read YAML as YAML 1.1 (sigs.k8s.io/yaml): `defaultMode: 0400` is the octal 256 there
 * and 400 in YAML 1.2, so a 1.2 reading of Cilium's manifest would see drift in every DaemonSet volume.
 */
const GO_YAML = { version: "1.1" } as const;

/** Helm v4's field manager for the objects of a release it applies server-side. */
const HELM_FIELD_MANAGER = "helm";

/**
 * Objects of a release deleted or changed by hand. Changed: a dry-run server-side apply of the object as
 * the release has it, forced as Helm's own field manager, gives something other than the live object, so
 * a field the chart sets holds another value (kubectl edit, a patch). Fields the chart does not set are
 * not drift: controllers add some legitimately (a webhook's caBundle), and Helm leaves them too.
 */
async function driftedObjects(ctx: InstallContext, manifest: string, namespace: string): Promise<string[]> {
  const drifted: string[] = [];
  for (const doc of parseAllDocuments(manifest, GO_YAML)) {
    const obj = doc.toJS() as KubeObject | null;
    if (!obj?.kind || !obj.apiVersion || !obj.metadata?.name) continue;
    const gvk = { apiVersion: obj.apiVersion, kind: obj.kind };
    let live: KubeObject | undefined;
    let key: { namespace?: string; name: string };
    try {
      const info = await ctx.workload.resourceInfo(gvk);
      key = info.namespaced
        ? { namespace: obj.metadata.namespace ?? namespace, name: obj.metadata.name }
        : { name: obj.metadata.name };
      live = await ctx.workload.getOrUndefined(gvk, key);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      drifted.push(`${obj.kind} ${obj.metadata.name} (its kind is gone)`);
      continue;
    }
    if (!live) {
      drifted.push(`${obj.kind} ${obj.metadata.name} (deleted)`);
      continue;
    }
    let asReleased: KubeObject;
    try {
      asReleased = await ctx.workload.request<KubeObject>("PATCH", await ctx.workload.pathFor(gvk, key), {
        body: {
          ...obj,
          metadata: { ...obj.metadata, ...(key.namespace ? { namespace: key.namespace } : {}) },
        },
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: HELM_FIELD_MANAGER, force: true, dryRun: "All" },
      });
    } catch (err) {
      // A dry run the API server refused (an admission webhook that is down, say) tells nothing about
      // drift, and an upgrade would meet the same refusal: this object is not judged in this pass. No
      // answer at all (an abort, the cluster gone) ends the pass as any other request would.
      if (!(err instanceof ApiError)) throw err;
      continue;
    }
    if (content(asReleased) !== content(live)) drifted.push(`${obj.kind} ${obj.metadata.name} (changed)`);
  }
  return drifted;
}

async function reconcileChart(
  ctx: InstallContext,
  d: DesiredComponent,
  source: ChartSource,
): Promise<ComponentResult | Pick<ComponentResult, "action" | "restored">> {
  const { entry } = d;
  const release = await ctx.helm.status(entry.release, entry.namespace);
  if (release && !isOurs(ctx, release.labels)) {
    return {
      name: entry.name,
      state: "Refused",
      reason: "ForeignRelease",
      message: `Helm release ${entry.namespace}/${entry.release} exists but was not installed by this operator for this cluster; it is left alone (delete it or rename ours to proceed)`,
    };
  }
  let values: Record<string, unknown>;
  try {
    values = desiredValues(d, ctx.platform);
  } catch (err) {
    if (err instanceof MissingSecretValue) {
      return { name: entry.name, state: "Failed", reason: "SecretValueMissing", message: err.message };
    }
    throw err;
  }
  let action: ComponentResult["action"];
  let drifted: string[] = [];
  if (release?.status.startsWith("pending-")) {
    // A helm process that died mid-operation (operator crash, lost leadership) leaves the release locked:
    // every later upgrade fails with "another operation is in progress" (verified with Helm v4.3.1).
    // pending-install of a first revision has nothing to keep: uninstall and install again; a pending
    // upgrade or rollback goes back to the previous revision first.
    if (release.status === "pending-install" && release.revision === 1) {
      await ctx.fence(`uninstall ${entry.name} left pending-install`);
      await ctx.helm.uninstall(entry.release, entry.namespace);
      action = "installed";
    } else {
      await ctx.fence(`roll back ${entry.name}`);
      await ctx.helm.rollback(entry.release, entry.namespace);
      action = "upgraded";
    }
  } else if (!release) action = "installed";
  else if (
    release.status !== "deployed" ||
    release.chartVersion.replace(/^v/, "") !== source.version.replace(/^v/, "")
  ) {
    action = "upgraded";
  } else if (canonicalJson(await ctx.helm.values(entry.release, entry.namespace)) !== canonicalJson(values)) {
    // Changed values in the spec, or `helm upgrade` by hand: both converge to the spec.
    action = "upgraded";
  } else {
    drifted = await driftedObjects(
      ctx,
      await ctx.helm.manifest(entry.release, entry.namespace),
      entry.namespace,
    );
    if (drifted.length > 0) action = "restored";
  }
  if (action) {
    await ctx.fence(`helm upgrade --install ${entry.name}`);
    await ctx.helm.upgradeInstall({
      release: entry.release,
      namespace: entry.namespace,
      source,
      values,
      labels: ownedLabels(ctx, entry.name),
    });
  }
  return action ? { action, ...(drifted.length > 0 ? { restored: drifted } : {}) } : {};
}

async function reconcileManifest(ctx: InstallContext, d: DesiredComponent): Promise<string | undefined> {
  const s = sourceOf(d);
  if (s.kind !== "manifest") return undefined;
  const url = `${s.repository.replace(/\/$/, "")}/${s.version}/${s.file}`;
  const objects = parseAllDocuments(await ctx.fetchText(url), GO_YAML)
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o?.kind);
  return applyAll(ctx, d.entry.name, objects);
}

async function protectedObjects(ctx: InstallContext, category: string): Promise<string[]> {
  const crds = await ctx.workload.list<KubeObject>({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
  });
  const found: string[] = [];
  for (const crd of crds.items) {
    const spec = crd.spec as {
      group: string;
      names: { kind: string; categories?: string[] };
      versions: { name: string; storage: boolean }[];
    };
    if (!spec.names.categories?.includes(category)) continue;
    const version = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]?.name;
    const list = await ctx.workload.list<KubeObject>({
      apiVersion: `${spec.group}/${version}`,
      kind: spec.names.kind,
    });
    for (const o of list.items) {
      found.push(
        `${spec.names.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name}`,
      );
    }
  }
  return found;
}

async function reconcileDisabled(
  ctx: InstallContext,
  d: DesiredComponent,
  enabled: CatalogEntry[],
): Promise<ComponentResult> {
  const { entry } = d;
  const hasRelease = !isBuiltin(entry) && entry.source.kind === "chart";
  const release = hasRelease ? await ctx.helm.status(entry.release, entry.namespace) : undefined;
  if (release && !isOurs(ctx, release.labels)) {
    return {
      name: entry.name,
      state: "Disabled",
      reason: "NotOurs",
      message: "disabled; a release of that name exists but is not ours, so it is left alone",
    };
  }
  if (isBuiltin(entry)) return removeBuiltin(ctx, entry, enabled);
  // The Gateway API CRDs (a manifest) are kept: deleting a CRD deletes every Gateway and route with it.
  if (!release)
    return { name: entry.name, state: "Disabled", reason: "Disabled", message: "disabled and not installed" };
  const required = requiredByOthers(entry, enabled);
  if (required) return required;
  if (entry.protects) {
    const objects = await protectedObjects(ctx, entry.protects.crdCategory);
    if (objects.length > 0) {
      const shown = objects.slice(0, 5).join(", ");
      return {
        name: entry.name,
        state: "Refused",
        reason: "WouldDestroyData",
        message: `not removed: ${entry.protects.description}; ${objects.length} managed resource(s) exist (${shown}${objects.length > 5 ? ", …" : ""})`,
      };
    }
  }
  await ctx.fence(`uninstall ${entry.name}`);
  await ctx.helm.uninstall(entry.release, entry.namespace);
  return {
    name: entry.name,
    state: "Removed",
    reason: "Uninstalled",
    message: "disabled: release uninstalled",
    action: "uninstalled",
  };
}

/** A builtin component is only its platform objects: delete those that carry our labels. */
async function removeBuiltin(
  ctx: InstallContext,
  entry: CatalogEntry,
  enabled: CatalogEntry[],
): Promise<ComponentResult> {
  const required = requiredByOthers(entry, enabled);
  if (required) return required;
  let removed = 0;
  // Namespaces last (reverse order): deleting one first would take foreign objects in it along.
  // Only kinds and names are used here: no Secret has to be readable to remove what was written.
  for (const obj of [...entry.platformObjects(ctx.platform, {})].reverse()) {
    if (obj.kind === "Namespace") continue;
    const gvk = { apiVersion: obj.apiVersion as string, kind: obj.kind as string };
    const key = {
      ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
      name: obj.metadata?.name as string,
    };
    const live = await ctx.workload.getOrUndefined(gvk, key).catch(() => undefined);
    const labels = live?.metadata?.labels ?? {};
    if (!live || !isOurs(ctx, labels)) continue;
    await ctx.fence(`delete ${entry.name} ${obj.kind} ${key.name}`);
    // The very object whose labels were just checked: a same-named object made since (someone else's),
    // or a change since the GET, makes the server refuse instead of deleting what was not checked.
    try {
      await deleteExactly(ctx.workload, live);
    } catch (err) {
      if (!isConflict(err)) throw err;
      return {
        name: entry.name,
        state: "Progressing",
        reason: "ChangedSinceChecked",
        message: `not removed: ${obj.kind} ${key.name} changed since it was checked; looked at again next pass`,
      };
    }
    removed++;
  }
  return removed > 0
    ? {
        name: entry.name,
        state: "Removed",
        reason: "Deleted",
        message: `disabled: ${removed} object(s) deleted`,
        action: "uninstalled",
      }
    : { name: entry.name, state: "Disabled", reason: "Disabled", message: "disabled and not installed" };
}

export async function reconcileComponents(
  ctx: InstallContext,
  desired: DesiredComponent[],
): Promise<ComponentResult[]> {
  const byName = new Map(desired.map((d) => [d.entry.name, d]));
  const enabledEntries = desired.filter((d) => d.enabled).map((d) => d.entry);
  const ready = new Set<string>();
  const results: ComponentResult[] = [];
  // Disabled ones first in reverse order, so a dependent goes before what it depends on.
  for (const entry of installOrder(desired.map((d) => d.entry)).reverse()) {
    const d = byName.get(entry.name);
    if (d && !d.enabled) results.push(await reconcileDisabled(ctx, d, enabledEntries));
  }
  for (const entry of installOrder(enabledEntries)) {
    const d = byName.get(entry.name) as DesiredComponent;
    results.push(await reconcileOne(ctx, d, ready, byName));
  }
  return results;
}

async function reconcileOne(
  ctx: InstallContext,
  d: DesiredComponent,
  ready: Set<string>,
  byName: Map<string, DesiredComponent>,
): Promise<ComponentResult> {
  const { entry } = d;
  if (d.unavailable) return { name: entry.name, state: "Failed", ...d.unavailable };
  const waiting = blockers(entry, ready);
  if (waiting.length > 0) {
    const disabled = waiting.filter((w) => !byName.get(w)?.enabled);
    return {
      name: entry.name,
      state: "Blocked",
      reason: disabled.length > 0 ? "DependencyDisabled" : "DependencyNotReady",
      message:
        disabled.length > 0
          ? `needs ${disabled.join(", ")}, which is not enabled`
          : `waiting for ${waiting.join(", ")} to be Ready`,
    };
  }
  const source = sourceOf(d);
  let action: ComponentResult["action"];
  let restored: string[] | undefined;
  try {
    if (source.kind === "chart") {
      if (!source.version) {
        return {
          name: entry.name,
          state: "Failed",
          reason: "VersionRequired",
          message: "this component has no pinned default version: set its version in spec.components",
        };
      }
      const r = await reconcileChart(ctx, d, source);
      if ("state" in r) return r;
      action = r.action;
      restored = r.restored;
    } else if (!isBuiltin(entry)) {
      const err = await reconcileManifest(ctx, d);
      if (err)
        return {
          name: entry.name,
          state: "Failed",
          reason: "ApplyFailed",
          message: err,
          version: source.version,
        };
    }
  } catch (err) {
    // A refused fence (or an abort) ends the whole pass: nothing after it may touch the workload cluster.
    if (isFencingError(err)) throw err;
    return {
      name: entry.name,
      state: "Failed",
      reason: "InstallFailed",
      message: describeError(err),
      version: source.version,
    };
  }
  const version = isBuiltin(entry) ? undefined : source.version;
  const secrets = d.secretValues ?? {};
  const extra = {
    ...(version ? { version } : {}),
    ...(action ? { action } : {}),
    ...(restored ? { restored } : {}),
  };
  // A chart's platform objects go after its readiness (their CRDs and webhooks come with it); a builtin
  // component is only its objects, and its readiness is theirs (KnativeServing Ready).
  const apply = async (): Promise<ComponentResult | undefined> => {
    const applyError = await applyAll(ctx, entry.name, entry.platformObjects(ctx.platform, secrets));
    return applyError
      ? {
          name: entry.name,
          state: "Progressing",
          reason: "PlatformObjectsPending",
          message: applyError,
          ...extra,
        }
      : undefined;
  };
  if (isBuiltin(entry)) {
    const missing = entry.missing?.(ctx.platform, secrets);
    if (missing) return { name: entry.name, state: "Failed", reason: "SettingsMissing", message: missing };
    const pending = await apply();
    if (pending) return pending;
  }
  const unready = await firstUnready(ctx.workload, entry.readiness);
  if (unready)
    return { name: entry.name, state: "Progressing", reason: "NotReady", message: unready, ...extra };
  if (!isBuiltin(entry)) {
    const pending = await apply();
    if (pending) return pending;
  }
  ready.add(entry.name);
  return {
    name: entry.name,
    state: "Ready",
    reason: "Ready",
    message: version ? `version ${version} ready` : "ready",
    ...extra,
  };
}
