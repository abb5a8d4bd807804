import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ItemBackoff } from "./backoff.ts";
import { type CacheReader, cacheReaderOver } from "./cache-reader.ts";
import type { KubeClient } from "./client.ts";
import type { ClusterCache, ClusterWatch } from "./cluster-cache.ts";
import { isTerminal } from "./errors.ts";
import type { EventRecorder } from "./events.ts";
import { type Fence, isFencingError, noFence } from "./fencing.ts";
import type { Informer, InformerFactory, InformerSelection } from "./informer.ts";
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
import { LOW_PRIORITY, WorkQueue } from "./queue.ts";
import { type OwnedStatus, type StatusWriteOptions, StatusWriter } from "./status.ts";

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
  /** Bound to `signal`: once it aborts, every call is refused locally and calls in flight are cancelled. */
  client: KubeClient;
  /**
   * Call right before a destructive or once-only call outside Kubernetes (create/delete a VM, bootstrap,
   * remove an etcd member, delete a namespace): resolves only if this process provably holds the lease
   * now (live read); otherwise throws FencingError and aborts this reconcile (fencing.ts).
   */
  fence(reason: string): Promise<void>;
  recorder: EventRecorder;
  /** The `for` object as cached (undefined once deleted). Read-only: copy before changing it. */
  object<T extends KubeObject = KubeObject>(): T | undefined;
  /** Read access to the cache of any kind this controller watches. */
  cache: CacheReader;
  /**
   * Server-side applies the status fields and conditions this controller owns (field manager
   * `homelab-operator/<controller>`), only when they differ from `obj` (the cached object); true when it
   * wrote. See status.ts for the ownership rules.
   */
  writeStatus(obj: KubeObject, owned: OwnedStatus, opts?: StatusWriteOptions): Promise<boolean>;
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
  /**
   * Drops updates before they are mapped (adds and deletes always pass), e.g. status-only updates of an
   * object whose status the mapped keys do not read.
   */
  predicate?(oldObj: KubeObject, newObj: KubeObject): boolean;
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
  /**
   * An annotation that, set to "true" on the `for` object, pauses it (Cluster API's `paused`): its keys are
   * taken off the queue without calling `reconcile` and without any write (no condition either: a paused
   * object is being handed to someone else, who may be writing it). Removing the annotation is an update
   * event, so the next reconcile follows at once. A paused object being deleted waits too.
   */
  pausedAnnotation?: string;
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
  /** Backs ctx.fence; none: always passes (one replica). */
  fence?: Fence;
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
  private readonly statusWriter: StatusWriter;

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
    this.statusWriter = new StatusWriter(deps.client, {
      fieldManager: `${deps.client.fieldManager}/${spec.name}`,
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

  /**
   * Adds `handler` to `informer` with each event's queue priority: what the initial list brings (and the
   * replay a late handler gets of an already-synced cache) and periodic resyncs (old === new) are LOW; what
   * the watch reports after that is a change someone made, served first (controller-runtime's
   * WithLowPriorityWhenUnchanged).
   */
  private addPrioritizedHandler(informer: Informer, handler: PrioritizedHandler): void {
    let replaying = true;
    const initial = () => (replaying || !informer.hasSynced() ? LOW_PRIORITY : 0);
    informer.addHandler({
      onAdd: (o) => handler.onAdd(o, initial()),
      onUpdate: (old, o) => handler.onUpdate(old, o, old === o ? LOW_PRIORITY : initial()),
      onDelete: (o) => handler.onDelete(o, 0),
    });
    replaying = false;
  }

  /** Wires informer handlers; keys queue up from the first list on, workers start later. */
  async setUp(isNamespaced: ScopeResolver): Promise<void> {
    const forInformer = this.informer(this.spec.for);
    this.forInformer = forInformer;
    const enqueueObj = (obj: KubeObject, priority: number) =>
      this.queue.add(keyOf(objectKeyOf(obj)), { priority });
    const predicate = this.spec.predicate;
    // The status writer forgets its last write to an object as soon as the cache shows that object anew.
    const writer = this.statusWriter;
    this.addPrioritizedHandler(forInformer, {
      onAdd: (o, p) => {
        writer.observed(o);
        if (!predicate || predicate(undefined, o)) enqueueObj(o, p);
      },
      onUpdate: (old, o, p) => {
        writer.observed(o);
        if (!predicate || predicate(old, o)) enqueueObj(o, p);
      },
      onDelete: (o, p) => {
        writer.forget(o);
        enqueueObj(o, p);
      },
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
      const enqueueOwners = (obj: KubeObject, priority: number) => {
        for (const k of ownerKeys(obj, mapping)) this.queue.add(keyOf(k), { priority });
      };
      const shape = {
        ...("metadataOnly" in owned && owned.metadataOnly ? { metadataOnly: true } : {}),
        ...("transform" in owned && owned.transform ? { transform: owned.transform } : {}),
      };
      this.addPrioritizedHandler(this.informer(owned, shape), mappedHandler(enqueueOwners));
    }
    for (const w of this.spec.watches ?? []) {
      const enqueueMapped = (obj: KubeObject, priority: number) => {
        for (const key of w.map(obj)) this.queue.add(key, { priority });
      };
      const opts = {
        ...(w.namespace ? { namespace: w.namespace } : {}),
        ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
        ...(w.fieldSelector ? { fieldSelector: w.fieldSelector } : {}),
        ...(w.metadataOnly ? { metadataOnly: true } : {}),
        ...(w.transform ? { transform: w.transform } : {}),
      };
      const mapped = mappedHandler(enqueueMapped);
      const filter = w.predicate;
      this.addPrioritizedHandler(
        this.informer(w.gvk, opts),
        filter
          ? { ...mapped, onUpdate: (old, o, p) => filter(old, o) && mapped.onUpdate(old, o, p) }
          : mapped,
      );
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

  /** Leadership lost: take no more keys and abort in-flight reconciles now, without waiting for them. */
  abandon(): void {
    this.queue.shutDown();
    this.abort.abort(new Error(`controller ${this.name}: leadership lost`));
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

  private isPaused(obj: KubeObject | undefined): boolean {
    const annotation = this.spec.pausedAnnotation;
    return annotation !== undefined && obj?.metadata?.annotations?.[annotation] === "true";
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

  /**
   * The ClusterCache as this reconcile sees it: waits end with the reconcile's signal, and the remote
   * client handed out is bound to it, so a lost lease or a refused fence stops writes to workload
   * clusters as it stops those to the management cluster.
   */
  private clusterAccess(reconcileSignal: AbortSignal): ClusterAccess {
    const enqueue = (key: string) => this.queue.add(key);
    const cache = () => {
      if (!this.deps.clusters) throw new Error(`controller ${this.name} was built without a ClusterCache`);
      return this.deps.clusters;
    };
    const bound = (signal: AbortSignal | undefined) =>
      signal ? AbortSignal.any([reconcileSignal, signal]) : reconcileSignal;
    return {
      get: async (cluster, signal) => {
        const conn = await cache().get(cluster, bound(signal));
        const { cluster: name, informers, cache: remoteCache, live } = conn;
        return {
          cluster: name,
          informers,
          cache: remoteCache,
          live,
          client: conn.client.withSignal(reconcileSignal),
        };
      },
      watch: (cluster, watch, signal) =>
        cache().watch(cluster, { ...watch, name: `${this.name}/${watch.name}`, enqueue }, bound(signal)),
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
    if (this.isPaused(this.forInformer?.get(key))) {
      // No reconcile, no write, no retry: the annotation's removal is an event that brings the key back.
      this.queue.forget(key);
      metrics.reconcileTotal.inc({ controller: this.name, result: "paused" });
      logger.debug({ annotation: this.spec.pausedAnnotation }, "Paused, not reconciling");
      return;
    }
    // Per reconcile, so a refused fence aborts this reconcile only.
    const own = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, own.signal]);
    const fence = this.deps.fence ?? noFence;
    const client = this.deps.client.withSignal(signal);
    const ctx: ReconcileContext = {
      controller: this.name,
      reconcileID,
      logger,
      signal,
      client,
      fence: async (reason) => {
        try {
          await fence(reason, signal);
        } catch (err) {
          own.abort(err);
          throw err;
        }
      },
      recorder: this.deps.recorder,
      object: <T extends KubeObject>() => forInformer.get(key) as T | undefined,
      cache: this.cacheReader(),
      // Through this reconcile's client: an aborted reconcile cannot write status either.
      writeStatus: (obj, owned, opts) => this.statusWriter.write(obj, owned, opts, client),
      clusters: this.clusterAccess(signal),
    };
    const labels = { controller: this.name };
    metrics.activeWorkers.inc(labels);
    const endTimer = metrics.reconcileTime.startTimer(labels);
    try {
      const result = await this.spec.reconcile(req, ctx);
      const after = result?.requeueAfter ?? 0;
      this.queue.forget(key);
      if (after > 0) {
        this.queue.addAfter(key, after, { priority: this.queue.priorityOf(key) });
        metrics.reconcileTotal.inc({ ...labels, result: "requeue_after" });
        logger.debug({ requeueAfterMs: after }, "Reconciled, requeue scheduled");
      } else {
        metrics.reconcileTotal.inc({ ...labels, result: "success" });
        logger.debug("Reconciled");
      }
    } catch (err) {
      if (isFencingError(err) || (own.signal.aborted && isFencingError(own.signal.reason))) {
        // Not a failure of the reconcile: this process may not act. A no-op once leadership is lost (the
        // queue is shut down); a retry with backoff if the lease could not be read.
        metrics.reconcileTotal.inc({ ...labels, result: "fenced" });
        const retryInMs = this.queue.addRateLimited(key);
        logger.warn({ err: own.signal.reason ?? err, retryInMs }, "Reconcile fenced off, not acting");
        return;
      }
      metrics.reconcileErrors.inc(labels);
      metrics.reconcileTotal.inc({ ...labels, result: "error" });
      if (isTerminal(err)) {
        metrics.terminalReconcileErrors.inc(labels);
        this.queue.forget(key);
        logger.error({ err }, "Reconcile failed with a terminal error, not retrying");
      } else {
        // A retry keeps the priority it came with: a failing initial-list key stays behind users' edits.
        const retryInMs = this.queue.addRateLimited(key, { priority: this.queue.priorityOf(key) });
        logger.error({ err, retryInMs }, "Reconcile failed, retrying");
      }
    } finally {
      endTimer();
      metrics.activeWorkers.dec(labels);
    }
  }
}

/** An informer handler that is told the queue priority of each event. */
interface PrioritizedHandler {
  onAdd(obj: KubeObject, priority: number): void;
  onUpdate(oldObj: KubeObject, newObj: KubeObject, priority: number): void;
  onDelete(obj: KubeObject, priority: number): void;
}

function mappedHandler(enqueue: (obj: KubeObject, priority: number) => void): PrioritizedHandler {
  return {
    onAdd: enqueue,
    // Both: an object that moved to another owner must wake the old owner too.
    onUpdate: (old, obj, priority) => {
      enqueue(old, priority);
      enqueue(obj, priority);
    },
    onDelete: enqueue,
  };
}
