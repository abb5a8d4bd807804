// Parameter verification as Proxmox does it (pve-common src/PVE/JSONSchema.pm `check_prop`,
// `check_object`, `check_type`, `parse_property_string`), driven by the official API schema. The error
// texts are Proxmox's, so a client sees the same `errors` object a real node would send with its
// "400 Parameter verification failed.".
import { HASH_FORMATS, LIST_ALIASES, type PropertySchema, STRING_FORMATS, splitList } from "./formats.ts";

export type ParamErrors = Record<string, string>;

export interface ParametersSchema {
  properties?: Record<string, PropertySchema>;
  additionalProperties?: unknown;
}

/**
 * Highest index of the `name[n]` families the API dump collapses into one key (qemu-server
 * `$MAX_NETS` = 32, `$MAX_IDE_DISKS` = 4, `$MAX_SCSI_DISKS` = 31, ...).
 */
const INDEXED_MAX: Record<string, number> = {
  net: 31,
  ipconfig: 31,
  ide: 3,
  sata: 5,
  scsi: 30,
  virtio: 15,
  unused: 255,
  serial: 3,
  parallel: 2,
  usb: 13,
  hostpci: 15,
  numa: 7,
  virtiofs: 9,
  mp: 255,
};

/** Finds the schema for a key, resolving `net0` to the dump's `net[n]`. */
export function propertyFor(
  properties: Record<string, PropertySchema>,
  key: string,
): PropertySchema | undefined {
  if (Object.hasOwn(properties, key)) return properties[key];
  const m = /^([a-z]+)(\d+)$/.exec(key);
  if (!m) return undefined;
  const family = m[1]!;
  const schema = properties[`${family}[n]`];
  if (!schema) return undefined;
  const max = INDEXED_MAX[family] ?? 31;
  return Number(m[2]) <= max && String(Number(m[2])) === m[2] ? schema : undefined;
}

function addError(errors: ParamErrors, path: string, message: string): void {
  const key = path || "_root";
  // Perl joins repeated errors with a literal backslash-n (single-quoted '\n' in add_error).
  errors[key] = errors[key] ? `${errors[key]}\\n${message}` : message;
}

const isNumber = (v: string) => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v);
const isInteger = (v: string) => /^[+-]?\d+$/.test(v);

function scalarText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return value ? "1" : "0";
  return undefined;
}

function checkType(path: string, type: unknown, value: unknown, errors: ParamErrors): boolean {
  if (!type || type === "any" || type === "string") {
    if (type === "string" && (Array.isArray(value) || (value !== null && typeof value === "object"))) {
      addError(errors, path, `type check ('string') failed - got ${Array.isArray(value) ? "ARRAY" : "HASH"}`);
      return false;
    }
    return true;
  }
  if (type === "array") {
    if (Array.isArray(value)) return true;
    addError(errors, path, "type check ('array') failed");
    return false;
  }
  if (type === "object") {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return true;
    addError(errors, path, "type check ('object') failed");
    return false;
  }
  if (type === "boolean" && typeof value === "boolean") return true;
  const text = scalarText(value);
  if (text === undefined) {
    addError(errors, path, `type check ('${type}') failed - got ${Array.isArray(value) ? "ARRAY" : "HASH"}`);
    return false;
  }
  const ok =
    type === "boolean"
      ? text === "1" || text === "0"
      : type === "integer"
        ? isInteger(text)
        : type === "number"
          ? isNumber(text)
          : true;
  if (!ok) addError(errors, path, `type check ('${type}') failed - got '${text}'`);
  return ok;
}

function checkFormat(format: unknown, value: string, path: string): void {
  if (format && typeof format === "object") {
    parsePropertyString(format as Record<string, PropertySchema>, value, path);
    return;
  }
  if (typeof format !== "string" || format === "regex" || format === "string") return;
  const hash = HASH_FORMATS[format];
  if (hash) {
    parsePropertyString(hash, value, path);
    return;
  }
  const listBase = LIST_ALIASES[format];
  if (listBase) {
    for (const item of splitList(value)) STRING_FORMATS[listBase]?.(item);
    return;
  }
  const m = /^(.*?)(?:-(list|opt))?$/.exec(format)!;
  const validator = STRING_FORMATS[m[1]!];
  // Formats Proxmox registers that this simulator does not model are accepted unchecked; see
  // UNCHECKED_FORMATS in README.md. Everything the client sends has a validator above.
  if (!validator) return;
  if (m[2] === "list") for (const item of splitList(value)) validator(item);
  else if (m[2] === "opt") {
    if (value) validator(value);
  } else validator(value);
}

class FormatError extends Error {
  readonly errors: ParamErrors;
  constructor(errors: ParamErrors) {
    super("format error\n");
    this.errors = errors;
  }
  /** PVE::Exception stringification: the message, then one "key: error" line per entry. */
  override toString(): string {
    return (
      this.message +
      Object.entries(this.errors)
        .map(([k, v]) => `${k}: ${v}\n`)
        .join("")
    );
  }
}

const parseBoolean = (v: string) =>
  /^(1|on|yes|true)$/i.test(v) ? "1" : /^(0|off|no|false)$/i.test(v) ? "0" : v;

/** `key=value,key=value` with an optional default key, aliases and key aliases. */
export function parsePropertyString(
  format: Record<string, PropertySchema>,
  data: string,
  path: string,
): Record<string, string> {
  const res: Record<string, string> = {};
  let defaultKey: string | undefined;
  for (const part of data.split(",")) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/s.exec(part);
    if (kv) {
      let key = kv[1]!;
      let value = kv[2]!;
      if (res[key] !== undefined) throw new Error(`duplicate key in comma-separated list property: ${key}\n`);
      let schema = format[key];
      const alias = schema?.["alias"];
      if (typeof alias === "string") {
        const keyAlias = schema?.["keyAlias"];
        if (typeof keyAlias === "string") {
          if (res[keyAlias] !== undefined) throw new Error(`key alias '${keyAlias}' is already defined\n`);
          res[keyAlias] = key;
        }
        key = alias;
        schema = format[key];
      }
      if (!schema) throw new Error(`invalid key in comma-separated list property: ${key}\n`);
      if (schema["type"] === "boolean") value = parseBoolean(value);
      res[key] = value;
    } else if (!part.includes("=")) {
      if (defaultKey) throw new Error(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      defaultKey = Object.keys(format).find((k) => format[k]?.["default_key"]);
      if (!defaultKey) throw new Error("value without key, but schema does not define a default key\n");
      if (res[defaultKey]) throw new Error(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      res[defaultKey] = part;
    } else {
      throw new Error("missing key in comma-separated list property\n");
    }
  }
  const errors: ParamErrors = {};
  checkObject(path, format, res, false, errors);
  if (Object.keys(errors).length > 0) throw new FormatError(errors);
  return res;
}

function checkProp(value: unknown, schema: PropertySchema, path: string, errors: ParamErrors): void {
  if (value === undefined || value === null) {
    if (!schema["optional"] && !schema["alias"])
      addError(errors, path, "property is missing and it is not optional");
    return;
  }
  if (!checkType(path, schema["type"], value, errors)) return;
  if (Array.isArray(value)) {
    const items = schema["items"] as PropertySchema | undefined;
    if (items) {
      for (const [i, el] of value.entries()) checkProp(el, items, `${path}[${i}]`, errors);
    }
    return;
  }
  if (typeof value === "object") return;
  const text = scalarText(value)!;
  if (schema["format"]) {
    try {
      checkFormat(schema["format"], text, path);
    } catch (err) {
      addError(
        errors,
        path,
        `invalid format - ${String(err instanceof FormatError ? err : (err as Error).message)}`,
      );
      return;
    }
  }
  const pattern = schema["pattern"];
  if (typeof pattern === "string") {
    let re: RegExp | undefined;
    try {
      // Perl's `(?^:…)` (a group with default flags, how qr// interpolates) is JavaScript's `(?:…)`.
      re = new RegExp(`^(?:${pattern.replaceAll("(?^:", "(?:")})$`, "s");
    } catch {
      re = undefined; // a Perl-only construct: Proxmox checks it, we cannot
    }
    if (re && !re.test(text)) {
      addError(errors, path, "value does not match the regex pattern");
      return;
    }
  }
  if (typeof schema["maxLength"] === "number" && text.length > schema["maxLength"]) {
    addError(errors, path, `value may only be ${schema["maxLength"]} characters long`);
    return;
  }
  if (typeof schema["minLength"] === "number" && text.length < schema["minLength"]) {
    addError(errors, path, `value must be at least ${schema["minLength"]} characters long`);
    return;
  }
  if (isNumber(text)) {
    if (typeof schema["maximum"] === "number" && Number(text) > schema["maximum"]) {
      addError(errors, path, `value must have a maximum value of ${schema["maximum"]}`);
      return;
    }
    if (typeof schema["minimum"] === "number" && Number(text) < schema["minimum"]) {
      addError(errors, path, `value must have a minimum value of ${schema["minimum"]}`);
      return;
    }
  }
  const enumValues = schema["enum"];
  if (Array.isArray(enumValues) && !enumValues.map(String).includes(text)) {
    addError(
      errors,
      path,
      `value '${text}' does not have a value in the enumeration '${enumValues.join(", ")}'`,
    );
  }
}

function checkObject(
  path: string,
  properties: Record<string, PropertySchema>,
  value: Record<string, unknown>,
  additionalProperties: unknown,
  errors: ParamErrors,
): void {
  for (const [key, schema] of Object.entries(properties)) {
    if (key.endsWith("[n]")) continue;
    checkProp(value[key], schema, path ? `${path}.${key}` : key, errors);
  }
  for (const key of Object.keys(value)) {
    const keyPath = path ? `${path}.${key}` : key;
    if (Object.hasOwn(properties, key) && !key.endsWith("[n]")) {
      const requires = properties[key]?.["requires"];
      if (typeof requires === "string" && value[requires] === undefined)
        addError(
          errors,
          path ? `${path}.${requires}` : requires,
          `missing property - '${keyPath}' requires this property`,
        );
      continue;
    }
    const indexed = propertyFor(properties, key);
    if (indexed) {
      checkProp(value[key], indexed, keyPath, errors);
      continue;
    }
    if (!additionalProperties) {
      addError(
        errors,
        keyPath,
        "property is not defined in schema and the schema does not allow additional properties",
      );
    }
  }
}

/** Verifies request parameters (path, query and body merged) against one method's schema. */
export function verifyParameters(schema: ParametersSchema, params: Record<string, unknown>): ParamErrors {
  const errors: ParamErrors = {};
  checkObject("", schema.properties ?? {}, params, schema.additionalProperties ?? 0, errors);
  return errors;
}
