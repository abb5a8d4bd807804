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

/**
 * A de-duplicating work queue with client-go's guarantees:
 * - a key added many times before a worker takes it is handed out once (the `dirty` set);
 * - a key is never handed to two workers at once: re-added while processing, it is parked in `dirty`
 *   and queued again only when `done` is called (the `processing` set);
 * - delayed adds keep only the earliest deadline per key; rate-limited adds use per-key backoff.
 * After shutDown it accepts nothing and hands out nothing more; drain() waits for in-flight work.
 */
export class WorkQueue {
  readonly name: string;
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
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

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.observer.added();
    this.dirty.add(key);
    this.addedAt.set(key, this.now());
    if (this.processing.has(key)) return;
    const getter = this.getters.shift();
    if (getter) this.handOut(key, getter);
    else {
      this.queue.push(key);
      this.observer.depth(this.queue.length);
    }
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    this.observer.retried();
    const due = this.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { due, timer });
  }

  /** Schedules a retry after the key's next backoff step; returns that delay. */
  addRateLimited(key: string): number {
    const delay = this.backoff.when(key);
    this.addAfter(key, delay);
    return delay;
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
    const key = this.queue.shift();
    if (key !== undefined) {
      this.observer.depth(this.queue.length);
      return new Promise((resolve) => this.handOut(key, resolve));
    }
    return new Promise((resolve) => this.getters.push(resolve));
  }

  private handOut(key: string, to: (key: string) => void): void {
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
    this.observer.finished((this.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) {
      const getter = this.getters.shift();
      if (getter) this.handOut(key, getter);
      else {
        this.queue.push(key);
        this.observer.depth(this.queue.length);
      }
    }
    if (this.processing.size === 0) for (const drained of this.drainers.splice(0)) drained();
  }

  len(): number {
    return this.queue.length;
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
    this.queue.length = 0;
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
