// The Kubernetes objects a target becomes: pure functions of the spec, so a reconcile after a crash
// builds exactly the same objects again. Deployment, StatefulSet and CronJob are built here;
// KnativeService and HelmRelease are refused by the deploy step (not built by this version).
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { KubeObject, OwnerReference } from "../../runtime/index.ts";
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
  const tpl = t.template;
  if (!tpl || !BUILT_KINDS.has(t.kind)) return [];
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

export function servesTraffic(t: Target): t is Target & { hostname: string } {
  return t.hostname !== undefined && t.template?.port !== undefined;
}

/** The HTTPRoute that sends the target's hostname to its Service; it exists only from cutover on. */
export function routeFor(
  wm: WorkloadMigration,
  t: Target & { hostname: string },
  owner: OwnerReference[],
): KubeObject {
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
      rules: [{ backendRefs: [{ name: t.name, port: t.template!.port! }] }],
    },
  };
}

/** Whether a target keeps data of its own (writes after cutover would stay in the cluster). */
export function isStateful(t: Target): boolean {
  return (t.template?.volumes.length ?? 0) > 0 || t.kind === "StatefulSet" || t.kind === "HelmRelease";
}
