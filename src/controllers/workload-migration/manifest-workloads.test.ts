// What the operator writes into a manifest target, attacked through the manifest: the user's spec
// passes through untouched, but the operator's labels, the selector it relies on, and the size while
// held (replicas 0, CronJob suspended) cannot be taken over by what the manifest says.
import { describe, expect, it } from "vitest";
import {
  backendProblem,
  type ManifestTarget,
  manifestIsStateful,
  manifestObjects,
  manifestWorkload,
} from "./manifest-workloads.ts";
import { isStateful, routeFor, servesTraffic, targetProblem, workloadObjects } from "./workloads.ts";

const wm = { metadata: { name: "media", namespace: "infra" } };
const OURS = {
  "homelab.shdr.ch/migration": "media",
  "app.kubernetes.io/name": "jf",
  "app.kubernetes.io/managed-by": "homelab-operator",
};
// biome-ignore lint/suspicious/noExplicitAny: the assertions read built objects as JSON
type Loose = any;

function target(spec: Record<string, unknown>, extra: Partial<ManifestTarget> = {}): ManifestTarget {
  return { name: "jf", kind: "Deployment", manifest: { spec }, ...extra } as ManifestTarget;
}
const pod = (extra: Record<string, unknown> = {}) => ({
  template: {
    metadata: { labels: { tier: "media" }, annotations: { "example.org/a": "1" } },
    spec: {
      containers: [
        {
          name: "jellyfin",
          image: "jellyfin/jellyfin:10.10.7",
          ports: [
            { name: "http", containerPort: 8096 },
            { name: "dlna", containerPort: 1900, protocol: "UDP" },
            { containerPort: 9999 },
          ],
        },
      ],
      nodeSelector: { "kubernetes.io/hostname": "talos-niobe" },
    },
  },
  ...extra,
});

describe("manifest workloads", () => {
  it("passes the user's spec through and adds only the operator's own fields", () => {
    const t = target({ ...pod(), strategy: { type: "Recreate" }, minReadySeconds: 5 });
    const d: Loose = manifestWorkload(wm, t, 1, []);
    expect(d).toMatchObject({ apiVersion: "apps/v1", kind: "Deployment" });
    expect(d.metadata).toEqual({ name: "jf", namespace: "infra", labels: OURS });
    expect(d.spec.strategy).toEqual({ type: "Recreate" });
    expect(d.spec.minReadySeconds).toBe(5);
    expect(d.spec.template.spec).toEqual(pod().template.spec);
    expect(d.spec.template.metadata).toEqual({
      labels: { tier: "media", ...OURS },
      annotations: { "example.org/a": "1" },
    });
    expect(d.spec.selector).toEqual({ matchLabels: OURS });
    expect(d.spec.replicas).toBe(1);
  });

  it("does not change the migration's spec object (a later reconcile builds from it again)", () => {
    const t = target(pod({ replicas: 3 }));
    const before = structuredClone(t);
    manifestObjects(wm, t, 0, []);
    expect(t).toEqual(before);
  });

  it("keeps the user's selector, and lets the operator's label keys win over manifest.labels", () => {
    const t = target(pod({ selector: { matchLabels: { tier: "media" } } }), {
      manifest: {
        labels: { "homelab.shdr.ch/migration": "other", "app.kubernetes.io/name": "x", team: "a" },
        spec: pod({ selector: { matchLabels: { tier: "media" } } }),
      },
    });
    const d: Loose = manifestWorkload(wm, t, 1, []);
    expect(d.spec.selector).toEqual({ matchLabels: { tier: "media" } });
    expect(d.metadata.labels).toEqual({ team: "a", ...OURS });
    expect(d.spec.template.metadata.labels).toEqual({ team: "a", tier: "media", ...OURS });
  });

  it("owns the size: 0 when held or rolled back whatever the manifest says, else the manifest's", () => {
    const t = target(pod({ replicas: 5 }));
    expect((manifestWorkload(wm, t, 0, []) as Loose).spec.replicas).toBe(0);
    expect((manifestWorkload(wm, t, 1, []) as Loose).spec.replicas).toBe(5);
    const sts = { ...target(pod({ replicas: 2, serviceName: "jf" })), kind: "StatefulSet" } as ManifestTarget;
    expect((manifestWorkload(wm, sts, 0, []) as Loose).spec.replicas).toBe(0);
  });

  it("leaves a replicas or suspend of the wrong type as written, so the API server refuses it even while held", () => {
    expect((manifestWorkload(wm, target(pod({ replicas: "5" })), 0, []) as Loose).spec.replicas).toBe("5");
    const cron = { ...target({ schedule: "@daily", suspend: "no", jobTemplate: {} }), kind: "CronJob" };
    expect((manifestWorkload(wm, cron as ManifestTarget, 0, []) as Loose).spec.suspend).toBe("no");
  });

  it("owns a CronJob's suspend and labels its job's pod template", () => {
    const spec = {
      schedule: "@weekly",
      suspend: false,
      jobTemplate: {
        spec: { backoffLimit: 1, template: { spec: { restartPolicy: "OnFailure", containers: [] } } },
      },
    };
    const t = { ...target(spec), kind: "CronJob" } as ManifestTarget;
    const held: Loose = manifestWorkload(wm, t, 0, []);
    expect(held).toMatchObject({ apiVersion: "batch/v1", kind: "CronJob" });
    expect(held.spec.suspend).toBe(true);
    expect(held.spec.jobTemplate.spec.backoffLimit).toBe(1);
    expect(held.spec.jobTemplate.spec.template.metadata.labels).toEqual(OURS);
    expect(held.spec.selector).toBeUndefined();
    expect(held.spec.replicas).toBeUndefined();
    const suspendedByUser = { ...target({ ...spec, suspend: true }), kind: "CronJob" } as ManifestTarget;
    expect((manifestWorkload(wm, suspendedByUser, 1, []) as Loose).spec.suspend).toBe(false);
  });

  it("makes a Service of every named container port, protocol kept, only with a backend", () => {
    expect(manifestObjects(wm, target(pod()), 1, []).map((o) => o.kind)).toEqual(["Deployment"]);
    const t = target(pod(), { backend: { port: 8096 } });
    const [, svc]: Loose[] = manifestObjects(wm, t, 1, []);
    expect(svc.metadata).toEqual({ name: "jf", namespace: "infra", labels: OURS });
    expect(svc.spec).toEqual({
      selector: OURS,
      ports: [
        { name: "http", port: 8096, targetPort: "http", protocol: "TCP" },
        { name: "dlna", port: 1900, targetPort: "dlna", protocol: "UDP" },
      ],
    });
  });

  it("routes the hostname to backend.port, and refuses a backend port no named TCP port serves", () => {
    const t = target(pod(), { backend: { port: 8096 }, hostname: "jf.apps.home.shdr.ch" });
    expect(servesTraffic(t)).toBe(true);
    const route: Loose = routeFor(wm as Loose, t as Loose, []);
    expect(route.spec.rules).toEqual([{ backendRefs: [{ name: "jf", port: 8096 }] }]);
    expect(backendProblem(t)).toBeUndefined();
    expect(targetProblem(t)).toBeUndefined();
    for (const port of [1900, 9999, 80])
      expect(targetProblem({ ...t, backend: { port } })).toContain(`backend.port ${port} is not a named TCP`);
    expect(servesTraffic(target(pod(), { hostname: "jf.apps.home.shdr.ch" }))).toBe(false);
  });

  it("is stateful with a StatefulSet, volumeClaimTemplates, or a claim or NFS volume", () => {
    const withVolumes = (volumes: unknown[]) => target({ template: { spec: { containers: [], volumes } } });
    expect(manifestIsStateful(withVolumes([]))).toBe(false);
    expect(manifestIsStateful(withVolumes([{ name: "usb", hostPath: { path: "/dev/bus/usb" } }]))).toBe(
      false,
    );
    expect(manifestIsStateful(withVolumes([{ name: "tmp", emptyDir: {} }]))).toBe(false);
    expect(isStateful(withVolumes([{ name: "m", nfs: { server: "10.0.2.30", path: "/export" } }]))).toBe(
      true,
    );
    expect(isStateful(withVolumes([{ name: "c", persistentVolumeClaim: { claimName: "c" } }]))).toBe(true);
    expect(isStateful({ ...withVolumes([]), kind: "StatefulSet" } as ManifestTarget)).toBe(true);
    expect(isStateful(target({ volumeClaimTemplates: [{ metadata: { name: "d" } }] }))).toBe(true);
  });

  it("is what workloadObjects builds for a manifest target (the deploy and rollback path)", () => {
    const t = target(pod({ replicas: 5 }), { backend: { port: 8096 } });
    expect(workloadObjects(wm as Loose, t, 0, [])).toEqual(manifestObjects(wm, t, 0, []));
  });
});
