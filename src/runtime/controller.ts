import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ItemBackoff } from "./backoff.ts";
import { type CacheReader, cacheReaderOver } from "./cache-reader.ts";
import type { KubeClient } from "./client.ts";
import type { ClusterCache, ClusterWatch } from "./cluster-cache.ts";
import { isTerminal } from "./errors.ts";
import type { EventRecorder } from "./events.ts";
import type { EventHandler, Informer, InformerFactory, InformerSelection } from "./informer.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import {
  type GroupVersionKind,
  type KubeObject,
  keyOf,
  type ObjectKey,
  objectKeyOf,
  parseKey,
} from "./object.ts";
import { type OwnerMapping, ownerKeys } from "./owners.ts";
import { WorkQueue } from "./queue.ts";

export type { CacheReader } from "./cache-reader.ts";

export interface ReconcileRequest {
  /** `namespace/name`, or `name` when cluster-scoped. */
  key: string;
  namespace?: string;
  name: string;
}

/** Return `{ requeueAfter }` (ms) to look again later (a phase that waits); nothing means done. */
export type ReconcileResult = { requeueAfter?: number } | undefined;

export interface ReconcileContext {
  controller: string;
  reconcileID: string;
  /** Child logger carrying controller, namespace, name and reconcileID. */
  logger: Logger;
  /** Aborted when the manager stops or loses leadership: long waits should give up. */
  signal: AbortSignal;
  client: KubeClient;
  recorder: EventRecorder;
  /** The `for` object as cached (undefined once deleted). Read-only: copy before changing it. */
  object<T extends KubeObject = KubeObject>(): T | undefined;
  /** Read access to the cache of any kind this controller watches. */
  cache: CacheReader;
  /** Clients and watches of other clusters (workload clusters), reached through their kubeconfig Secrets. */
  clusters: ClusterAccess;
}

/** The ClusterCache as one controller sees it: watches of a remote cluster enqueue into this controller. */
export interface ClusterAccess {
  /** The cluster's client and informers; connects on first use, throws when the cluster is unreachable. */
  get: ClusterCache["get"];
  /**
   * Watches a kind in the remote cluster, once per (cluster, watch name) while the connection lives;
   * events go through `map` to keys of this controller. Resolves when that cache has synced.
   */
  watch(cluster: ObjectKey, watch: Omit<ClusterWatch, "enqueue">, signal?: AbortSignal): Promise<Informer>;
}

/** What to keep of watched objects: `metadataOnly` (PartialObjectMetadata) and/or a `transform`. */
type CacheShape = Pick<InformerSelection, "metadataOnly" | "transform">;

export interface OwnsSpec extends GroupVersionKind, CacheShape {
  /** Cross-scope ownership: the label naming the owner (e.g. `homelab.shdr.ch/tenant`). */
  ownerLabel?: string;
  ownerNamespaceLabel?: string;
}

export interface WatchSpec extends CacheShape {
  gvk: GroupVersionKind;
  /** The reconcile keys (`namespace/name` or `name`) an event on `obj` should trigger. */
  map(obj: KubeObject): string[];
  namespace?: string;
  labelSelector?: string;
  /** Server-side field selector (e.g. `reason=FailedCreate` for Events). */
  fieldSelector?: string;
}

export interface ControllerSpec {
  name: string;
  for: GroupVersionKind;
  owns?: (GroupVersionKind | OwnsSpec)[];
  watches?: WatchSpec[];
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult>;
  /** Workers; one key is still never reconciled twice at once. Default 1, as controller-runtime. */
  maxConcurrentReconciles?: number;
  /** Per-key failure backoff. Default 5 ms .. 1000 s. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Drops events on the `for` kind before they enqueue, e.g. to ignore status-only updates. */
  predicate?(oldObj: KubeObject | undefined, newObj: KubeObject): boolean;
}

export interface ControllerDeps {
  client: KubeClient;
  informers: InformerFactory;
  metrics: RuntimeMetrics;
  logger: Logger;
  recorder: EventRecorder;
  /** Remote clusters (the Manager always gives one; a bare Controller in a unit test may not). */
  clusters?: ClusterCache;
  /** Restricts every informer of this controller to one namespace. */
  namespace?: string;
}

/** Whether a kind is namespaced, resolved through discovery before handlers are wired. */
type ScopeResolver = (gvk: GroupVersionKind) => Promise<boolean>;

/**
 * One controller: informer handlers feed a de-duplicating queue, `maxConcurrentReconciles` workers take
 * keys from it and call `reconcile`. Outcomes follow controller-runtime (operator-engineering.md §3.4):
 * error → rate-limited requeue; TerminalError → logged and counted, no requeue; requeueAfter → forget the
 * backoff and requeue after that delay; success → forget.
 */
export class Controller {
  readonly name: string;
  readonly spec: ControllerSpec;
  readonly queue: WorkQueue;
  private readonly deps: ControllerDeps;
  /** Every informer this controller asked for, per kind: a kind watched twice (two selectors) has two. */
  private readonly informersByGvk = new Map<string, Informer[]>();
  private forInformer: Informer | undefined;
  private workers: Promise<void>[] = [];
  private abort = new AbortController();
  private readonly log: Logger;
  private readonly concurrency: number;

  constructor(spec: ControllerSpec, deps: ControllerDeps) {
    this.name = spec.name;
    this.spec = spec;
    this.deps = deps;
    this.concurrency = Math.max(1, spec.maxConcurrentReconciles ?? 1);
    this.log = deps.logger.child({ controller: spec.name });
    this.queue = new WorkQueue({
      name: spec.name,
      backoff: new ItemBackoff(spec.backoff),
      observer: deps.metrics.queueObserver(spec.name),
    });
    deps.metrics.trackQueue(spec.name, this.queue);
    deps.metrics.registerController(spec.name, this.concurrency);
  }

  private informer(gvk: GroupVersionKind, opts: InformerSelection = {}): Informer {
    const namespace = opts.namespace ?? this.deps.namespace;
    const informer = this.deps.informers.informerFor(gvk, {
      ...(namespace ? { namespace } : {}),
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
      ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
      ...(opts.metadataOnly ? { metadataOnly: true } : {}),
      ...(opts.transform ? { transform: opts.transform } : {}),
    });
    const id = `${gvk.apiVersion}|${gvk.kind}`;
    const list = this.informersByGvk.get(id) ?? [];
    if (!list.includes(informer)) list.push(informer);
    this.informersByGvk.set(id, list);
    return informer;
  }

  /** Wires informer handlers; keys queue up from the first list on, workers start later. */
  async setUp(isNamespaced: ScopeResolver): Promise<void> {
    const forInformer = this.informer(this.spec.for);
    this.forInformer = forInformer;
    const enqueueObj = (obj: KubeObject) => this.queue.add(keyOf(objectKeyOf(obj)));
    const predicate = this.spec.predicate;
    forInformer.addHandler({
      onAdd: (o) => (!predicate || predicate(undefined, o)) && enqueueObj(o),
      onUpdate: (old, o) => (!predicate || predicate(old, o)) && enqueueObj(o),
      onDelete: enqueueObj,
    });

    const ownerNamespaced = await isNamespaced(this.spec.for);
    for (const owned of this.spec.owns ?? []) {
      const mapping: OwnerMapping = {
        owner: this.spec.for,
        ownerNamespaced,
        ...("ownerLabel" in owned && owned.ownerLabel ? { ownerLabel: owned.ownerLabel } : {}),
        ...("ownerNamespaceLabel" in owned && owned.ownerNamespaceLabel
          ? { ownerNamespaceLabel: owned.ownerNamespaceLabel }
          : {}),
      };
      const enqueueOwners = (obj: KubeObject) => {
        for (const k of ownerKeys(obj, mapping)) this.queue.add(keyOf(k));
      };
      const shape = {
        ...("metadataOnly" in owned && owned.metadataOnly ? { metadataOnly: true } : {}),
        ...("transform" in owned && owned.transform ? { transform: owned.transform } : {}),
      };
      this.informer(owned, shape).addHandler(mappedHandler(enqueueOwners));
    }
    for (const w of this.spec.watches ?? []) {
      const enqueueMapped = (obj: KubeObject) => {
        for (const key of w.map(obj)) this.queue.add(key);
      };
      const opts = {
        ...(w.namespace ? { namespace: w.namespace } : {}),
        ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
        ...(w.fieldSelector ? { fieldSelector: w.fieldSelector } : {}),
        ...(w.metadataOnly ? { metadataOnly: true } : {}),
        ...(w.transform ? { transform: w.transform } : {}),
      };
      this.informer(w.gvk, opts).addHandler(mappedHandler(enqueueMapped));
    }
  }

  startWorkers(): void {
    if (this.workers.length) return;
    this.log.info({ workers: this.concurrency }, "Starting workers");
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work());
  }

  /**
   * Stops taking keys and waits up to `timeoutMs` for in-flight reconciles to finish. Their signal is
   * aborted at once when `abortInFlight` (leadership lost), otherwise after a 1 s grace.
   */
  async stop(timeoutMs: number, opts: { abortInFlight?: boolean } = {}): Promise<void> {
    this.queue.shutDown();
    if (opts.abortInFlight) this.abort.abort(new Error(`controller ${this.name} stopping`));
    const drained = this.queue.drain().then(() => true);
    const within = (ms: number) =>
      Promise.race([
        drained,
        new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(ms, 0)).unref()),
      ]);
    if (await within(Math.min(timeoutMs, 1000))) return;
    this.abort.abort(new Error(`controller ${this.name} stopping`));
    if (!(await within(timeoutMs - 1000))) {
      this.log.warn({ timeoutMs }, "Reconciles still running at shutdown timeout");
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /**
   * Reads only the caches this controller asked for. A kind watched through several selections is read
   * from all of them (an object in two is returned once); another controller's selections are never read.
   */
  private cacheReader(): CacheReader {
    return cacheReaderOver(
      this.name,
      (gvk) => this.informersByGvk.get(`${gvk.apiVersion}|${gvk.kind}`) ?? [],
    );
  }

  private clusterAccess(): ClusterAccess {
    const enqueue = (key: string) => this.queue.add(key);
    const cache = () => {
      if (!this.deps.clusters) throw new Error(`controller ${this.name} was built without a ClusterCache`);
      return this.deps.clusters;
    };
    return {
      get: (cluster, signal) => cache().get(cluster, signal),
      watch: (cluster, watch, signal) =>
        cache().watch(cluster, { ...watch, name: `${this.name}/${watch.name}`, enqueue }, signal),
    };
  }

  private async reconcileKey(key: string): Promise<void> {
    const { metrics } = this.deps;
    const ref = parseKey(key);
    const reconcileID = randomUUID();
    const logger = this.log.child({
      ...(ref.namespace ? { namespace: ref.namespace } : {}),
      name: ref.name,
      reconcileID,
    });
    const req: ReconcileRequest = {
      key,
      name: ref.name,
      ...(ref.namespace ? { namespace: ref.namespace } : {}),
    };
    const forInformer = this.forInformer!;
    const ctx: ReconcileContext = {
      controller: this.name,
      reconcileID,
      logger,
      signal: this.abort.signal,
      client: this.deps.client,
      recorder: this.deps.recorder,
      object: <T extends KubeObject>() => forInformer.get(key) as T | undefined,
      cache: this.cacheReader(),
      clusters: this.clusterAccess(),
    };
    const labels = { controller: this.name };
    metrics.activeWorkers.inc(labels);
    const endTimer = metrics.reconcileTime.startTimer(labels);
    try {
      const result = await this.spec.reconcile(req, ctx);
      const after = result?.requeueAfter ?? 0;
      this.queue.forget(key);
      if (after > 0) {
        this.queue.addAfter(key, after);
        metrics.reconcileTotal.inc({ ...labels, result: "requeue_after" });
        logger.debug({ requeueAfterMs: after }, "Reconciled, requeue scheduled");
      } else {
        metrics.reconcileTotal.inc({ ...labels, result: "success" });
        logger.debug("Reconciled");
      }
    } catch (err) {
      metrics.reconcileErrors.inc(labels);
      metrics.reconcileTotal.inc({ ...labels, result: "error" });
      if (isTerminal(err)) {
        metrics.terminalReconcileErrors.inc(labels);
        this.queue.forget(key);
        logger.error({ err }, "Reconcile failed with a terminal error, not retrying");
      } else {
        const retryInMs = this.queue.addRateLimited(key);
        logger.error({ err, retryInMs }, "Reconcile failed, retrying");
      }
    } finally {
      endTimer();
      metrics.activeWorkers.dec(labels);
    }
  }
}

function mappedHandler(enqueue: (obj: KubeObject) => void): EventHandler {
  return {
    onAdd: enqueue,
    // Both: an object that moved to another owner must wake the old owner too.
    onUpdate: (old, obj) => {
      enqueue(old);
      enqueue(obj);
    },
    onDelete: enqueue,
  };
}
