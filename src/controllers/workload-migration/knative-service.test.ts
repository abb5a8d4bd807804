// The Knative objects a KnativeService target becomes, and how Knative's status is read.
import { describe, expect, it } from "vitest";
import { loadExamples } from "../../crds/examples.ts";
import { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { KubeObject } from "../../runtime/index.ts";
import {
  CLUSTER_LOCAL,
  domainMapping,
  isOurs,
  knativeReadiness,
  knativeService,
  OWNER_ANNOTATION,
  VISIBILITY_LABEL,
} from "./knative-service.ts";
import { MIGRATION_LABEL } from "./names.ts";
import type { Target } from "./workloads.ts";

const examples = loadExamples()
  .filter((d) => d.object.kind === "WorkloadMigration")
  // Through the CRD's schema, as the API server defaults them (env, volumes: []).
  .map((d) => WorkloadMigration.schema.parse(d.object) as WorkloadMigration);
const withUid = (wm: WorkloadMigration): WorkloadMigration => ({
  ...wm,
  metadata: { ...wm.metadata, uid: "0b8f6e1c-uid" },
});
const ai = withUid(examples.find((m) => m.metadata.name === "ai-tool-stack")!);
const target = (name: string): Target => ai.spec.targets.find((t) => t.name === name)!;
type Ksvc = {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: { containers: { name?: string; ports?: { containerPort: number }[]; env?: unknown[] }[] };
    };
  };
};

describe("knativeService", () => {
  it("builds one container from a template: its port as the only containerPort, env, our labels, cluster-local", () => {
    const k = knativeService(ai, target("openwebui"), false, []) as unknown as Ksvc;
    expect(k.metadata.labels[VISIBILITY_LABEL]).toBe(CLUSTER_LOCAL);
    expect(k.metadata.labels[MIGRATION_LABEL]).toBe("ai-tool-stack");
    expect(k.metadata.annotations[OWNER_ANNOTATION]).toBe("0b8f6e1c-uid");
    const [c, ...more] = k.spec.template.spec.containers;
    expect(more).toEqual([]);
    expect(c!.ports).toEqual([{ containerPort: 8080 }]);
    expect(c!.env).toEqual([
      {
        name: "DATABASE_URL",
        valueFrom: { secretKeyRef: { name: "ai-tool-stack-openwebui", key: "database-url" } },
      },
    ]);
    expect(k.spec.template.metadata?.labels?.[MIGRATION_LABEL]).toBe("ai-tool-stack");
  });

  it("published drops only the visibility label", () => {
    const priv = knativeService(ai, target("bytebot"), false, []) as unknown as Ksvc;
    const pub = knativeService(ai, target("bytebot"), true, []) as unknown as Ksvc;
    expect(pub.metadata.labels[VISIBILITY_LABEL]).toBeUndefined();
    const { [VISIBILITY_LABEL]: _, ...rest } = priv.metadata.labels;
    expect(pub.metadata.labels).toEqual(rest);
    expect(pub.spec).toEqual(priv.spec);
  });

  it("keeps a manifest's spec as written (Firecrawl: four containers, exactly one with a port) and adds our labels", () => {
    const t = target("firecrawl");
    const k = knativeService(ai, t, false, []) as unknown as Ksvc;
    const containers = k.spec.template.spec.containers;
    expect(containers.map((c) => c.name)).toEqual(["api", "worker", "playwright", "redis"]);
    // Knative routes requests to the one container that declares a port; a second one is refused.
    expect(containers.filter((c) => c.ports?.length)).toHaveLength(1);
    expect(k.spec.template.metadata?.annotations?.["autoscaling.knative.dev/min-scale"]).toBe("1");
    expect(k.spec.template.metadata?.labels?.[MIGRATION_LABEL]).toBe("ai-tool-stack");
    // The user's spec itself is not changed by building the object.
    expect((t.manifest!.spec as Ksvc["spec"]).template.metadata?.labels).toBeUndefined();
  });

  it("a manifest's own labels cannot take our labels or the migration's ownership over", () => {
    const t: Target = {
      name: "element",
      kind: "KnativeService",
      manifest: {
        labels: { [MIGRATION_LABEL]: "other", team: "chat" },
        annotations: { [OWNER_ANNOTATION]: "someone-else" },
        spec: { template: { spec: { containers: [{ image: "vectorim/element-web:v1.11.100" }] } } },
      },
    };
    const k = knativeService(ai, t, true, []) as unknown as Ksvc;
    expect(k.metadata.labels[MIGRATION_LABEL]).toBe("ai-tool-stack");
    expect(k.metadata.labels.team).toBe("chat");
    expect(k.metadata.annotations[OWNER_ANNOTATION]).toBe("0b8f6e1c-uid");
  });

  it("every KnativeService target of the examples builds a Service with exactly one container port", () => {
    const knative = examples.flatMap((wm) =>
      wm.spec.targets.filter((t) => t.kind === "KnativeService").map((t) => [wm, t] as const),
    );
    expect(knative).toHaveLength(10);
    for (const [wm, t] of knative) {
      const k = knativeService(withUid(wm), t, false, []) as unknown as Ksvc;
      const ports = k.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
      expect(ports, `${wm.metadata.name}/${t.name}`).toHaveLength(1);
    }
  });
});

describe("domainMapping", () => {
  it("is named after the hostname and refers to the target's Knative Service in its namespace", () => {
    const dm = domainMapping(ai, target("searxng") as Target & { hostname: string }, []);
    expect(dm.metadata?.name).toBe("searxng.apps.home.shdr.ch");
    expect(dm.spec).toEqual({
      ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: "searxng", namespace: "infra" },
    });
    expect(isOurs(dm, ai)).toBe(true);
  });
});

describe("isOurs", () => {
  it("needs this migration's uid, not labels or another uid", () => {
    const labelsOnly = { metadata: { labels: { [MIGRATION_LABEL]: "ai-tool-stack" } } } as KubeObject;
    const other = { metadata: { annotations: { [OWNER_ANNOTATION]: "another-uid" } } } as KubeObject;
    expect(isOurs(labelsOnly, ai)).toBe(false);
    expect(isOurs(other, ai)).toBe(false);
    // A migration not yet given a uid owns nothing, not even an object with an empty annotation.
    const empty = { metadata: { annotations: { [OWNER_ANNOTATION]: "" } } } as KubeObject;
    expect(isOurs(empty, { ...ai, metadata: { ...ai.metadata, uid: undefined } })).toBe(false);
  });
});

describe("knativeReadiness", () => {
  const ksvc = (generation: number, status: unknown): KubeObject =>
    ({ metadata: { generation }, status }) as KubeObject;
  it("is Ready only with Ready=True at the current generation", () => {
    expect(knativeReadiness(undefined)).toEqual({ ready: false, message: "not created yet" });
    expect(
      knativeReadiness(ksvc(2, { observedGeneration: 1, conditions: [{ type: "Ready", status: "True" }] })),
    ).toEqual({ ready: false, message: "Knative has not observed generation 2 yet" });
    expect(knativeReadiness(ksvc(2, { observedGeneration: 2, conditions: [] })).ready).toBe(false);
    expect(
      knativeReadiness(ksvc(2, { observedGeneration: 2, conditions: [{ type: "Ready", status: "True" }] })),
    ).toEqual({ ready: true });
  });
  it("says Knative's reason and message when Ready is not True", () => {
    const r = knativeReadiness(
      ksvc(1, {
        observedGeneration: 1,
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "RevisionMissing",
            message: 'Configuration "element" does not have any ready Revision.',
          },
        ],
      }),
    );
    expect(r).toEqual({
      ready: false,
      message: 'Ready=False RevisionMissing: Configuration "element" does not have any ready Revision.',
    });
    expect(
      knativeReadiness(ksvc(1, { observedGeneration: 1, conditions: [{ type: "Ready", status: "Unknown" }] }))
        .message,
    ).toBe("Ready=Unknown");
  });
});
