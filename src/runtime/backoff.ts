/**
 * Per-key exponential failure backoff: the n-th consecutive failure of a key waits base·2^(n-1), capped
 * at max. Defaults are client-go's ItemExponentialFailureRateLimiter (5 ms .. 1000 s), which
 * controller-runtime ≥ 0.23 uses alone as its default controller rate limiter.
 */
export class ItemBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly failures = new Map<string, number>();

  constructor(opts: { baseMs?: number; maxMs?: number } = {}) {
    this.baseMs = opts.baseMs ?? 5;
    this.maxMs = opts.maxMs ?? 1_000_000;
  }

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long before it matters; min() keeps the cap.
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

/** Reconnect backoff for watches: exponential with ±20% jitter so many informers do not reconnect in step. */
export class JitteredBackoff {
  private attempt = 0;
  readonly initialMs: number;
  readonly maxMs: number;
  private readonly random: () => number;

  constructor(opts: { initialMs?: number; maxMs?: number; random?: () => number } = {}) {
    this.initialMs = opts.initialMs ?? 800;
    this.maxMs = opts.maxMs ?? 30_000;
    this.random = opts.random ?? Math.random;
  }

  next(): number {
    const base = Math.min(this.initialMs * 2 ** this.attempt, this.maxMs);
    this.attempt++;
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
