import { describe, expect, it } from "vitest";
import { formatQuantity, parseQuantity, QuantityError, sumResources } from "./quantity.ts";

describe("parseQuantity", () => {
  const cases: Record<string, { input: string | number; milli: bigint }> = {
    "binary suffix": { input: "4Gi", milli: 4n * 1024n ** 3n * 1000n },
    "milli cpu": { input: "500m", milli: 500n },
    "plain integer": { input: "20", milli: 20_000n },
    "number input": { input: 3, milli: 3000n },
    "decimal fraction with suffix": { input: "1.5Gi", milli: 1536n * 1024n ** 2n * 1000n },
    "decimal suffix": { input: "2k", milli: 2_000_000n },
    exponent: { input: "2e3", milli: 2_000_000n },
    "fraction below a milli rounds up": { input: "0.0001", milli: 1n },
    negative: { input: "-1", milli: -1000n },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(parseQuantity(c.input)).toBe(c.milli));
  }
  it("rejects what is not a quantity, naming it", () => {
    expect(() => parseQuantity("4GB")).toThrow(QuantityError);
    expect(() => parseQuantity("lots")).toThrow(/"lots" is not a Kubernetes quantity/);
  });
});

describe("formatQuantity", () => {
  const cases: Record<string, { milli: bigint; text: string }> = {
    gibibytes: { milli: 6n * 1024n ** 3n * 1000n, text: "6Gi" },
    millis: { milli: 1500n, text: "1500m" },
    "plain count": { milli: 20_000n, text: "20" },
    "decimal thousands": { milli: 3_000_000n, text: "3k" },
    zero: { milli: 0n, text: "0" },
    "mebibytes when not whole gibibytes": { milli: 1536n * 1024n ** 2n * 1000n, text: "1536Mi" },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(formatQuantity(c.milli)).toBe(c.text));
  }
  it("round-trips what it formats", () => {
    for (const text of ["4Gi", "500m", "20", "8Gi", "100m", "1k"]) {
      expect(formatQuantity(parseQuantity(text))).toBe(text);
    }
  });
});

describe("sumResources", () => {
  it("adds lists key by key, treating missing keys as zero", () => {
    expect(
      sumResources([
        { "requests.memory": "1Gi", pods: "2" },
        { "requests.memory": "512Mi", "limits.memory": "1Gi" },
      ]),
    ).toEqual({ "limits.memory": "1Gi", pods: "2", "requests.memory": "1536Mi" });
  });
});
