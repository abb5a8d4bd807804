import { describe, expect, it } from "vitest";
import { configuredMessage } from "./talos.ts";
import { rebootedIntoStep } from "./upgrade-talos.ts";

const requested = Date.parse("2026-12-01T20:00:00Z");
const before = new Date(requested - 60_000);
const after = new Date(requested + 60_000);
const old = "factory.talos.dev/nocloud-installer/abc:v1.12.1";

describe("rebootedIntoStep", () => {
  it("takes the new version alone as done when the step changes the version, whatever the clocks say", () => {
    // A node whose clock runs a minute behind reports a boot before the request: still not upgraded again.
    expect(rebootedIntoStep({ bootedAt: before }, "v1.13.1", requested, old)).toBe(true);
    expect(rebootedIntoStep({ bootedAt: after }, "v1.13.1", requested, old)).toBe(true);
    expect(rebootedIntoStep({}, "v1.13.1", requested, undefined)).toBe(true);
  });
  it("needs a boot after the request when only the schematic changes", () => {
    const sameVersion = "factory.talos.dev/nocloud-installer/abc:v1.13.1";
    expect(rebootedIntoStep({ bootedAt: before }, "v1.13.1", requested, sameVersion)).toBe(false);
    expect(rebootedIntoStep({ bootedAt: after }, "v1.13.1", requested, sameVersion)).toBe(true);
  });
});

describe("configuredMessage", () => {
  it("does not count the node being upgraded as checked", () => {
    expect(configuredMessage(3, undefined)).toBe("3 node(s) in configured mode");
    expect(configuredMessage(3, "cp1")).toBe(
      "2 of 3 node(s) in configured mode; cp1 not checked, it is being upgraded (TalosUpToDate waits for it)",
    );
  });
});
