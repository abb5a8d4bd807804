import { describe, expect, it } from "vitest";
import * as z from "zod";
import { freeForm, mapListOf, quantity, setOf } from "./fields.ts";
import { SchemaConversionError, toStructuralSchema } from "./openapi.ts";
import { withRules } from "./rules.ts";

const name = z.string().max(10).describe("A name.");

describe("toStructuralSchema converts", () => {
  it("an object with defaults: typed, described, defaulted fields optional", () => {
    const out = toStructuralSchema(
      z
        .object({ name, replicas: z.number().int().min(1).default(1).describe("How many.") })
        .describe("Thing."),
    );
    expect(out).toEqual({
      type: "object",
      description: "Thing.",
      properties: {
        name: { type: "string", maxLength: 10, description: "A name." },
        replicas: { type: "integer", format: "int64", minimum: 1, default: 1, description: "How many." },
      },
      required: ["name"],
    });
  });

  it("a quantity into Kubernetes' int-or-string shape", () => {
    const out = toStructuralSchema(z.object({ q: quantity().describe("Size.") }));
    const q = (out["properties"] as Record<string, Record<string, unknown>>)["q"]!;
    expect(q["x-kubernetes-int-or-string"]).toBe(true);
    expect(q["anyOf"]).toEqual([{ type: "integer" }, { type: "string" }]);
    expect(q["type"]).toBeUndefined();
    expect(q["description"]).toBe("Size.");
  });

  it("free-form values into preserve-unknown-fields objects", () => {
    const out = toStructuralSchema(z.object({ values: freeForm().describe("Values.") }));
    expect((out["properties"] as Record<string, unknown>)["values"]).toEqual({
      type: "object",
      description: "Values.",
      "x-kubernetes-preserve-unknown-fields": true,
    });
  });

  it("list-maps and sets with their list types and CEL rules", () => {
    const item = z.object({ name, size: z.number().int().describe("Size.") });
    const list = withRules(mapListOf(item, "name", 4).describe("Items."), [
      { rule: "size(self) > 0", message: "needs an item", check: (l) => l.length > 0 },
    ]);
    const out = toStructuralSchema(z.object({ list, tags: setOf(name, 3).describe("Tags.") }));
    const props = out["properties"] as Record<string, Record<string, unknown>>;
    expect(props["list"]).toMatchObject({
      type: "array",
      maxItems: 4,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
      "x-kubernetes-validations": [{ rule: "size(self) > 0", message: "needs an item" }],
    });
    expect(props["tags"]).toMatchObject({ type: "array", "x-kubernetes-list-type": "set", maxItems: 3 });
  });
});

describe("toStructuralSchema refuses what the apiserver would refuse", () => {
  const cases: [string, z.ZodType, string][] = [
    [
      "a field without description",
      z.object({ name: z.string().max(3) }),
      "name: every field needs a description",
    ],
    ["an unbounded string", z.object({ name: z.string().describe("N.") }), "name: strings need a maxLength"],
    ["an unbounded list", z.object({ l: z.array(name).describe("L.") }), "l: lists need a maxItems"],
    [
      "a union",
      z.object({ u: z.union([name, z.number()]).describe("U.") }),
      'u: unsupported schema keyword "anyOf"',
    ],
    ["a nullable field", z.object({ n: name.nullable().describe("N.") }), "n: unsupported schema keyword"],
    [
      "a map without maxProperties",
      z.object({ m: z.record(z.string().max(3), name).describe("M.") }),
      "m: maps need a maxProperties",
    ],
    [
      "a list-map keyed by an optional field",
      z.object({
        l: z
          .array(z.object({ k: name.optional() }))
          .max(2)
          .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"] })
          .describe("L."),
      }),
      "l: list-map key k must be required or defaulted",
    ],
  ];
  it.each(cases)("%s", (_, schema, message) => {
    expect(() => toStructuralSchema(schema)).toThrow(SchemaConversionError);
    expect(() => toStructuralSchema(schema)).toThrow(message);
  });
});

describe("withRules", () => {
  it("keeps earlier rules and mirrors each rule in parse", () => {
    const base = withRules(z.object({ a: z.number().describe("A."), b: z.number().describe("B.") }), [
      { rule: "self.a > 0", message: "a must be positive", check: (v) => v.a > 0 },
    ]);
    const both = withRules(base, [
      { rule: "self.a < self.b", message: "a must be below b", fieldPath: ".a", check: (v) => v.a < v.b },
      { rule: "self.a == oldSelf.a", message: "a is immutable" },
    ]);
    expect(both.meta()?.["x-kubernetes-validations"]).toEqual([
      { rule: "self.a > 0", message: "a must be positive" },
      { rule: "self.a < self.b", message: "a must be below b", fieldPath: ".a" },
      { rule: "self.a == oldSelf.a", message: "a is immutable" },
    ]);
    const result = both.safeParse({ a: -1, b: -2 });
    expect(result.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["", "a must be positive"],
      ["a", "a must be below b"],
    ]);
  });
});
