import { describe, expect, it } from "vitest";
import { isSubset } from "./ensure.ts";

describe("isSubset", () => {
  const cases: Record<string, { desired: unknown; actual: unknown; want: boolean }> = {
    "extra fields on the server are fine": {
      desired: { metadata: { name: "a", labels: { x: "1" } } },
      actual: { metadata: { name: "a", uid: "u", labels: { x: "1", y: "2" } } },
      want: true,
    },
    "a changed value is drift": {
      desired: { spec: { hard: { pods: "20" } } },
      actual: { spec: { hard: { pods: "21" } } },
      want: false,
    },
    "a missing field is drift": { desired: { data: { a: "1" } }, actual: { data: {} }, want: false },
    "arrays compare element by element": {
      desired: { a: [{ x: 1 }] },
      actual: { a: [{ x: 1, y: 2 }] },
      want: true,
    },
    "a longer array is drift": { desired: { a: [1] }, actual: { a: [1, 2] }, want: false },
    "numbers and their text are equal": { desired: { port: 53 }, actual: { port: "53" }, want: true },
    "an object is not a string": { desired: { a: "1" }, actual: { a: { b: 1 } }, want: false },
  };
  for (const [name, c] of Object.entries(cases))
    it(name, () => expect(isSubset(c.desired, c.actual)).toBe(c.want));
});
