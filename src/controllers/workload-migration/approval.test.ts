import { describe, expect, it } from "vitest";
import { forgetRemovedApprovals, retirementApproval, voidApprovals } from "./approval.ts";
import { parseDuration } from "./duration.ts";
import type { MigrationFields } from "./step.ts";

const annotated = (value: string, managedFields: unknown[] = []) => ({
  metadata: { annotations: { "homelab.shdr.ch/approve-retirement": value }, managedFields },
});

describe("retirementApproval", () => {
  it("approves only the exact value true", () => {
    for (const v of ["True", "yes", "1", "true "])
      expect(retirementApproval(annotated(v), {}).approved).toBe(false);
    expect(retirementApproval({ metadata: {} }, {}).approved).toBe(false);
  });
  it("names the field manager that set the annotation, not others", () => {
    const a = retirementApproval(
      annotated("true", [
        { manager: "homelab-operator", operation: "Apply", fieldsV1: { "f:spec": {} } },
        {
          manager: "kubectl-annotate",
          operation: "Update",
          time: "2026-12-01T10:00:00Z",
          fieldsV1: { "f:metadata": { "f:annotations": { "f:homelab.shdr.ch/approve-retirement": {} } } },
        },
      ]),
      {},
    );
    expect(a).toEqual({ approved: true, by: "kubectl-annotate (Update 2026-12-01T10:00:00Z)" });
  });
});

describe("approvals across a rollback", () => {
  const RETIRE = "homelab.shdr.ch/approve-retirement";
  const CUTOVER = "homelab.shdr.ch/approve-cutover";
  it("an approval set when the rollback completed no longer counts, not even re-applied", () => {
    const f: MigrationFields = { rolledBackTime: "2026-12-01T10:00:00Z" };
    voidApprovals(annotated("true"), f, [CUTOVER, RETIRE]);
    expect(f.staleApprovals).toEqual([RETIRE]);
    // Still set on every later reconcile (a kubectl apply carrying it again changes nothing).
    for (let i = 0; i < 3; i++) {
      forgetRemovedApprovals(annotated("true"), f);
      expect(retirementApproval(annotated("true"), f).approved).toBe(false);
    }
  });
  it("counts again once seen removed and set anew", () => {
    const f: MigrationFields = {};
    voidApprovals(annotated("true"), f, [RETIRE]);
    forgetRemovedApprovals({ metadata: { annotations: {} } }, f);
    expect(f.staleApprovals).toBeUndefined();
    expect(retirementApproval(annotated("true"), f).approved).toBe(true);
  });
  it("a value other than true counts as removed", () => {
    const f: MigrationFields = {};
    voidApprovals(annotated("true"), f, [RETIRE]);
    forgetRemovedApprovals(annotated("false"), f);
    expect(retirementApproval(annotated("true"), f).approved).toBe(true);
  });
});

describe("parseDuration", () => {
  it("reads Go durations the CRD accepts", () => {
    expect(parseDuration("10s")).toBe(10_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("168h")).toBe(604_800_000);
    expect(parseDuration("500ms")).toBe(500);
  });
  it("rejects anything else", () => {
    for (const t of ["", "10", "1d", "-1s", "1.5h"]) expect(() => parseDuration(t)).toThrow();
  });
});
