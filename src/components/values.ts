// Values: the catalog's defaults, the user's overrides over them, then values read from Secrets.
type Values = Record<string, unknown>;

function isPlainObject(v: unknown): v is Values {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Helm's own rule for -f files: maps merge key by key, anything else (lists too) is replaced. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergeValues(b, v) : v;
  }
  return out;
}

/** Sets a dotted path, creating maps on the way; refuses to walk through a non-map. */
export function setPath(values: Values, path: string, value: unknown): Values {
  const keys = path.split(".");
  const out = mergeValues({}, values);
  let at: Values = out;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    if (next === undefined) at[key] = {};
    else if (!isPlainObject(next)) throw new Error(`values path ${path}: ${key} is not a map`);
    at[key] = mergeValues({}, at[key] as Values);
    at = at[key] as Values;
  }
  at[keys[keys.length - 1] as string] = value;
  return out;
}

/** Key order does not matter to Helm, so it must not matter to the comparison either. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
