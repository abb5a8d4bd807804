// A target given as a complete manifest (targets[].manifest) becomes its Deployment, StatefulSet or
// CronJob with the user's spec passed through as written: the API server, not this operator, judges
// it (server-side dry run in deploy.ts; server-side apply refuses a field its schema lacks). The
// operator sets only what makes the object its own and what the migration steers: the name,
// namespace, owner, its labels on the object and on the pod template (ours win over the user's, so the
// object stays findable by the migration's label), a selector when the user gave none, and the
// running size (replicas, or a CronJob's suspend): zero while held for a data sync or rolled back.
import type { KubeObject, OwnerReference } from "../../runtime/index.ts";
import { labelsFor } from "./names.ts";
import type { Target } from "./workloads.ts";

type Obj = Record<string, unknown>;
export type ManifestTarget = Target & { manifest: NonNullable<Target["manifest"]> };

const API_VERSION: Partial<Record<Target["kind"], string>> = {
  Deployment: "apps/v1",
  StatefulSet: "apps/v1",
  CronJob: "batch/v1",
};

interface ContainerPort {
  name?: string;
  containerPort?: number;
  protocol?: string;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const objAt = (o: Obj, key: string): Obj => (isObj(o[key]) ? (o[key] as Obj) : {});

/** The pod template inside a workload spec (a CronJob's is under jobTemplate.spec). */
function podTemplateOf(kind: Target["kind"], spec: Obj): Obj {
  return kind === "CronJob"
    ? objAt(objAt(objAt(spec, "jobTemplate"), "spec"), "template")
    : objAt(spec, "template");
}

/** The pod template with the operator's labels added to the user's own (and manifest.labels). */
function labelledTemplate(template: Obj, labels: Record<string, string>): Obj {
  const metadata = objAt(template, "metadata");
  return { ...template, metadata: { ...metadata, labels: { ...objAt(metadata, "labels"), ...labels } } };
}

/**
 * The workload object of a manifest target. `replicas` is what the deploy step asks for: 0 (held for
 * a data sync, or rolled back) wins over whatever the manifest says; otherwise the manifest's own
 * replica count runs (1 when it sets none), and a CronJob runs unsuspended.
 */
export function manifestWorkload(
  wm: { metadata: { name: string; namespace?: string } },
  t: ManifestTarget,
  replicas: number,
  owner: OwnerReference[],
): KubeObject {
  const ours = labelsFor(wm.metadata.name, t.name);
  const labels = { ...t.manifest.labels, ...ours };
  // A deep copy: the spec object is the parsed migration's, and the next reconcile builds from it again.
  const spec = structuredClone(t.manifest.spec) as Obj;
  const template = labelledTemplate(podTemplateOf(t.kind, spec), labels);
  if (t.kind === "CronJob") {
    const jobTemplate = objAt(spec, "jobTemplate");
    spec["jobTemplate"] = { ...jobTemplate, spec: { ...objAt(jobTemplate, "spec"), template } };
    // A suspend that is not a boolean stays as written, so the API server refuses it now (held or not)
    // rather than once the migration lets the target run, after the VM's services were stopped.
    if (spec["suspend"] === undefined || typeof spec["suspend"] === "boolean")
      spec["suspend"] = replicas === 0;
  } else {
    spec["template"] = template;
    // The user's selector stays (it is immutable once created and theirs to choose); it must match the
    // pod template's labels, which the API server checks.
    if (spec["selector"] === undefined) spec["selector"] = { matchLabels: ours };
    // Likewise a replica count that is not a number stays as written, refused whether held or not.
    const asked = spec["replicas"] ?? 1;
    if (typeof asked === "number") spec["replicas"] = replicas === 0 ? 0 : asked;
  }
  return {
    apiVersion: API_VERSION[t.kind],
    kind: t.kind,
    metadata: {
      name: t.name,
      namespace: wm.metadata.namespace,
      labels,
      ...(t.manifest.annotations ? { annotations: t.manifest.annotations } : {}),
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec,
  };
}

/** Every named port of the pod template's containers, as written (protocol included). */
export function namedContainerPorts(t: ManifestTarget): ContainerPort[] {
  const podSpec = objAt(podTemplateOf(t.kind, t.manifest.spec as Obj), "spec");
  const containers = Array.isArray(podSpec["containers"]) ? (podSpec["containers"] as Obj[]) : [];
  return containers.flatMap((c) =>
    (Array.isArray(c["ports"]) ? (c["ports"] as ContainerPort[]) : []).filter(
      (p) => isObj(p) && typeof p.name === "string" && typeof p.containerPort === "number",
    ),
  );
}

/**
 * The Service of a manifest target with a backend: every named container port, on the same number and
 * protocol (Jellyfin's discovery ports are UDP), selecting the pods by the operator's labels, which
 * every pod of the target carries whatever the user's own selector is.
 */
export function manifestService(
  wm: { metadata: { name: string; namespace?: string } },
  t: ManifestTarget,
  owner: OwnerReference[],
): KubeObject {
  const ours = labelsFor(wm.metadata.name, t.name);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: t.name,
      namespace: wm.metadata.namespace,
      labels: { ...t.manifest.labels, ...ours },
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec: {
      selector: ours,
      ports: namedContainerPorts(t).map((p) => ({
        name: p.name,
        port: p.containerPort,
        targetPort: p.name,
        protocol: p.protocol ?? "TCP",
      })),
    },
  };
}

/** Why a manifest target's backend cannot be served by its Service, or undefined when it can. */
export function backendProblem(t: ManifestTarget): string | undefined {
  if (!t.backend) return undefined;
  const ports = namedContainerPorts(t);
  if (ports.some((p) => p.containerPort === t.backend!.port && (p.protocol ?? "TCP") === "TCP"))
    return undefined;
  return `backend.port ${t.backend.port} is not a named TCP containerPort of the pod template (named: ${ports.map((p) => `${p.name}=${p.containerPort}/${p.protocol ?? "TCP"}`).join(", ") || "none"})`;
}

/** The workload and, with a backend, its Service. */
export function manifestObjects(
  wm: { metadata: { name: string; namespace?: string } },
  t: ManifestTarget,
  replicas: number,
  owner: OwnerReference[],
): KubeObject[] {
  const out = [manifestWorkload(wm, t, replicas, owner)];
  if (t.backend) out.push(manifestService(wm, t, owner));
  return out;
}

/** Volumes that hold data of their own: claims (made ahead or per replica) and NFS shares. */
export function manifestIsStateful(t: ManifestTarget): boolean {
  const spec = t.manifest.spec as Obj;
  if (t.kind === "StatefulSet") return true;
  if (Array.isArray(spec["volumeClaimTemplates"]) && spec["volumeClaimTemplates"].length > 0) return true;
  const podSpec = objAt(podTemplateOf(t.kind, spec), "spec");
  const volumes = Array.isArray(podSpec["volumes"]) ? (podSpec["volumes"] as Obj[]) : [];
  return volumes.some((v) => isObj(v) && (isObj(v["persistentVolumeClaim"]) || isObj(v["nfs"])));
}
