import { describe, expect, it } from "vitest";
import { daemonSetRolledOut } from "./upgrade-manifests.ts";

describe("daemonSetRolledOut", () => {
  const ds = (generation: number, status: Record<string, number>) => ({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "kube-proxy", generation },
    status,
  });
  it("holds until the controller observed the new generation and every scheduled pod is updated and available", () => {
    const full = { desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 };
    expect(daemonSetRolledOut(ds(2, { ...full, observedGeneration: 2 }))).toBe(true);
    expect(daemonSetRolledOut(ds(2, { ...full, observedGeneration: 1 }))).toBe(false);
    expect(daemonSetRolledOut(ds(2, { ...full, observedGeneration: 2, updatedNumberScheduled: 2 }))).toBe(
      false,
    );
    expect(daemonSetRolledOut(ds(2, { ...full, observedGeneration: 2, numberAvailable: 2 }))).toBe(false);
    expect(daemonSetRolledOut(ds(1, {}))).toBe(false);
  });
});
