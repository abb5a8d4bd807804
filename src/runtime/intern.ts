// One copy of each repeated string in the caches. JSON.parse gives every value a string of its own, so
// 5,000 cached NetworkPolicies hold 5,000 copies of "homelab-operator", of their tenant's name, of
// "kubernetes.io/metadata.name" and so on (V8 shares only short ones). Strings are immutable: handing
// out an equal string that already exists changes nothing for readers.

/** Values unique to one object: interning them would only grow the table. */
const UNIQUE_IN_METADATA = new Set([
  "uid",
  "resourceVersion",
  "creationTimestamp",
  "deletionTimestamp",
  "name",
  "generateName",
  "selfLink",
]);
/** Longer strings are rarely repeated (certificates, scripts, JSON blobs). */
const MAX_LENGTH = 256;

export class StringTable {
  private readonly table = new Map<string, string>();
  private readonly capacity: number;

  constructor(capacity = 100_000) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.table.size;
  }

  intern(s: string): string {
    if (s.length > MAX_LENGTH) return s;
    const found = this.table.get(s);
    if (found !== undefined) return found;
    // Full: stop adding (what is in it keeps being shared) rather than evict and churn.
    if (this.table.size < this.capacity) this.table.set(s, s);
    return s;
  }

  /** Interns every string value (and every key of maps such as labels) of `obj` in place. */
  internObject<T>(obj: T): T {
    this.walk(obj, false);
    return obj;
  }

  private walk(value: unknown, isMetadata: boolean): void {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        if (typeof v === "string") value[i] = this.intern(v);
        else if (v && typeof v === "object") this.walk(v, false);
      }
      return;
    }
    if (!value || typeof value !== "object") return;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const v = record[key];
      if (typeof v === "string") {
        if (!(isMetadata && UNIQUE_IN_METADATA.has(key))) record[key] = this.intern(v);
      } else if (v && typeof v === "object") {
        this.walk(v, key === "metadata" && !isMetadata);
      }
    }
  }
}
