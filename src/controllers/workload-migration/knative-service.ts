// KnativeService targets: a serving.knative.dev/v1 Service built from `template` (one container) or
// `manifest` (the user's complete ServiceSpec, kept as written). Nothing of it is public before cutover:
// the Service carries networking.knative.dev/visibility=cluster-local (Knative publishes it on the
// cluster-local gateway only) and no DomainMapping exists. Cutover drops the label and maps the hostname
// with a DomainMapping. "At zero" is, for this kind, "not there": a new Knative revision scales to its
// initial scale (1 unless the cluster sets allow-zero-initial-scale) before it turns Ready, and a changed
// template is a new revision, so neither a held target nor a rolled-back one can be kept at zero pods by
// annotations; the Service is not created while held for a data sync, and deleted on rollback (Knative's
// Configuration, Route, Revisions and their pods go with it by owner reference).
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import { KindNotServedError, type KubeObject, type OwnerReference } from "../../runtime/index.ts";
import { labelsFor } from "./names.ts";
import type { MigrationRun } from "./step.ts";
import { SYNC_OWNER_ANNOTATION } from "./sync-jobs.ts";
import type { Target } from "./workloads.ts";

export const KNATIVE_SERVICE = { apiVersion: "serving.knative.dev/v1", kind: "Service" } as const;
export const DOMAIN_MAPPING = { apiVersion: "serving.knative.dev/v1beta1", kind: "DomainMapping" } as const;
/** Knative's label for a Service published on the cluster-local gateway only. */
export const VISIBILITY_LABEL = "networking.knative.dev/visibility";
export const CLUSTER_LOCAL = "cluster-local";
/** The migration (uid) that made a Knative Service or DomainMapping; only such an object is changed or deleted. */
export const OWNER_ANNOTATION = SYNC_OWNER_ANNOTATION;

export const isKnative = (t: Target): boolean => t.kind === "KnativeService";

type Template = NonNullable<Target["template"]>;
type Obj = KubeObject & { spec?: Record<string, unknown> };

export interface TargetState {
  name: string;
  ready: boolean;
  message?: string;
}

/** Made by this migration: its uid in our annotation (labels alone can be copied by anyone). */
export function isOurs(o: KubeObject, wm: WorkloadMigration): boolean {
  return Boolean(wm.metadata.uid) && o.metadata?.annotations?.[OWNER_ANNOTATION] === wm.metadata.uid;
}

function container(t: Target, tpl: Template): Record<string, unknown> {
  return {
    name: t.name,
    image: tpl.image,
    ...(tpl.command ? { command: tpl.command } : {}),
    ...(tpl.args ? { args: tpl.args } : {}),
    // Knative accepts one port, named http1/h2c or unnamed; it routes requests to it.
    ...(tpl.port ? { ports: [{ containerPort: tpl.port }] } : {}),
    ...(tpl.env.length
      ? {
          env: tpl.env.map((e) =>
            e.secretKeyRef
              ? { name: e.name, valueFrom: { secretKeyRef: e.secretKeyRef } }
              : { name: e.name, value: e.value ?? "" },
          ),
        }
      : {}),
    ...(tpl.resources ? { resources: tpl.resources } : {}),
  };
}

/**
 * The Knative Service of a target. `published`: after cutover, without the cluster-local label (a
 * manifest whose own labels ask for cluster-local stays private; its DomainMapping still serves it).
 * The revision template gets our labels too, so its pods are found as the migration's.
 */
export function knativeService(
  wm: WorkloadMigration,
  t: Target,
  published: boolean,
  owner: OwnerReference[],
): KubeObject {
  const ours = labelsFor(wm.metadata.name, t.name);
  const m = t.manifest;
  let spec: Record<string, unknown>;
  if (m) {
    spec = structuredClone(m.spec) as Record<string, unknown>;
    const template = (spec.template ?? {}) as { metadata?: { labels?: Record<string, string> } };
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...ours } };
    spec.template = template;
  } else {
    spec = {
      template: { metadata: { labels: ours }, spec: { containers: [container(t, t.template!)] } },
    };
  }
  return {
    ...KNATIVE_SERVICE,
    metadata: {
      name: t.name,
      namespace: wm.metadata.namespace,
      labels: { ...m?.labels, ...ours, ...(published ? {} : { [VISIBILITY_LABEL]: CLUSTER_LOCAL }) },
      annotations: { ...m?.annotations, [OWNER_ANNOTATION]: wm.metadata.uid ?? "" },
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec,
  };
}

/** The hostname the Knative way: a DomainMapping named after it, pointing at the target's Service. */
export function domainMapping(
  wm: WorkloadMigration,
  t: Target & { hostname: string },
  owner: OwnerReference[],
): KubeObject {
  return {
    ...DOMAIN_MAPPING,
    metadata: {
      name: t.hostname,
      namespace: wm.metadata.namespace,
      labels: labelsFor(wm.metadata.name, t.name),
      annotations: { [OWNER_ANNOTATION]: wm.metadata.uid ?? "" },
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec: {
      ref: { ...KNATIVE_SERVICE, name: t.name, namespace: wm.metadata.namespace },
    },
  } as KubeObject;
}

const withHostname = (t: Target): t is Target & { hostname: string } => t.hostname !== undefined;

/** What the deploy step's server-side dry run sends for a target: its Service and its DomainMapping. */
export function knativeObjects(run: MigrationRun, t: Target, owner: OwnerReference[]): KubeObject[] {
  return [
    knativeService(run.wm, t, Boolean(run.fields.cutoverTime), owner),
    ...(withHostname(t) ? [domainMapping(run.wm, t, owner)] : []),
  ];
}

/** Why the target cluster cannot take Knative targets, or undefined when it serves both kinds. */
export async function knativeNotServed(run: MigrationRun): Promise<string | undefined> {
  if (!run.wm.spec.targets.some(isKnative)) return undefined;
  for (const gvk of [KNATIVE_SERVICE, DOMAIN_MAPPING])
    try {
      await run.target.resourceInfo(gvk);
    } catch (err) {
      // Only discovery's own answer says Knative is absent; an unreachable or failing API server is an
      // error (a rollback must not take it for "nothing of ours to withdraw").
      if (!(err instanceof KindNotServedError)) throw err;
      return `the target cluster does not serve ${gvk.kind} ${gvk.apiVersion} (Knative Serving is not installed there)`;
    }
  return undefined;
}

interface KnativeStatus {
  observedGeneration?: number;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

/** Knative's own verdict: Ready True at the current generation; otherwise what Knative says. */
export function knativeReadiness(live: KubeObject | undefined): { ready: boolean; message?: string } {
  if (!live) return { ready: false, message: "not created yet" };
  const s = (live.status ?? {}) as KnativeStatus;
  const generation = live.metadata?.generation ?? 0;
  if ((s.observedGeneration ?? 0) < generation)
    return { ready: false, message: `Knative has not observed generation ${generation} yet` };
  const ready = s.conditions?.find((c) => c.type === "Ready");
  if (!ready) return { ready: false, message: "Knative reports no Ready condition yet" };
  if (ready.status !== "True")
    return {
      ready: false,
      message: `Ready=${ready.status}${ready.reason ? ` ${ready.reason}` : ""}${ready.message ? `: ${ready.message}` : ""}`,
    };
  return { ready: true };
}

/**
 * DomainMappings this migration did not make that would serve the target: named after its hostname, or
 * referring to its name in the namespace (the Knative Service, its Route and its Kubernetes Service all
 * carry it). Knative serves a private Service through a DomainMapping too, so one of these exposes the
 * target before cutover; they are never deleted (not ours), they hold the migration.
 */
async function foreignMappings(run: MigrationRun, t: Target): Promise<string[]> {
  const namespace = run.wm.metadata.namespace;
  const list = await run.target.list<Obj>(DOMAIN_MAPPING, { namespace });
  return list.items
    .filter((dm) => !isOurs(dm, run.wm))
    .filter((dm) => {
      const ref = (dm.spec?.ref ?? {}) as { name?: string; namespace?: string };
      return (
        dm.metadata?.name === t.hostname ||
        (ref.name === t.name && (ref.namespace ?? namespace) === namespace)
      );
    })
    .map((dm) => dm.metadata!.name!);
}

async function liveService(run: MigrationRun, t: Target): Promise<Obj | undefined> {
  return run.target.getOrUndefined<Obj>(KNATIVE_SERVICE, {
    namespace: run.wm.metadata.namespace,
    name: t.name,
  });
}

async function deleteIfOurs(
  run: MigrationRun,
  gvk: typeof KNATIVE_SERVICE | typeof DOMAIN_MAPPING,
  name: string,
) {
  const key = { namespace: run.wm.metadata.namespace, name };
  const live = await run.target.getOrUndefined<KubeObject>(gvk, key);
  if (!live || !isOurs(live, run.wm)) return false;
  // That very object (uid): one recreated by someone else in between is left alone.
  await run.target.delete(gvk, key, { preconditions: { uid: live.metadata!.uid! }, ignoreNotFound: true });
  return true;
}

/**
 * Deploy step for one Knative target: held for a data sync it does not exist (ours is deleted); else
 * applied (cluster-local until cutover, so a label removed by hand comes back here) and judged by
 * Knative's Ready condition, and, before cutover, by the absence of DomainMappings not ours.
 */
export async function deployKnative(
  run: MigrationRun,
  t: Target,
  held: boolean,
  owner: OwnerReference[],
): Promise<TargetState> {
  const live = await liveService(run, t);
  if (live && !isOurs(live, run.wm))
    return {
      name: t.name,
      ready: false,
      message: `a Knative Service named ${t.name} exists and was not made by this migration (no ${OWNER_ANNOTATION} of ours): it is left alone; delete or rename it`,
    };
  if (held) {
    if (live) await deleteIfOurs(run, KNATIVE_SERVICE, t.name);
    return {
      name: t.name,
      ready: false,
      message:
        "not created until the final data sync (a new Knative revision starts a pod at its initial scale)",
    };
  }
  const applied = await run.target.apply(knativeService(run.wm, t, Boolean(run.fields.cutoverTime), owner));
  const r = knativeReadiness(applied);
  if (!r.ready) return { name: t.name, ready: false, ...(r.message ? { message: r.message } : {}) };
  if (!run.fields.cutoverTime) {
    const foreign = await foreignMappings(run, t);
    if (foreign.length)
      return {
        name: t.name,
        ready: false,
        message: `DomainMapping(s) ${foreign.join(", ")} not made by this migration would serve it before cutover: left alone; delete them to go on`,
      };
  }
  return { name: t.name, ready: true };
}

/**
 * Why cutover cannot publish: a DomainMapping of a target's hostname that this migration did not make
 * (never taken over). Undefined when every hostname is free or ours.
 */
export async function knativeHostnameTaken(run: MigrationRun): Promise<string | undefined> {
  const namespace = run.wm.metadata.namespace;
  for (const t of run.wm.spec.targets.filter(isKnative).filter(withHostname)) {
    const dm = await run.target.getOrUndefined<KubeObject>(DOMAIN_MAPPING, { namespace, name: t.hostname });
    if (dm && !isOurs(dm, run.wm))
      return `DomainMapping ${t.hostname} exists and was not made by this migration: it is left alone and ${t.name} is not published; delete it to go on`;
  }
  return undefined;
}

/** Cutover for every Knative target: public (label dropped) and, with a hostname, its DomainMapping. */
export async function publishKnative(run: MigrationRun, owner: OwnerReference[]): Promise<string[]> {
  const targets = run.wm.spec.targets.filter(isKnative);
  for (const t of targets) {
    await run.target.apply(knativeService(run.wm, t, true, owner));
    if (withHostname(t)) await run.target.apply(domainMapping(run.wm, t, owner));
  }
  return targets.filter(withHostname).map((t) => t.hostname);
}

/**
 * Rollback for every Knative target: our DomainMapping deleted, then our Service (with its revisions
 * and pods); anything of those names not made by this migration is left.
 */
export async function withdrawKnative(run: MigrationRun): Promise<void> {
  const targets = run.wm.spec.targets.filter(isKnative);
  // A cluster without Knative's kinds holds nothing of ours to withdraw.
  if (!targets.length || (await knativeNotServed(run))) return;
  for (const t of targets) {
    if (withHostname(t)) await deleteIfOurs(run, DOMAIN_MAPPING, t.hostname);
    await deleteIfOurs(run, KNATIVE_SERVICE, t.name);
  }
}

/** What the rollback message says about Knative targets (empty without any). */
export function knativeRollbackNote(wm: WorkloadMigration): string {
  const names = wm.spec.targets.filter(isKnative).map((t) => t.name);
  return names.length
    ? ` Knative Service(s) ${names.join(", ")} deleted with their DomainMappings, revisions and pods (Knative has no zero-pod state to keep them in).`
    : "";
}
