import { ItemBackoff } from "./backoff.ts";

/** Hooks the queue calls so metrics stay out of its logic (see metrics.ts for the Prometheus side). */
export interface QueueObserver {
  added(): void;
  depth(n: number): void;
  /** Seconds an item waited in the queue before a worker took it. */
  dequeued(waitedSeconds: number): void;
  /** Seconds a worker spent on an item. */
  finished(workSeconds: number): void;
  /** An item was scheduled with a delay (backoff or requeueAfter). */
  retried(): void;
}

const noObserver: QueueObserver = {
  added() {},
  depth() {},
  dequeued() {},
  finished() {},
  retried() {},
};

/** Priority of the keys an initial list (or a resync) adds: served after every key a change added. */
export const LOW_PRIORITY = -100;

export interface AddOptions {
  /** Higher is served first; default 0. A key queued twice keeps the higher of its priorities. */
  priority?: number;
}

/**
 * A de-duplicating work queue with client-go's guarantees:
 * - a key added many times before a worker takes it is handed out once (the `dirty` set);
 * - a key is never handed to two workers at once: re-added while processing, it is parked in `dirty`
 *   and queued again only when `done` is called (the `processing` set);
 * - delayed adds keep only the earliest deadline per key; rate-limited adds use per-key backoff;
 * - priorities as controller-runtime's priority queue: a key of higher priority is handed out before any
 *   key of lower priority, FIFO within one priority. The controller queues what the initial list of a
 *   (re)start brings at LOW_PRIORITY, so a user's edit is not stuck behind a thousand unchanged objects.
 * After shutDown it accepts nothing and hands out nothing more; drain() waits for in-flight work.
 */
export class WorkQueue {
  readonly name: string;
  /** FIFO per priority; entries whose key was promoted to a higher bucket are skipped (lazy removal). */
  private readonly buckets = new Map<number, { key: string; seq: number }[]>();
  /** Keys waiting in a bucket: their priority and the sequence number of their live entry. */
  private readonly queued = new Map<string, { priority: number; seq: number }>();
  private seq = 0;
  private readonly dirty = new Map<string, number>();
  private readonly processing = new Map<string, number>();
  /** The priority each key being processed was queued with, so its retry can keep it. */
  private readonly processingPriority = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private readonly drainers: (() => void)[] = [];
  private readonly backoff: ItemBackoff;
  private readonly observer: QueueObserver;
  private readonly now: () => number;
  private shuttingDown = false;

  constructor(
    opts: { name?: string; backoff?: ItemBackoff; observer?: QueueObserver; now?: () => number } = {},
  ) {
    this.name = opts.name ?? "queue";
    this.backoff = opts.backoff ?? new ItemBackoff();
    this.observer = opts.observer ?? noObserver;
    this.now = opts.now ?? performance.now.bind(performance);
  }

  add(key: string, opts: AddOptions = {}): void {
    if (this.shuttingDown) return;
    const priority = opts.priority ?? 0;
    const pending = this.dirty.get(key);
    if (pending !== undefined) {
      // Already waiting: only a higher priority changes anything (it moves the key up).
      if (priority <= pending) return;
      this.dirty.set(key, priority);
      if (this.queued.has(key)) this.enqueue(key, priority);
      return;
    }
    this.observer.added();
    this.dirty.set(key, priority);
    this.addedAt.set(key, this.now());
    if (this.processing.has(key)) return;
    const getter = this.getters.shift();
    if (getter) this.handOut(key, getter);
    else this.enqueue(key, priority);
  }

  private enqueue(key: string, priority: number): void {
    const seq = ++this.seq;
    this.queued.set(key, { priority, seq });
    let bucket = this.buckets.get(priority);
    if (!bucket) {
      bucket = [];
      this.buckets.set(priority, bucket);
    }
    bucket.push({ key, seq });
    this.observer.depth(this.queued.size);
  }

  /** The next key by priority then FIFO, removed from the buckets. */
  private dequeue(): string | undefined {
    const priorities = [...this.buckets.keys()].sort((a, b) => b - a);
    for (const p of priorities) {
      const bucket = this.buckets.get(p)!;
      while (bucket.length > 0) {
        const entry = bucket.shift()!;
        if (this.queued.get(entry.key)?.seq !== entry.seq) continue; // promoted meanwhile
        this.queued.delete(entry.key);
        if (bucket.length === 0) this.buckets.delete(p);
        this.observer.depth(this.queued.size);
        return entry.key;
      }
      this.buckets.delete(p);
    }
    return undefined;
  }

  addAfter(key: string, delayMs: number, opts: AddOptions = {}): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key, opts);
      return;
    }
    this.observer.retried();
    const due = this.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key, opts);
    }, delayMs);
    this.waiting.set(key, { due, timer });
  }

  /** Schedules a retry after the key's next backoff step; returns that delay. */
  addRateLimited(key: string, opts: AddOptions = {}): number {
    const delay = this.backoff.when(key);
    this.addAfter(key, delay, opts);
    return delay;
  }

  /** The priority a key being processed was handed out with (0 when it is not being processed). */
  priorityOf(key: string): number {
    return this.processingPriority.get(key) ?? 0;
  }

  /** Resets the key's backoff (after a success): its next failure starts again from the base delay. */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  numRequeues(key: string): number {
    return this.backoff.retries(key);
  }

  /** Resolves with the next key to work on, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.dequeue();
    if (key !== undefined) return new Promise((resolve) => this.handOut(key, resolve));
    return new Promise((resolve) => this.getters.push(resolve));
  }

  private handOut(key: string, to: (key: string) => void): void {
    this.processingPriority.set(key, this.dirty.get(key) ?? 0);
    this.dirty.delete(key);
    const now = this.now();
    this.observer.dequeued((now - (this.addedAt.get(key) ?? now)) / 1000);
    this.addedAt.delete(key);
    this.processing.set(key, now);
    to(key);
  }

  /** Marks the key's processing finished; if it was re-added meanwhile it is queued again now. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.processingPriority.delete(key);
    this.observer.finished((this.now() - started) / 1000);
    const priority = this.dirty.get(key);
    if (priority !== undefined && !this.shuttingDown) {
      const getter = this.getters.shift();
      if (getter) this.handOut(key, getter);
      else this.enqueue(key, priority);
    }
    if (this.processing.size === 0) for (const drained of this.drainers.splice(0)) drained();
  }

  len(): number {
    return this.queued.size;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Start times (queue clock, ms) of the keys being processed, for the unfinished-work metrics. */
  inFlightSince(): number[] {
    return [...this.processing.values()];
  }

  clockNow(): number {
    return this.now();
  }

  /** Stops accepting and handing out keys; pending delayed adds are dropped (level-triggered: a restart relists). */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.buckets.clear();
    this.queued.clear();
    this.dirty.clear();
    this.observer.depth(0);
    for (const getter of this.getters.splice(0)) getter(undefined);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Resolves when no key is being processed. */
  drain(): Promise<void> {
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainers.push(resolve));
  }
}
