import { describe, expect, it } from "vitest";
import { progressLines } from "./progress.ts";

const cluster = (
  conditions: { type: string; status: string; reason?: string; message?: string }[],
  extra = {},
) => ({
  metadata: { name: "k8s", ...extra },
  status: { phase: "Provisioning", conditions },
});

describe("progress lines", () => {
  it("names a new object and each of its conditions", () => {
    expect(
      progressLines(
        "HomelabCluster",
        undefined,
        cluster([{ type: "Validated", status: "True", reason: "Valid" }]),
      ),
    ).toEqual([
      "HomelabCluster k8s created",
      "HomelabCluster k8s phase Provisioning",
      "HomelabCluster k8s Validated=True (Valid)",
    ]);
  });

  it("prints only what changed: a condition's status, reason or message; not a heartbeat re-write", () => {
    const before = cluster([
      { type: "Validated", status: "True", reason: "Valid" },
      { type: "MachinesReady", status: "False", reason: "Booting", message: "0/3 in maintenance" },
    ]);
    const same = cluster([
      { type: "Validated", status: "True", reason: "Valid" },
      { type: "MachinesReady", status: "False", reason: "Booting", message: "0/3 in maintenance" },
    ]);
    expect(progressLines("HomelabCluster", before, same)).toEqual([]);
    const after = cluster([
      { type: "Validated", status: "True", reason: "Valid" },
      { type: "MachinesReady", status: "False", reason: "Booting", message: "2/3 in maintenance" },
    ]);
    expect(progressLines("HomelabCluster", before, after)).toEqual([
      "HomelabCluster k8s MachinesReady=False (Booting: 2/3 in maintenance)",
    ]);
  });

  it("says when an object is being deleted and when it is gone, with its namespace", () => {
    const t = { metadata: { name: "alice", namespace: "tenants" } };
    const deleting = { metadata: { ...t.metadata, deletionTimestamp: "2026-12-01T15:00:00Z" } };
    expect(progressLines("PeerTenant", t, deleting)).toEqual(["PeerTenant tenants/alice deleting"]);
    expect(progressLines("PeerTenant", deleting, undefined)).toEqual(["PeerTenant tenants/alice deleted"]);
  });
});
