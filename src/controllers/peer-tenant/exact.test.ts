import { describe, expect, it } from "vitest";
import { matchesExactly, sameValue } from "./exact.ts";

const deny = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: "tenant-default-deny", namespace: "peers-alice", labels: { a: "b" } },
  spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
};

describe("matchesExactly", () => {
  it("accepts what the API server returns for the object written", () => {
    const actual = {
      ...deny,
      metadata: { ...deny.metadata, uid: "1", resourceVersion: "5", labels: { a: "b", extra: "x" } },
      status: {},
    };
    expect(matchesExactly(deny, actual)).toBe(true);
  });
  it("sees an extra ingress: [{}] that turns default-deny into allow-all", () => {
    expect(matchesExactly(deny, { ...deny, spec: { ...deny.spec, ingress: [{}] } })).toBe(false);
  });
  it("sees a top-level field the operator does not set", () => {
    expect(matchesExactly({ ...deny }, { ...deny, extra: { x: 1 } })).toBe(false);
  });
  it("sees a missing label of its own", () => {
    expect(matchesExactly(deny, { ...deny, metadata: { ...deny.metadata, labels: {} } })).toBe(false);
  });
});

describe("sameValue", () => {
  it("compares quantities by value, as the API server rewrites them", () => {
    expect(sameValue({ hard: { memory: "1024Mi" } }, { hard: { memory: "1Gi" } })).toBe(true);
    expect(sameValue({ hard: { memory: "1Gi" } }, { hard: { memory: "2Gi" } })).toBe(false);
    expect(sameValue({ pods: 20 }, { pods: "20" })).toBe(true);
  });
  it("treats missing, null and empty alike, but not an empty rule", () => {
    expect(sameValue({ a: [] }, {})).toBe(true);
    expect(sameValue({ a: null }, { a: {} })).toBe(true);
    expect(sameValue({ a: [{}] }, {})).toBe(false);
  });
});
