import { describe, expect, it } from "vitest";
import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import { lowestVersion, talosPath, upgradeOrder } from "./upgrade-plan.ts";

const FACTORY = [
  "v1.10.5",
  "v1.10.7",
  "v1.11.0",
  "v1.11.3",
  "v1.12.0",
  "v1.12.1",
  "v1.13.0-alpha.1",
  "v1.13.0",
  "v1.13.1",
  "v1.14.0-beta.1",
];

describe("talosPath", () => {
  it("passes through the latest patch of the current and every intermediate minor, then the target", () => {
    expect(talosPath("v1.10.5", "v1.13.0", FACTORY)).toEqual({
      ok: true,
      hops: ["v1.10.7", "v1.11.3", "v1.12.1", "v1.13.0"],
    });
  });

  it("goes straight to the target inside a minor, or from the latest patch to the next minor", () => {
    expect(talosPath("v1.13.0", "v1.13.1", FACTORY)).toEqual({ ok: true, hops: ["v1.13.1"] });
    expect(talosPath("v1.12.1", "v1.13.1", FACTORY)).toEqual({ ok: true, hops: ["v1.13.1"] });
  });

  it("never stops at a pre-release on the way, and has nothing to do at the target", () => {
    const list = ["v1.12.0", "v1.12.1", "v1.13.0-rc.1", "v1.13.0", "v1.14.0-beta.1", "v1.14.0"];
    expect(talosPath("v1.12.0", "v1.14.0", list)).toEqual({
      ok: true,
      hops: ["v1.12.1", "v1.13.0", "v1.14.0"],
    });
    expect(talosPath("v1.13.1", "v1.13.1", [])).toEqual({ ok: true, hops: [] });
  });

  it("refuses downgrades, major jumps, unlisted targets and a minor the factory lacks", () => {
    expect(talosPath("v1.13.1", "v1.12.1", FACTORY)).toMatchObject({
      ok: false,
      reason: "TalosDowngradeRefused",
    });
    expect(talosPath("v1.13.1", "v1.13.0", FACTORY)).toMatchObject({
      ok: false,
      reason: "TalosDowngradeRefused",
    });
    expect(talosPath("v1.13.1", "v2.0.0", [...FACTORY, "v2.0.0"])).toMatchObject({
      ok: false,
      reason: "TalosVersionUnavailable",
    });
    expect(talosPath("v1.12.1", "v1.13.7", FACTORY)).toMatchObject({
      ok: false,
      reason: "TalosVersionUnavailable",
      message: expect.stringContaining("v1.13.7"),
    });
    expect(talosPath("v1.10.5", "v1.12.0", ["v1.10.5", "v1.12.0"])).toMatchObject({
      ok: false,
      reason: "TalosVersionUnavailable",
      message: expect.stringContaining("v1.11"),
    });
  });
});

describe("upgradeOrder and lowestVersion", () => {
  const node = (name: string, role: "controlplane" | "worker") => ({ name, role }) as HomelabClusterNode;

  it("puts control planes first, each group in spec order", () => {
    const nodes = [
      node("w1", "worker"),
      node("cp1", "controlplane"),
      node("w2", "worker"),
      node("cp2", "controlplane"),
    ];
    expect(upgradeOrder(nodes).map((n) => n.name)).toEqual(["cp1", "cp2", "w1", "w2"]);
  });

  it("compares versions numerically, not as text", () => {
    expect(lowestVersion(["v1.13.0", "v1.9.2", "v1.10.0"])).toBe("v1.9.2");
    expect(lowestVersion(["v1.12.10", "v1.12.9"])).toBe("v1.12.9");
  });
});
