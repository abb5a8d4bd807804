// The Kubernetes objects a target becomes: pure functions of the spec, so a reconcile after a crash
// builds exactly the same objects again. Deployment, StatefulSet and CronJob are built here from a
// template, or from a complete manifest (manifest-workloads.ts); KnativeService and HelmRelease are
// refused by the deploy step (not built by this version).
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { KubeObject, OwnerReference } from "../../runtime/index.ts";
import {
  backendProblem,
  type ManifestTarget,
  manifestIsStateful,
  manifestObjects,
} from "./manifest-workloads.ts";
import { GATEWAY, labelsFor } from "./names.ts";

export type Target = WorkloadMigration["spec"]["targets"][number];
type Template = NonNullable<Target["template"]>;

export const BUILT_KINDS = new Set<Target["kind"]>(["Deployment", "StatefulSet", "CronJob"]);

function container(t: Target, tpl: Template) {
  return {
    name: t.name,
    image: tpl.image,
    ...(tpl.command ? { command: tpl.command } : {}),
    ...(tpl.args ? { args: tpl.args } : {}),
    ...(tpl.port ? { ports: [{ name: "main", containerPort: tpl.port }] } : {}),
    env: tpl.env.map((e) =>
      e.secretKeyRef
        ? { name: e.name, valueFrom: { secretKeyRef: e.secretKeyRef } }
        : { name: e.name, value: e.value ?? "" },
    ),
    ...(tpl.resources ? { resources: tpl.resources } : {}),
    volumeMounts: tpl.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })),
  };
}

function claimSpec(v: Template["volumes"][number]) {
  return {
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: v.size } },
    ...(v.storageClassName ? { storageClassName: v.storageClassName } : {}),
  };
}

/** The workload (and, for a serving kind, its Service) of one target, scaled to `replicas`. */
export function workloadObjects(
  wm: WorkloadMigration,
  t: Target,
  replicas: number,
  owner: OwnerReference[],
): KubeObject[] {
  if (!BUILT_KINDS.has(t.kind)) return [];
  if (hasManifest(t)) return manifestObjects(wm, t, replicas, owner);
  const tpl = t.template;
  if (!tpl) return [];
  const namespace = wm.metadata.namespace;
  const labels = labelsFor(wm.metadata.name, t.name);
  const meta = { name: t.name, namespace, labels, ...(owner.length ? { ownerReferences: owner } : {}) };
  const podSpec = (withClaims: boolean) => ({
    containers: [container(t, tpl)],
    volumes: withClaims
      ? []
      : tpl.volumes.map((v) => ({
          name: v.name,
          persistentVolumeClaim: { claimName: `${t.name}-${v.name}` },
        })),
  });
  const out: KubeObject[] = [];
  if (t.kind === "CronJob") {
    out.push({
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: meta,
      spec: {
        schedule: tpl.schedule,
        suspend: replicas === 0,
        jobTemplate: {
          spec: {
            template: { metadata: { labels }, spec: { ...podSpec(false), restartPolicy: "OnFailure" } },
          },
        },
      },
    });
  } else if (t.kind === "StatefulSet") {
    // Replica 0's claims, made ahead so a data sync can fill them before the first pod exists; the
    // StatefulSet controller uses a claim of the name it would give.
    for (const v of tpl.volumes)
      out.push({
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { ...meta, name: `${v.name}-${t.name}-0` },
        spec: claimSpec(v),
      });
    out.push({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: meta,
      spec: {
        replicas,
        serviceName: t.name,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: podSpec(true) },
        volumeClaimTemplates: tpl.volumes.map((v) => ({ metadata: { name: v.name }, spec: claimSpec(v) })),
      },
    });
  } else {
    for (const v of tpl.volumes)
      out.push({
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { ...meta, name: `${t.name}-${v.name}` },
        spec: claimSpec(v),
      });
    out.push({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta,
      spec: {
        replicas,
        // Recreate: a volume is ReadWriteOnce and the VM's data must never have two writers.
        strategy: { type: "Recreate" },
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: podSpec(false) },
      },
    });
  }
  if (tpl.port && t.kind !== "CronJob")
    out.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: meta,
      spec: { selector: labels, ports: [{ name: "main", port: tpl.port, targetPort: tpl.port }] },
    });
  return out;
}

function hasManifest(t: Target): t is ManifestTarget {
  return t.manifest !== undefined;
}

/** What the deploy step must refuse before any dry run, as "<target>: <why>" (none: undefined). */
export function targetProblem(t: Target): string | undefined {
  const p = hasManifest(t) && BUILT_KINDS.has(t.kind) ? backendProblem(t) : undefined;
  return p && `${t.name}: ${p}`;
}

/** The Service and port a target's hostname routes to: template.port, or backend (its Service by default). */
function backendOf(t: Target): { service: string; port: number } | undefined {
  if (t.template?.port !== undefined) return { service: t.name, port: t.template.port };
  if (t.backend) return { service: t.backend.service ?? t.name, port: t.backend.port };
  return undefined;
}

export function servesTraffic(t: Target): t is Target & { hostname: string } {
  return t.hostname !== undefined && backendOf(t) !== undefined;
}

/** The HTTPRoute that sends the target's hostname to its Service; it exists only from cutover on. */
export function routeFor(
  wm: WorkloadMigration,
  t: Target & { hostname: string },
  owner: OwnerReference[],
): KubeObject {
  // servesTraffic (the guard of every caller) says there is one.
  const backend = backendOf(t)!;
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: {
      name: t.name,
      namespace: wm.metadata.namespace,
      labels: labelsFor(wm.metadata.name, t.name),
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec: {
      parentRefs: [{ name: GATEWAY.name }],
      hostnames: [t.hostname],
      rules: [{ backendRefs: [{ name: backend.service, port: backend.port }] }],
    },
  };
}

/** Whether a target keeps data of its own (writes after cutover would stay in the cluster). */
export function isStateful(t: Target): boolean {
  if (hasManifest(t) && BUILT_KINDS.has(t.kind)) return manifestIsStateful(t);
  return (t.template?.volumes.length ?? 0) > 0 || t.kind === "StatefulSet" || t.kind === "HelmRelease";
}
