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
  owned: OwnedKeys | undefined;
}

/** Which top-level status fields and condition types one field manager owns, per managedFields. */
export interface OwnedKeys {
  fields: Set<string>;
  conditions: Set<string>;
}

/** Past this many objects with remembered writes the oldest are dropped; forgetting only costs one redundant no-op write. */
const MAX_REMEMBERED = 10_000;

/**
 * Writes status with server-side apply under one field manager per writer (`homelab-operator/<controller>`),
 * so two controllers that own different conditions of one object never erase each other's: conditions are a
 * list-map keyed by `type` in every CRD of ours, and SSA merges such lists item by item. A merge patch, by
 * contrast, replaces the whole list.
 *
 * It writes only when what this manager owns would change: a reconcile that fails the same way a hundred
 * times writes its Ready=False once. "Owns" includes what it stops owning: a field or condition the
 * object's managedFields list under this manager and `owned` leaves out is a change, so the apply that
 * removes it is sent. The informer's default transform keeps our own managers' managedFields entries for
 * this (src/runtime/informer.ts), so the owned set survives a restart and an idle object gets no write. Compared with the cached object, or with what our own last
 * write sent while the cache has not caught up with it yet (otherwise a fast retry would see its own write
 * missing, write again and move lastTransitionTime).
 */
export class StatusWriter {
  private readonly client: KubeClient;
  readonly fieldManager: string;
  private readonly now: () => Date;
  /** Our last write per object (kind and key), per field manager, until the cache shows that object anew. */
  private readonly written = new Map<string, Map<string, Written>>();

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
    const objectKey = memoKeyOf(obj);
    const { status: base, owned: ownedNow } = this.base(objectKey, obj, manager);
    const desired = desiredStatus(base, owned, this.now());
    if (!differs(base, desired) && !dropsOwned(ownedNow, desired)) return false;
    // The response (the whole object with every manager's managedFields) is not read: after a forced
    // apply the server holds for this manager exactly what was sent, and the manager owns exactly that.
    await client.applyStatus<KubeObject>(
      {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: {
          name: obj.metadata?.name,
          ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
        },
        status: desired,
      },
      { fieldManager: manager, discardResponse: true },
    );
    this.remember(objectKey, manager, {
      uid: obj.metadata?.uid,
      resourceVersionBefore: obj.metadata?.resourceVersion,
      status: desired,
      owned: keysOf(desired),
    });
    return true;
  }

  /**
   * The cache now shows `obj` (an informer's add or update): what we remembered writing to it from an
   * earlier version is in it or overtaken, so the cached object is the truth again and the memory goes.
   * The same as the check in `base`, done as soon as the cache moves rather than at the next write, so
   * an object written once is not remembered twice (in the cache and here) for as long as it stays idle.
   */
  observed(obj: KubeObject): void {
    const key = memoKeyOf(obj);
    const byManager = this.written.get(key);
    if (!byManager) return;
    for (const [manager, last] of byManager) if (!predates(obj, last)) byManager.delete(manager);
    if (byManager.size === 0) this.written.delete(key);
  }

  /** How many objects have a write remembered (for tests). */
  get rememberedObjects(): number {
    return this.written.size;
  }

  /** The object is gone from the cache: nothing written to it is remembered. */
  forget(obj: KubeObject): void {
    this.written.delete(memoKeyOf(obj));
  }

  private base(
    objectKey: string,
    obj: KubeObject,
    manager: string,
  ): { status: Record<string, unknown>; owned: OwnedKeys | undefined } {
    const cached = {
      status: (obj.status ?? {}) as Record<string, unknown>,
      owned: ownedStatusKeys(obj, manager),
    };
    const byManager = this.written.get(objectKey);
    const last = byManager?.get(manager);
    if (!byManager || !last) return cached;
    if (predates(obj, last)) return { status: last.status, owned: last.owned };
    byManager.delete(manager); // the cache has moved on: it is the truth again
    if (byManager.size === 0) this.written.delete(objectKey);
    return cached;
  }

  private remember(objectKey: string, manager: string, entry: Written): void {
    const byManager = this.written.get(objectKey) ?? new Map<string, Written>();
    this.written.delete(objectKey);
    byManager.set(manager, entry);
    this.written.set(objectKey, byManager);
    if (this.written.size > MAX_REMEMBERED) this.written.delete(this.written.keys().next().value!);
  }
}

function memoKeyOf(obj: KubeObject): string {
  return `${obj.apiVersion}/${obj.kind}|${keyOf(objectKeyOf(obj))}`;
}

/** Whether `obj` is still the version our write was made against (so the write is not in it yet). */
function predates(obj: KubeObject, last: Written): boolean {
  return last.uid === obj.metadata?.uid && last.resourceVersionBefore === obj.metadata?.resourceVersion;
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

/** Whether `desired` leaves out a field or condition type `manager` owns now: the apply would remove it. */
function dropsOwned(owned: OwnedKeys | undefined, desired: Record<string, unknown>): boolean {
  if (!owned) return false; // managedFields not shown (a transform dropped them): values are all we can compare
  const sent = keysOf(desired);
  for (const f of owned.fields) if (!sent.fields.has(f)) return true;
  for (const t of owned.conditions) if (!sent.conditions.has(t)) return true;
  return false;
}

function keysOf(status: Record<string, unknown>): OwnedKeys {
  return {
    fields: new Set(Object.keys(status).filter((f) => f !== "conditions")),
    conditions: new Set(((status["conditions"] ?? []) as Condition[]).map((c) => c.type)),
  };
}

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/**
 * What `manager` owns of `.status` per `obj`'s managedFields (fieldsV1: `f:<field>` keys, conditions as
 * `k:{"type":…}` keys of `f:conditions`); undefined when the object carries no managedFields at all.
 */
export function ownedStatusKeys(obj: KubeObject, manager: string): OwnedKeys | undefined {
  const entries = obj.metadata?.["managedFields"] as ManagedFieldsEntry[] | undefined;
  if (!Array.isArray(entries)) return undefined;
  const owned: OwnedKeys = { fields: new Set(), conditions: new Set() };
  for (const e of entries) {
    if (e.manager !== manager || e.subresource !== "status") continue;
    const status = (e.fieldsV1?.["f:status"] ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(status)) {
      if (!key.startsWith("f:")) continue;
      const field = key.slice(2);
      if (field !== "conditions") {
        owned.fields.add(field);
        continue;
      }
      for (const item of Object.keys((value ?? {}) as Record<string, unknown>)) {
        if (!item.startsWith("k:")) continue;
        const type = (JSON.parse(item.slice(2)) as { type?: unknown }).type;
        if (typeof type === "string") owned.conditions.add(type);
      }
    }
  }
  return owned;
}

/** JSON with object keys sorted, so two equal values compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
