import { hostname } from "node:os";
import type { Logger } from "pino";
import type { KubeClient } from "./client.ts";
import { describeError, isNotFound } from "./errors.ts";
import type { KubeObject } from "./object.ts";

export interface EventInput {
  type: "Normal" | "Warning";
  /** CamelCase, why the action was taken (e.g. `ImageDownloaded`). */
  reason: string;
  /** CamelCase, what was done (e.g. `Download`). */
  action: string;
  /** For humans; at most 1 kB is kept. */
  note?: string;
  related?: KubeObject;
}

/** RFC 3339 with microseconds: the MicroTime format events.k8s.io/v1 requires for eventTime. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** A token bucket: `burst` tokens, refilled at one per `refillMs`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly burst: number;
  readonly refillMs: number;

  constructor(burst: number, refillMs: number, now: number) {
    this.burst = burst;
    this.refillMs = refillMs;
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.refillMs);
    this.last = Math.max(this.last, now);
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: nothing remembers this bucket's past, so it can be forgotten. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

export interface EventRateLimits {
  /** Per regarding object (client-go's EventSourceObjectSpamFilter): 25 Events at once... */
  perObjectBurst: number;
  /** ...then one per 5 minutes. */
  perObjectRefillMs: number;
  /** For the whole recorder, creates and series updates together. */
  globalBurst: number;
  globalRefillMs: number;
}

/**
 * Per object as client-go's spam filter. Global (ours; client-go has only the client's overall QPS): 50 at
 * once, then 1 per second — a thousand failing tenants during an API server brownout cost at most 50 writes
 * at once and 60 a minute after, instead of one or two per failed reconcile.
 */
export const DEFAULT_EVENT_RATE_LIMITS: EventRateLimits = {
  perObjectBurst: 25,
  perObjectRefillMs: 5 * 60 * 1000,
  globalBurst: 50,
  globalRefillMs: 1000,
};

/** How often counted repeats are written into their Event's series. */
export const DEFAULT_FLUSH_INTERVAL_MS = 30_000;

interface SeriesState {
  /** Known once the create answered. */
  name?: string;
  namespace: string;
  objectKey: string;
  /** Occurrences so far (1 = the Event as created, no series yet). */
  count: number;
  /** The count the API server has (what the last successful create or patch wrote). */
  written: number;
  lastObserved: Date;
}

/** client-go tools/events closes an isomorphic event's series after 6 minutes without a repeat. */
const SERIES_WINDOW_MS = 6 * 60 * 1000;

export interface EventStats {
  created: number;
  /** PATCHes writing a series count. */
  patched: number;
  /** New Events not sent because a rate limit said no. */
  dropped: number;
  /** Repeats counted in memory instead of written one by one. */
  aggregated: number;
}

function reference(obj: KubeObject) {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata?.name,
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
    ...(obj.metadata?.uid ? { uid: obj.metadata.uid } : {}),
    ...(obj.metadata?.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
  };
}

/**
 * Records events.k8s.io/v1 Events the way client-go's events library does, so an error loop cannot turn
 * into a write loop:
 * - the first occurrence of an event (same object, type, reason, action, note) is created at once;
 * - repeats within 6 minutes of the last one are only counted in memory; every flush interval (30 s) and
 *   when the series closes, the count is written once into the Event's `series` (count, lastObservedTime);
 * - new Events are rate limited per object (burst 25, then 1 per 5 min) and globally (burst 50, then
 *   1/s); series writes take global tokens too and wait for the next flush when there are none;
 * - `stop()` writes what is still counted (call it on shutdown).
 * Failures are logged, never thrown from `record`: an Event is a courtesy to users and must not fail a
 * reconcile. A failed series write is retried at the next flush.
 */
export class EventRecorder {
  private readonly client: KubeClient;
  private readonly controller: string;
  private readonly instance: string;
  private readonly logger: Logger | undefined;
  private readonly now: () => Date;
  private readonly limits: EventRateLimits;
  private readonly series = new Map<string, SeriesState>();
  private readonly perObject = new Map<string, TokenBucket>();
  private readonly global: TokenBucket;
  private readonly flushTimer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  readonly stats: EventStats = { created: 0, patched: 0, dropped: 0, aggregated: 0 };
  /** Keeps names unique when two events for one object fall in the same millisecond. */
  private sequence = 0;

  constructor(
    client: KubeClient,
    opts: {
      reportingController?: string;
      reportingInstance?: string;
      logger?: Logger;
      now?: () => Date;
      limits?: Partial<EventRateLimits>;
      flushIntervalMs?: number;
    } = {},
  ) {
    this.client = client;
    this.controller = opts.reportingController ?? "homelab.shdr.ch/homelab-operator";
    this.instance = opts.reportingInstance ?? hostname();
    this.logger = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.limits = { ...DEFAULT_EVENT_RATE_LIMITS, ...opts.limits };
    this.global = new TokenBucket(this.limits.globalBurst, this.limits.globalRefillMs, this.now().getTime());
    this.flushTimer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
  }

  async record(regarding: KubeObject, input: EventInput): Promise<void> {
    try {
      await this.recordOrThrow(regarding, input);
    } catch (err) {
      this.logger?.warn({ err: describeError(err), reason: input.reason }, "Could not record Event");
    }
  }

  /** Like record, but a failed create throws (for tests and callers that must know). */
  async recordOrThrow(regarding: KubeObject, input: EventInput): Promise<void> {
    if (this.stopped) return; // shutting down: a late reconcile's Event is not worth a write
    const now = this.now();
    const note = (input.note ?? "").slice(0, 1024);
    const ref = reference(regarding);
    const objectKey = JSON.stringify([ref.kind, ref.namespace, ref.name, ref.uid]);
    const id = JSON.stringify([objectKey, input.type, input.reason, input.action, note]);
    const open = this.series.get(id);
    if (open && now.getTime() - open.lastObserved.getTime() <= SERIES_WINDOW_MS) {
      open.count++;
      open.lastObserved = now;
      this.stats.aggregated++;
      return;
    }
    if (open) await this.closeSeries(id, open);
    if (!this.takeTokens(objectKey, now.getTime())) {
      this.stats.dropped++;
      this.logger?.debug({ reason: input.reason, object: ref.name }, "Event dropped by rate limit");
      return;
    }
    // Events about cluster-scoped objects go to `default`, as client-go does.
    const namespace = ref.namespace ?? "default";
    const state: SeriesState = { namespace, objectKey, count: 1, written: 0, lastObserved: now };
    // Registered before the create answers, so repeats meanwhile are counted, not created twice.
    this.series.set(id, state);
    try {
      // client-go names events "<object>.<hex nanoseconds>"; a generateName ending in "." is rejected
      // (generateName must itself be a valid DNS subdomain prefix). Named here, not by the server, the
      // series patch needs nothing from the create's answer: the created Event is dropped unparsed.
      const name = `${ref.name ?? "object"}.${(BigInt(now.getTime()) * 1_000_000n + BigInt(++this.sequence)).toString(16)}`;
      await this.client.create<KubeObject>(
        {
          apiVersion: "events.k8s.io/v1",
          kind: "Event",
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: this.controller,
          reportingInstance: this.instance.slice(0, 128),
          action: input.action,
          reason: input.reason,
          type: input.type,
          note,
          regarding: ref,
          ...(input.related ? { related: reference(input.related) } : {}),
        },
        { discardResponse: true },
      );
      state.name = name;
      state.written = 1;
      this.stats.created++;
    } catch (err) {
      if (this.series.get(id) === state) this.series.delete(id);
      throw err;
    }
  }

  /**
   * Writes every counted repeat into its series, and closes series idle for 6 minutes. Runs every flush
   * interval; overlapping calls share one pass.
   */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const now = this.now().getTime();
    for (const [id, s] of [...this.series]) {
      if (now - s.lastObserved.getTime() > SERIES_WINDOW_MS) await this.closeSeries(id, s);
      else await this.writeSeries(id, s);
    }
    for (const [key, bucket] of this.perObject) if (bucket.isFull(now)) this.perObject.delete(key);
  }

  /** Stops the flush timer and writes what is still counted (unless `flush: false`, e.g. after a lost lease). */
  async stop(opts: { flush?: boolean } = {}): Promise<void> {
    clearInterval(this.flushTimer);
    this.stopped = true;
    if (opts.flush ?? true) await this.flush();
    else this.series.clear(); // the counts are dropped with the process
  }

  private async closeSeries(id: string, s: SeriesState): Promise<void> {
    await this.writeSeries(id, s);
    if (this.series.get(id) === s) this.series.delete(id);
  }

  private async writeSeries(id: string, s: SeriesState): Promise<void> {
    if (s.name === undefined || s.count === s.written) return;
    if (!this.global.take(this.now().getTime())) return; // next flush
    const count = s.count;
    try {
      await this.client.patch(
        { apiVersion: "events.k8s.io/v1", kind: "Event" },
        { namespace: s.namespace, name: s.name },
        { series: { count, lastObservedTime: microTime(s.lastObserved) } },
        "merge",
      );
      s.written = count;
      this.stats.patched++;
    } catch (err) {
      // Gone (TTL): the next occurrence starts a new Event. Otherwise the next flush tries again.
      if (isNotFound(err)) this.series.delete(id);
      else this.logger?.warn({ err: describeError(err) }, "Could not update an Event's series");
    }
  }

  private takeTokens(objectKey: string, now: number): boolean {
    let bucket = this.perObject.get(objectKey);
    if (!bucket) {
      bucket = new TokenBucket(this.limits.perObjectBurst, this.limits.perObjectRefillMs, now);
      this.perObject.set(objectKey, bucket);
    }
    // The object's bucket first: a noisy object must not use up the global tokens others need.
    return bucket.take(now) && this.global.take(now);
  }
}
