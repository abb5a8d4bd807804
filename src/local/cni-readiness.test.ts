import { describe, expect, it } from "vitest";
import { cniPodsByNode } from "./cni-readiness.ts";
import { CNI_READY_ANNOTATION, kwokConfigYaml, nodeStages } from "./kwok-stages.ts";

const pod = (name: string, nodeName: string | undefined, phase: string, deleting = false) => ({
  metadata: {
    name,
    namespace: "kube-system",
    ...(deleting ? { deletionTimestamp: "2026-12-01T00:00:00Z" } : {}),
  },
  spec: nodeName ? { nodeName } : {},
  status: { phase },
});

describe("CNI readiness rule", () => {
  it("a node counts only while a Running, not-deleting agent pod is bound to it", () => {
    const byNode = cniPodsByNode([
      pod("cilium-a", "n1", "Running"),
      pod("cilium-b", "n2", "Pending"),
      pod("cilium-c", undefined, "Pending"),
      pod("cilium-d", "n3", "Running", true),
      pod("cilium-e", "n4", "Failed"),
    ]);
    expect([...byNode]).toEqual([["n1", "kube-system/cilium-a"]]);
  });

  it("picks one pod per node, the same one every time", () => {
    const a = cniPodsByNode([pod("cilium-z", "n1", "Running"), pod("cilium-a", "n1", "Running")]);
    const b = cniPodsByNode([pod("cilium-a", "n1", "Running"), pod("cilium-z", "n1", "Running")]);
    expect(a.get("n1")).toBe("kube-system/cilium-a");
    expect(b.get("n1")).toBe("kube-system/cilium-a");
  });
});

describe("KWOK node stages", () => {
  it("split nodes by the CNI mark and then by the Ready condition, so exactly one stage applies", () => {
    const stages = nodeStages();
    const selectors = stages.map(
      (s) =>
        (s.spec.selector as { matchExpressions: { key: string; operator: string; values?: string[] }[] })
          .matchExpressions,
    );
    const mark = selectors.map((m) => m[0]);
    for (const m of mark) expect(m?.key).toBe(`.metadata.annotations["${CNI_READY_ANNOTATION}"]`);
    expect(mark.map((m) => m?.operator)).toEqual(["DoesNotExist", "DoesNotExist", "Exists", "Exists"]);
    // Within each half the second expression is In vs NotIn on the same key and values: complementary.
    for (const [x, y] of [
      [selectors[0]?.[1], selectors[1]?.[1]],
      [selectors[2]?.[1], selectors[3]?.[1]],
    ]) {
      expect(x?.key).toBe(y?.key);
      expect(x?.values).toEqual(y?.values);
      expect([x?.operator, y?.operator].sort()).toEqual(["In", "NotIn"]);
    }
  });

  it("is a multi-document kwok config of Stages only", () => {
    const docs = kwokConfigYaml().split("---\n");
    expect(docs).toHaveLength(4);
    for (const d of docs) expect(d).toMatch(/^apiVersion: kwok\.x-k8s\.io\/v1alpha1\nkind: Stage\n/);
  });
});
