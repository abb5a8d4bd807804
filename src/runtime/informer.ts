import type { Logger } from "pino";
import { JitteredBackoff } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import { describeError, isGone, isTooLargeResourceVersion } from "./errors.ts";
import { StringTable } from "./intern.ts";
import { type GroupVersionKind, gvkString, type KubeObject, keyOf, objectKeyOf, sleep } from "./object.ts";

export interface EventHandler<T extends KubeObject = KubeObject> {
  onAdd?(obj: T): void;
  /** Also called with old === new on every periodic resync. */
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export type IndexFunc<T extends KubeObject = KubeObject> = (obj: T) => string[];

/**
 * Applied to every object before it is cached and handed to handlers (controller-runtime's cache
 * TransformFunc): return the object with what no reader needs removed. It may change `obj` in place; the
 * informer owns it. It must keep metadata.name, namespace and resourceVersion.
 */
export type TransformFunc = (obj: KubeObject) => KubeObject;

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * The default transform: drops metadata.managedFields (often larger than the object itself; SSA works
 * without it) and kubectl's last-applied-configuration annotation (a second copy of the whole object as
 * text). Given `ownFieldManager`, it keeps the status entries of that manager and its `<manager>/…`
 * sub-managers, cut to the owned fields and condition types: StatusWriter reads them to notice a field
 * or condition it stops owning (status.ts).
 */
export function stripManagedFields(obj: KubeObject, ownFieldManager?: string): KubeObject {
  const meta = obj.metadata;
  if (!meta) return obj;
  if (ownFieldManager !== undefined) keepOwnManagedFields(obj, ownFieldManager);
  else if (meta.managedFields !== undefined) delete meta.managedFields;
  if (meta.annotations && LAST_APPLIED in meta.annotations) {
    delete meta.annotations[LAST_APPLIED];
    if (Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  return obj;
}

/** The strings of every informer's objects, shared process-wide (see intern.ts). */
const strings = new StringTable();

/**
 * What an informer applies when no transform is given: stripManagedFields, then one shared copy of each
 * repeated string (labels, owner references, spec values). A custom transform replaces all of it.
 */
export function defaultTransform(obj: KubeObject, ownFieldManager?: string): KubeObject {
  return strings.internObject(stripManagedFields(obj, ownFieldManager));
}

/** Chains transforms left to right, e.g. `compose(stripManagedFields, dropData)`. */
export function composeTransforms(...fns: TransformFunc[]): TransformFunc {
  return (obj) => fns.reduce((o, fn) => fn(o), obj);
}

/** What an informer is asked to cache; also its identity in the InformerFactory. */
export interface InformerSelection {
  namespace?: string;
  labelSelector?: string;
  /** Server-side field selector, e.g. `reason=FailedCreate` on Events. */
  fieldSelector?: string;
  /**
   * Cache PartialObjectMetadata only (apiVersion/kind set to the watched kind, metadata, no body), for
   * readers that need names, labels, owners or deletion timestamps but not `data` or `spec`.
   */
  metadataOnly?: boolean;
  /** Default: defaultTransform (stripManagedFields and string interning). */
  transform?: TransformFunc;
}

export interface InformerOptions extends InformerSelection {
  /** Every period, onUpdate(obj, obj) is called for each cached object (0 disables). Default 10 h, as controller-runtime. */
  resyncPeriodMs?: number;
  pageSize?: number;
  /** Reconnect backoff after a failed list or watch. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * No byte for this long means a dead (half-open) connection. Default 5 min: kube-apiserver 1.36 sends a
   * BOOKMARK about every 60 s on an idle watch that allows them (measured on the test control plane).
   */
  watchIdleTimeoutMs?: number;
  logger?: Logger;
  /** Observes every relist (initial, 410 Gone, 504 too large resource version); for tests and metrics. */
  onList?: (reason: string) => void;
}

/**
 * list + watch of one kind into a local cache, keyed by `namespace/name`.
 *
 * Behaviour copied from client-go's Reflector, not from client-node's ListWatch (which stops for good on
 * any non-410 error, see operator-engineering.md §2.1):
 * - any list or watch failure reconnects after a jittered exponential backoff, resuming from the last
 *   resourceVersion seen (events or bookmarks, requested with allowWatchBookmarks);
 * - 410 Gone (the resourceVersion was compacted away) clears the resume point: the next cycle relists and
 *   reconciles the cache against the list, emitting adds, updates and deletes for what changed meanwhile;
 * - so does 504 "Too large resource version" (the resume point is ahead of the server, e.g. after an etcd
 *   restore): resuming would be refused forever, as client-go's isTooLargeResourceVersionError;
 * - server-side watch timeouts are randomised (5–10 min) so watches do not all restart together.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly gvk: GroupVersionKind;
  readonly namespace: string | undefined;
  readonly labelSelector: string | undefined;
  readonly metadataOnly: boolean;
  private readonly client: KubeClient;
  private readonly transform: TransformFunc;
  private readonly opts: InformerOptions;
  private readonly store = new Map<string, T>();
  /** The same objects by namespace, so list(namespace) costs what it returns, not the whole cache. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private readonly handlers: EventHandler<T>[] = [];
  private readonly backoff: JitteredBackoff;
  private resourceVersion = "";
  private relistReason = "initial";
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger | undefined;

  constructor(client: KubeClient, gvk: GroupVersionKind, opts: InformerOptions = {}) {
    this.client = client;
    this.gvk = gvk;
    this.namespace = opts.namespace;
    this.labelSelector = opts.labelSelector;
    this.metadataOnly = opts.metadataOnly ?? false;
    // The default keeps this client's own status managedFields entries (StatusWriter reads them). A
    // metadata-only cache holds no status to write against, and a Secret's managedFields name its data
    // keys: there they all go.
    const ownFieldManager = this.metadataOnly ? undefined : client.fieldManager;
    this.transform = opts.transform ?? ((o: KubeObject) => defaultTransform(o, ownFieldManager));
    this.opts = opts;
    this.backoff = new JitteredBackoff(opts.backoff);
    this.log = opts.logger?.child({
      informer: gvkString(gvk),
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
      ...(opts.metadataOnly ? { metadataOnly: true } : {}),
    });
  }

  /** How many objects the cache holds. */
  get size(): number {
    return this.store.size;
  }

  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexers.has(name)) return;
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.store) for (const v of fn(obj)) addToIndex(index, v, key);
  }

  hasIndex(name: string): boolean {
    return this.indexers.has(name);
  }

  /** Objects whose index function returned `value`. */
  byIndex(name: string, value: string): T[] {
    const keys = this.indices.get(name)?.get(value);
    if (!this.indexers.has(name)) throw new Error(`informer ${gvkString(this.gvk)} has no index ${name}`);
    return [...(keys ?? [])].map((k) => this.store.get(k)).filter((o): o is T => o !== undefined);
  }

  /**
   * Registers handlers. If the cache already holds objects, the new handler first receives an add for each,
   * so a controller that joins a shared informer late still sees everything.
   */
  addHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
    for (const obj of this.store.values()) handler.onAdd?.(obj);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    if (!namespace) return [...this.store.values()];
    return [...(this.byNamespace.get(namespace)?.values() ?? [])];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  hasSynced(): boolean {
    return this.synced;
  }

  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Resolves when the first list has filled the cache; rejects when the signal aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new Error(`cache of ${gvkString(this.gvk)} did not sync`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
    const period = this.opts.resyncPeriodMs ?? 10 * 60 * 60 * 1000;
    if (period > 0) {
      this.resyncTimer = setInterval(() => this.resync(), period);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
  }

  /** Re-delivers every cached object as an update: level-triggered controllers re-check the world. */
  resync(): void {
    for (const obj of this.store.values()) this.emit("update", obj, obj);
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist(signal, this.relistReason);
        if (signal.aborted) break;
        await this.watch(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          // The resume point is gone from etcd's history: only a fresh list can catch up.
          this.log?.info({ err: describeError(err) }, "Watch resourceVersion expired, relisting");
          this.resourceVersion = "";
          this.relistReason = "resume point lost";
          continue;
        }
        if (isTooLargeResourceVersion(err)) {
          // The server has not seen our resume point; retrying the same one cannot succeed if etcd went
          // backwards. A fresh list starts from what the server has.
          this.log?.warn({ err: describeError(err) }, "Watch resourceVersion too large, relisting");
          this.resourceVersion = "";
          this.relistReason = "too large resource version";
          continue;
        }
        const delay = this.backoff.next();
        this.log?.warn({ err: describeError(err), retryInMs: delay }, "List/watch failed, reconnecting");
        await sleep(delay, signal);
      }
    }
  }

  private async relist(signal: AbortSignal, reason: string): Promise<void> {
    this.opts.onList?.(reason);
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.client.list<T>(this.gvk, {
        ...(this.namespace ? { namespace: this.namespace } : {}),
        ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
        limit: this.opts.pageSize ?? 500,
        ...(cont ? { continue: cont } : {}),
        ...(this.metadataOnly ? { metadataOnly: true } : {}),
        signal,
      });
      // Transformed page by page, so what the transform drops is garbage before the next page arrives.
      for (const item of page.items) items.push(this.prepare(item));
      rv = page.resourceVersion;
      cont = page.continue;
    } while (cont);
    this.replace(items);
    this.resourceVersion = rv;
    this.backoff.reset();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.log?.debug({ count: items.length, resourceVersion: rv, reason }, "Listed");
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const stream = this.client.watch<T>(this.gvk, {
      ...(this.namespace ? { namespace: this.namespace } : {}),
      ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
      ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: Math.floor(300 + Math.random() * 300),
      idleTimeoutMs: this.opts.watchIdleTimeoutMs ?? 5 * 60 * 1000,
      ...(this.metadataOnly ? { metadataOnly: true } : {}),
      signal,
    });
    const startedAt = Date.now();
    let events = 0;
    for await (const event of stream) {
      events++;
      const rv = event.object.metadata?.resourceVersion;
      if (event.type === "BOOKMARK") {
        if (rv) this.resourceVersion = rv;
        continue;
      }
      const obj = event.object;
      if (event.type === "DELETED") this.remove(this.prepare(obj));
      else this.upsert(this.prepare(obj));
      if (rv) this.resourceVersion = rv;
      this.backoff.reset();
    }
    // client-go's "very short watch": a stream that ends at once with nothing in it (a proxy or a server
    // going away) must not turn into a tight reconnect loop.
    if (events === 0 && Date.now() - startedAt < 1000 && !signal.aborted) {
      throw new Error("watch closed immediately without events");
    }
  }

  /** Makes the cache equal to a fresh (prepared) list, emitting the differences. */
  private replace(items: T[]): void {
    const fresh = new Map(items.map((o) => [keyOf(objectKeyOf(o)), o]));
    for (const [key, old] of this.store) if (!fresh.has(key)) this.remove(old);
    for (const obj of items) this.upsert(obj);
  }

  /**
   * Every cached object says what it is: list items carry no apiVersion/kind, and metadata-only ones say
   * meta.k8s.io/v1 PartialObjectMetadata; readers compare against the kind they watch (controller-runtime
   * sets the watched GVK on PartialObjectMetadata the same way).
   */
  private prepare(incoming: T): T {
    incoming.apiVersion = this.gvk.apiVersion;
    incoming.kind = this.gvk.kind;
    return this.transform(incoming) as T;
  }

  private upsert(obj: T): void {
    const key = keyOf(objectKeyOf(obj));
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    if (old) this.unindex(key, old);
    this.store.set(key, obj);
    const ns = obj.metadata?.namespace;
    if (ns) {
      let inNs = this.byNamespace.get(ns);
      if (!inNs) {
        inNs = new Map();
        this.byNamespace.set(ns, inNs);
      }
      inNs.set(key, obj);
    }
    this.index(key, obj);
    if (old) this.emit("update", old, obj);
    else this.emit("add", obj);
  }

  private remove(obj: T): void {
    const key = keyOf(objectKeyOf(obj));
    const old = this.store.get(key);
    if (!old) return;
    this.store.delete(key);
    const ns = old.metadata?.namespace;
    const inNs = ns ? this.byNamespace.get(ns) : undefined;
    inNs?.delete(key);
    if (ns && inNs?.size === 0) this.byNamespace.delete(ns);
    this.unindex(key, old);
    this.emit("delete", obj);
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) addToIndex(index, v, key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }

  private emit(kind: "add" | "update" | "delete", a: T, b?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === "add") h.onAdd?.(a);
        else if (kind === "update") h.onUpdate?.(a, b!);
        else h.onDelete?.(a);
      } catch (err) {
        this.log?.error({ err: describeError(err) }, "Event handler threw");
      }
    }
  }
}

function keepOwnManagedFields(obj: KubeObject, fieldManager: string): KubeObject {
  const entries = obj.metadata?.["managedFields"];
  if (!Array.isArray(entries)) return obj;
  // An empty list, not none: "we own nothing here" is known, unlike an object whose managedFields were dropped.
  // Only status entries: StatusWriter needs no more, and main-resource entries of applied children can be large.
  obj.metadata!["managedFields"] = entries
    .filter((e: { manager?: string; subresource?: string }) => {
      const m = e?.manager ?? "";
      return e?.subresource === "status" && (m === fieldManager || m.startsWith(`${fieldManager}/`));
    })
    .map(ownedStatusOutline);
  return obj;
}

interface StatusEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: { "f:status"?: Record<string, unknown> };
}

/**
 * Of one of our status entries, what StatusWriter reads (ownedStatusKeys in status.ts): the manager and
 * which top-level status fields and condition types it owns. The rest (every sub-field of every condition
 * and of nested fields, the write time) is several times larger and cached for every object of the kind.
 */
function ownedStatusOutline(entry: StatusEntry): StatusEntry {
  const status = entry.fieldsV1?.["f:status"];
  const outline: Record<string, Record<string, unknown>> = {};
  for (const [field, value] of Object.entries(status ?? {})) {
    if (!field.startsWith("f:")) continue;
    outline[field] = {};
    if (field !== "f:conditions" || !value || typeof value !== "object") continue;
    for (const item of Object.keys(value)) if (item.startsWith("k:")) outline[field][item] = {};
  }
  return {
    ...(entry.manager !== undefined ? { manager: entry.manager } : {}),
    ...(entry.operation !== undefined ? { operation: entry.operation } : {}),
    subresource: "status",
    fieldsV1: { "f:status": outline },
  };
}

function addToIndex(index: Map<string, Set<string>>, value: string, key: string): void {
  let set = index.get(value);
  if (!set) {
    set = new Set();
    index.set(value, set);
  }
  set.add(key);
}

/** An index function on one label's value, e.g. labelIndex("homelab.shdr.ch/tenant"). */
export function labelIndex(label: string): IndexFunc {
  return (obj) => {
    const v = obj.metadata?.labels?.[label];
    return v === undefined ? [] : [v];
  };
}

/**
 * One informer per selection: GVK + namespace + label selector + metadata-only + transform. Consumers that
 * ask for the same thing share one list and one watch; consumers that ask differently get caches of their
 * own, so a controller never reads objects another controller's selector let in (or bodies another's
 * metadata-only watch left out). Transforms are told apart by function identity: pass the same function
 * (a module-level constant) to share.
 */
export class InformerFactory {
  private readonly client: KubeClient;
  private readonly defaults: InformerOptions;
  private readonly informers = new Map<string, Informer>();
  private readonly transformIds = new WeakMap<TransformFunc, number>();
  private nextTransformId = 0;
  private started = false;

  constructor(client: KubeClient, defaults: InformerOptions = {}) {
    this.client = client;
    this.defaults = defaults;
  }

  informerFor<T extends KubeObject = KubeObject>(
    gvk: GroupVersionKind,
    selection: InformerSelection = {},
  ): Informer<T> {
    const opts: InformerSelection = {
      ...(selection.namespace ? { namespace: selection.namespace } : {}),
      ...(selection.labelSelector?.trim() ? { labelSelector: selection.labelSelector.trim() } : {}),
      ...(selection.fieldSelector?.trim() ? { fieldSelector: selection.fieldSelector.trim() } : {}),
      ...(selection.metadataOnly ? { metadataOnly: true } : {}),
      ...(selection.transform ? { transform: selection.transform } : {}),
    };
    const id = [
      gvk.apiVersion,
      gvk.kind,
      opts.namespace ?? "",
      opts.labelSelector ?? "",
      opts.fieldSelector ?? "",
      opts.metadataOnly ? "metadata" : "full",
      this.transformId(opts.transform),
    ].join("|");
    let informer = this.informers.get(id);
    if (!informer) {
      informer = new Informer(this.client, gvk, { ...this.defaults, ...opts });
      this.informers.set(id, informer);
      if (this.started) informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  private transformId(fn: TransformFunc | undefined): string {
    if (!fn) return "default";
    let id = this.transformIds.get(fn);
    if (id === undefined) {
      id = this.nextTransformId++;
      this.transformIds.set(fn, id);
    }
    return `t${id}`;
  }

  all(): Informer[] {
    return [...this.informers.values()];
  }

  start(): void {
    this.started = true;
    for (const i of this.informers.values()) i.start();
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(signal?: AbortSignal): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}
