import { describe, expect, it } from "vitest";
import {
  type Condition,
  conditionsEqual,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "./conditions.ts";

const t0 = new Date("2026-11-25T06:00:00.123Z");
const t1 = new Date("2026-11-25T07:30:00.987Z");
const ready = (status: Condition["status"], reason: string, gen = 1) => ({
  type: "Ready",
  status,
  reason,
  message: `${reason} happened`,
  observedGeneration: gen,
});

describe("setCondition", () => {
  const cases: Record<
    string,
    { before: Condition[]; input: ReturnType<typeof ready>; wantTransition: string }
  > = {
    "a new condition gets lastTransitionTime = now (second precision)": {
      before: [],
      input: ready("False", "Provisioning"),
      wantTransition: "2026-11-25T07:30:00Z",
    },
    "same status keeps the old lastTransitionTime even when reason changes": {
      before: setCondition([], ready("False", "Provisioning"), t0),
      input: ready("False", "WaitingForVMs", 2),
      wantTransition: "2026-11-25T06:00:00Z",
    },
    "a status flip moves lastTransitionTime": {
      before: setCondition([], ready("False", "Provisioning"), t0),
      input: ready("True", "Available", 2),
      wantTransition: "2026-11-25T07:30:00Z",
    },
    "Unknown to False is a flip too": {
      before: setCondition([], ready("Unknown", "Pending"), t0),
      input: ready("False", "Failed"),
      wantTransition: "2026-11-25T07:30:00Z",
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const after = setCondition(c.before, c.input, t1);
      const got = findCondition(after, "Ready")!;
      expect(got.lastTransitionTime).toBe(c.wantTransition);
      expect(got).toMatchObject({
        status: c.input.status,
        reason: c.input.reason,
        message: c.input.message,
        observedGeneration: c.input.observedGeneration,
      });
      expect(after).toHaveLength(1);
    });
  }

  it("leaves other condition types and the input array untouched", () => {
    const before = setCondition(
      setCondition([], ready("True", "Available"), t0),
      { type: "VMsReady", status: "True", reason: "AllRunning" },
      t0,
    );
    const frozen = structuredClone(before);
    const after = setCondition(before, ready("False", "Degraded"), t1);
    expect(before).toEqual(frozen);
    expect(findCondition(after, "VMsReady")).toEqual(findCondition(before, "VMsReady"));
    expect(after.map((c) => c.type)).toEqual(["Ready", "VMsReady"]);
  });

  it("rejects a reason that is not CamelCase, as the API server would", () => {
    expect(() => setCondition([], { type: "Ready", status: "True", reason: "all good" })).toThrow(
      /CamelCase/,
    );
    expect(() => setCondition([], { type: "Ready", status: "True", reason: "" })).toThrow(/CamelCase/);
  });

  it("defaults message to the empty string (required field)", () => {
    expect(setCondition([], { type: "Ready", status: "True", reason: "Ok" }, t0)[0]!.message).toBe("");
  });
});

describe("condition queries", () => {
  const list = setCondition(
    setCondition([], ready("True", "Available"), t0),
    { type: "Paused", status: "False", reason: "NotPaused" },
    t0,
  );
  it("isConditionTrue reads status True only; a missing condition is not true", () => {
    expect(isConditionTrue(list, "Ready")).toBe(true);
    expect(isConditionTrue(list, "Paused")).toBe(false);
    expect(isConditionTrue(list, "Missing")).toBe(false);
  });
  it("removeCondition drops one type", () => {
    expect(removeCondition(list, "Paused").map((c) => c.type)).toEqual(["Ready"]);
  });
  it("conditionsEqual ignores order but not content", () => {
    expect(conditionsEqual(list, [...list].reverse())).toBe(true);
    expect(conditionsEqual(list, setCondition(list, ready("True", "Available", 2), t1))).toBe(false);
  });
});
