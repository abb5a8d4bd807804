import type { KubeClient } from "./client.ts";
import { type Condition, type ConditionInput, setCondition } from "./conditions.ts";
import { type KubeObject, keyOf, objectKeyOf } from "./object.ts";

/**
 * What one field manager says about an object's status. Server-side apply semantics: this is the whole of
 * what the manager owns, so a field or condition it owned before and leaves out now is removed (unless
 * another manager also owns it). Pass every field and condition the manager owns on every call; a code
 * path that only knows part of it (e.g. a failure report) uses a manager of its own (`StatusWriteOptions.part`).
 */
export interface OwnedStatus {
  /** Top-level `.status` fields other than `conditions`, each with its whole value. */
  fields?: Record<string, unknown>;
  /** Conditions by type; lastTransitionTime is kept from the object unless the status flips. */
  conditions?: ConditionInput[];
}

export interface StatusWriteOptions {
  /** Appended to the field manager (`<manager>/<part>`) for a code path that owns only part of the status. */
  part?: string;
}

interface Written {
  uid: string | undefined;
  /** The resourceVersion the cache showed when we wrote; while it still shows it, our write is not in it. */
  resourceVersionBefore: string | undefined;
  status: Record<string, unknown>;
}

/** Past this many remembered writes the oldest are dropped; forgetting only costs one redundant no-op write. */
const MAX_REMEMBERED = 10_000;

/**
 * Writes status with server-side apply under one field manager per writer (`homelab-operator/<controller>`),
 * so two controllers that own different conditions of one object never erase each other's: conditions are a
 * list-map keyed by `type` in every CRD of ours, and SSA merges such lists item by item. A merge patch, by
 * contrast, replaces the whole list.
 *
 * It writes only when what this manager owns would change: a reconcile that fails the same way a hundred
 * times writes its Ready=False once. Compared with the cached object, or with the response of our own last
 * write while the cache has not caught up with it yet (otherwise a fast retry would see its own write
 * missing, write again and move lastTransitionTime).
 */
export class StatusWriter {
  private readonly client: KubeClient;
  readonly fieldManager: string;
  private readonly now: () => Date;
  private readonly written = new Map<string, Written>();

  constructor(client: KubeClient, opts: { fieldManager: string; now?: () => Date }) {
    this.client = client;
    this.fieldManager = opts.fieldManager;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Applies `owned` to `obj`'s status when it differs from what the object shows; true when it wrote.
   * `client` overrides the writer's own, e.g. a reconcile's signal-bound client.
   */
  async write(
    obj: KubeObject,
    owned: OwnedStatus,
    opts: StatusWriteOptions = {},
    client: KubeClient = this.client,
  ): Promise<boolean> {
    const manager = opts.part ? `${this.fieldManager}/${opts.part}` : this.fieldManager;
    const memoKey = `${manager}|${keyOf(objectKeyOf(obj))}`;
    const base = this.baseStatus(memoKey, obj);
    const desired = desiredStatus(base, owned, this.now());
    if (!differs(base, desired)) return false;
    const response = await client.applyStatus<KubeObject>(
      {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: {
          name: obj.metadata?.name,
          ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
        },
        status: desired,
      },
      { fieldManager: manager },
    );
    this.remember(memoKey, {
      uid: obj.metadata?.uid,
      resourceVersionBefore: obj.metadata?.resourceVersion,
      status: (response.status ?? {}) as Record<string, unknown>,
    });
    return true;
  }

  private baseStatus(memoKey: string, obj: KubeObject): Record<string, unknown> {
    const cached = (obj.status ?? {}) as Record<string, unknown>;
    const last = this.written.get(memoKey);
    if (!last) return cached;
    if (last.uid === obj.metadata?.uid && last.resourceVersionBefore === obj.metadata?.resourceVersion) {
      return last.status;
    }
    this.written.delete(memoKey); // the cache has moved on: it is the truth again
    return cached;
  }

  private remember(memoKey: string, entry: Written): void {
    this.written.delete(memoKey);
    this.written.set(memoKey, entry);
    if (this.written.size > MAX_REMEMBERED) this.written.delete(this.written.keys().next().value!);
  }
}

/** The apply configuration: the owned fields, and the owned conditions merged with transition-time rules. */
function desiredStatus(
  base: Record<string, unknown>,
  owned: OwnedStatus,
  now: Date,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(owned.fields ?? {})) {
    if (field === "conditions") throw new Error("status conditions go in `conditions`, not `fields`");
    if (value !== undefined) out[field] = value;
  }
  if (owned.conditions) {
    const current = (base["conditions"] ?? []) as Condition[];
    out["conditions"] = owned.conditions.map((input) => {
      const merged = setCondition(current, input, now);
      return merged.find((c) => c.type === input.type)!;
    });
  }
  return out;
}

/** Whether applying `desired` would change anything `base` shows (conditions compared by type). */
function differs(base: Record<string, unknown>, desired: Record<string, unknown>): boolean {
  for (const [field, value] of Object.entries(desired)) {
    if (field === "conditions") {
      const current = (base["conditions"] ?? []) as Condition[];
      for (const c of value as Condition[]) {
        const existing = current.find((x) => x.type === c.type);
        if (!existing || canonical(existing) !== canonical(c)) return true;
      }
    } else if (canonical(base[field]) !== canonical(value)) {
      return true;
    }
  }
  return false;
}

/** JSON with object keys sorted, so two equal values compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
