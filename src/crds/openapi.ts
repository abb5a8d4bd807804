// zod -> structural OpenAPI v3 for apiextensions.k8s.io/v1. zod's own JSON Schema output (target
// openapi-3.0, input side so defaulted fields are optional) is reshaped into what the apiserver calls a
// structural schema: a type on every node, no $ref/anyOf/oneOf/allOf/not (except the int-or-string
// shape Kubernetes itself uses), no additionalProperties next to properties, no nullable. Anything else
// is an error naming the field, so a schema change that the apiserver would reject fails at generation
// time, not at install time. The same pass insists on a description for every field (kubectl explain
// reads them) and on size bounds for every string, list and map (the apiserver's CEL cost estimate
// needs them).
import * as z from "zod";
import { QUANTITY_PATTERN } from "./fields.ts";

export type JSONSchemaProps = { [key: string]: unknown };

export class SchemaConversionError extends Error {
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path || "<root>"}: ${problem}`);
    this.name = "SchemaConversionError";
    this.path = path;
  }
}

const ALLOWED_KEYS = new Set([
  "type",
  "description",
  "properties",
  "required",
  "items",
  "additionalProperties",
  "enum",
  "default",
  "format",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
]);

function isRecord(value: unknown): value is JSONSchemaProps {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function child(path: string, segment: string): string {
  return path === "" ? segment : `${path}.${segment}`;
}

/** Keys that carry over to the rewritten int-or-string / preserve-unknown nodes. */
function annotations(node: JSONSchemaProps): JSONSchemaProps {
  const kept: JSONSchemaProps = {};
  for (const key of ["description", "default", "x-kubernetes-validations"]) {
    if (node[key] !== undefined) kept[key] = node[key];
  }
  return kept;
}

function normalize(node: JSONSchemaProps, path: string): JSONSchemaProps {
  if (node["x-kubernetes-int-or-string"] === true) {
    // The shape controller-gen emits for resource.Quantity; the apiserver accepts anyOf only like this.
    return {
      ...annotations(node),
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      pattern: QUANTITY_PATTERN.source,
    };
  }
  if (node["x-kubernetes-preserve-unknown-fields"] === true) {
    return { type: "object", ...annotations(node), "x-kubernetes-preserve-unknown-fields": true };
  }

  const out: JSONSchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema") continue;
    if (key === "additionalProperties" && value === false) continue; // unknown fields are pruned anyway
    if (!ALLOWED_KEYS.has(key)) throw new SchemaConversionError(path, `unsupported schema keyword "${key}"`);
    out[key] = value;
  }

  const type = out["type"];
  if (typeof type !== "string") throw new SchemaConversionError(path, "every node needs a single type");

  if (type === "integer" || type === "number") {
    // zod bounds plain ints by Number.MAX_SAFE_INTEGER; that says nothing to a user and is not int64.
    if (Math.abs(Number(out["minimum"])) === Number.MAX_SAFE_INTEGER) delete out["minimum"];
    if (Math.abs(Number(out["maximum"])) === Number.MAX_SAFE_INTEGER) delete out["maximum"];
    if (type === "integer") out["format"] = "int64";
  }

  if (type === "string") {
    if (out["format"] === "date-time") {
      // The apiserver checks date-time itself; zod's regex for it is not RE2.
      delete out["pattern"];
    } else if (out["maxLength"] === undefined && out["enum"] === undefined) {
      throw new SchemaConversionError(path, "strings need a maxLength (or an enum) so CEL costs are bounded");
    }
  }

  if (type === "array") {
    if (out["maxItems"] === undefined) throw new SchemaConversionError(path, "lists need a maxItems");
    if (!isRecord(out["items"])) throw new SchemaConversionError(path, "lists need an items schema");
    const items = normalize(out["items"], `${path}[]`);
    out["items"] = items;
    const listType = out["x-kubernetes-list-type"];
    if (listType === "map") {
      const keys = out["x-kubernetes-list-map-keys"];
      const itemProps = (items["properties"] ?? {}) as JSONSchemaProps;
      const required = (items["required"] ?? []) as string[];
      if (!Array.isArray(keys) || keys.length === 0) {
        throw new SchemaConversionError(path, "map lists need x-kubernetes-list-map-keys");
      }
      for (const key of keys as string[]) {
        const keySchema = itemProps[key];
        if (!isRecord(keySchema)) throw new SchemaConversionError(path, `list-map key ${key} is not a field`);
        if (!required.includes(key) && keySchema["default"] === undefined) {
          throw new SchemaConversionError(path, `list-map key ${key} must be required or defaulted`);
        }
      }
    } else if (listType === "set" && items["type"] === "object") {
      throw new SchemaConversionError(path, "set lists must hold scalars");
    }
  }

  if (type === "object") {
    const properties = out["properties"];
    const additional = out["additionalProperties"];
    if (isRecord(properties) && additional !== undefined) {
      throw new SchemaConversionError(path, "properties and additionalProperties are mutually exclusive");
    }
    if (isRecord(properties)) {
      const converted: JSONSchemaProps = {};
      for (const [name, propSchema] of Object.entries(properties)) {
        const propPath = child(path, name);
        if (!isRecord(propSchema))
          throw new SchemaConversionError(propPath, "property schema must be an object");
        const normalized = normalize(propSchema, propPath);
        if (typeof normalized["description"] !== "string" || normalized["description"].trim() === "") {
          throw new SchemaConversionError(
            propPath,
            "every field needs a description (kubectl explain prints it)",
          );
        }
        converted[name] = normalized;
      }
      out["properties"] = converted;
      if (Array.isArray(out["required"]) && out["required"].length === 0) delete out["required"];
    } else if (isRecord(additional)) {
      if (out["maxProperties"] === undefined)
        throw new SchemaConversionError(path, "maps need a maxProperties");
      out["additionalProperties"] = normalize(additional, `${path}{}`);
    } else {
      throw new SchemaConversionError(
        path,
        "objects need properties, a value schema, or preserve-unknown-fields",
      );
    }
  }
  return out;
}

/** The structural OpenAPI v3 schema of a zod schema, as a CRD's openAPIV3Schema (or part of one) needs it. */
export function toStructuralSchema(schema: z.ZodType, path = ""): JSONSchemaProps {
  const json = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    reused: "inline",
    unrepresentable: "throw",
  }) as JSONSchemaProps;
  return normalize(json, path);
}
