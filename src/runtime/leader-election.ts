import { hostname } from "node:os";
import type { Logger } from "pino";
import type { KubeClient } from "./client.ts";
import { ApiError, describeError, isNotFound } from "./errors.ts";
import { microTime } from "./events.ts";
import type { FenceTarget } from "./fencing.ts";
import { sleep } from "./object.ts";

export interface LeaderElectionConfig {
  /** Lease name, e.g. `homelab-operator`. */
  name: string;
  namespace: string;
  /** Unique per process; default hostname + pid + random suffix. */
  identity?: string;
  /** How long a lease stays valid without renewal. controller-runtime default 15 s. */
  leaseDurationMs?: number;
  /** A leader that has not renewed for this long gives up. Default 10 s; must be < leaseDuration. */
  renewDeadlineMs?: number;
  /** Between acquire/renew attempts. Default 2 s. */
  retryPeriodMs?: number;
  /** On a clean stop, clear the holder so a standby takes over at once. Default true. */
  releaseOnCancel?: boolean;
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export type LeaseDecision = "acquire" | "renew" | "wait";

/**
 * The pure part of client-go's tryAcquireOrRenew: may `me` write the lease now?
 * Expiry is judged on the local clock from when this process last saw the record change (observedAtMs),
 * never from the renewTime written by another machine's clock (client-go leaderelection package doc),
 * and with the record's own leaseDurationSeconds: the holder promised to stop within *its* duration, which
 * need not be ours (a rollout that changes the setting). `fallbackLeaseDurationMs` is only for a record
 * without one.
 */
export function decideLease(
  spec: LeaseSpec | undefined,
  me: string,
  observedAtMs: number,
  nowMs: number,
  fallbackLeaseDurationMs: number,
): LeaseDecision {
  const holder = spec?.holderIdentity ?? "";
  if (holder === me) return "renew";
  if (holder === "") return "acquire";
  const recorded = spec?.leaseDurationSeconds;
  const durationMs = recorded && recorded > 0 ? recorded * 1000 : fallbackLeaseDurationMs;
  return nowMs >= observedAtMs + durationMs ? "acquire" : "wait";
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go's LeaderElector.
 * A leader that fails to renew within renewDeadline calls onStoppedLeading and stops: since
 * renewDeadline < leaseDuration, it stops working before any standby may consider the lease expired.
 * The deadline runs from the *start* of the last successful renewal (when renewTime was stamped), not its
 * end, so a slow renewal cannot stretch it past what the record promises a standby.
 * This alone is not fencing: see fencing.ts for the live check before side effects.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly cfg: Required<LeaderElectionConfig>;
  private readonly callbacks: LeaderCallbacks;
  private readonly logger: Logger | undefined;
  private observed: { spec: LeaseSpec | undefined; resourceVersion: string | undefined; atMs: number } = {
    spec: undefined,
    resourceVersion: undefined,
    atMs: 0,
  };
  private leading = false;
  /** performance.now() at the start of the last successful acquire/renew. */
  private lastRenewStart = 0;
  private reportedLeader = "";

  constructor(client: KubeClient, config: LeaderElectionConfig, callbacks: LeaderCallbacks, logger?: Logger) {
    this.client = client;
    this.cfg = {
      identity: config.identity ?? `${hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      releaseOnCancel: true,
      ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)),
    } as Required<LeaderElectionConfig>;
    if (this.cfg.renewDeadlineMs >= this.cfg.leaseDurationMs) {
      throw new Error("leader election: renewDeadline must be shorter than leaseDuration");
    }
    this.identity = this.cfg.identity;
    this.callbacks = callbacks;
    this.logger = logger?.child({ lease: `${config.namespace}/${config.name}`, identity: this.identity });
  }

  /** Leading, and the renew deadline has not passed (checked on the clock, not only by the renew loop). */
  isLeader(): boolean {
    return this.leading && performance.now() - this.lastRenewStart < this.cfg.renewDeadlineMs;
  }

  /** What ctx.fence checks: this Lease, this identity, and a margin of leaseDuration − renewDeadline. */
  fenceTarget(): FenceTarget {
    return {
      identity: this.identity,
      namespace: this.cfg.namespace,
      name: this.cfg.name,
      isLeader: () => this.isLeader(),
      safetyMarginMs: this.cfg.leaseDurationMs - this.cfg.renewDeadlineMs,
    };
  }

  /**
   * Campaigns until leading, then renews until the signal aborts (returns "stopped", after releasing the
   * lease) or renewal fails for renewDeadline (returns "lost").
   */
  async run(signal: AbortSignal): Promise<"stopped" | "lost"> {
    while (!signal.aborted) {
      const attemptStart = performance.now();
      if (await this.tryAcquireOrRenew(this.cfg.retryPeriodMs)) {
        this.lastRenewStart = attemptStart;
        break;
      }
      await sleep(this.cfg.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    if (signal.aborted) return "stopped";
    this.leading = true;
    this.logger?.info("Acquired lease, leading");
    this.callbacks.onStartedLeading();
    const remaining = () => this.cfg.renewDeadlineMs - (performance.now() - this.lastRenewStart);
    while (!signal.aborted) {
      // Never sleep past the deadline: giving up is due at that moment, not at the next retry tick.
      await sleep(Math.max(0, Math.min(this.cfg.retryPeriodMs, remaining())), signal);
      if (signal.aborted) break;
      const attemptStart = performance.now();
      const ok = remaining() > 0 && (await this.tryAcquireOrRenew(Math.max(remaining(), 1)));
      if (ok) this.lastRenewStart = attemptStart;
      else if (remaining() <= 0) {
        this.leading = false;
        this.logger?.error("Could not renew the lease within the renew deadline, stopped leading");
        this.callbacks.onStoppedLeading();
        return "lost";
      }
    }
    this.leading = false;
    this.callbacks.onStoppedLeading();
    if (this.cfg.releaseOnCancel) await this.release();
    return "stopped";
  }

  private leasePath(): string {
    const ns = encodeURIComponent(this.cfg.namespace);
    return `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
  }

  /** One attempt, bounded by timeoutMs so a hung API call cannot outlast the renew deadline. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    // AbortSignal.timeout takes whole milliseconds only; the budget left is often fractional.
    const signal = AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs)));
    const nowIso = microTime(new Date());
    try {
      let lease: Lease | undefined;
      try {
        lease = await this.client.request<Lease>("GET", `${this.leasePath()}/${this.cfg.name}`, { signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!lease) {
        const spec: LeaseSpec = {
          holderIdentity: this.identity,
          leaseDurationSeconds: Math.ceil(this.cfg.leaseDurationMs / 1000),
          acquireTime: nowIso,
          renewTime: nowIso,
          leaseTransitions: 0,
        };
        const created = await this.client.request<Lease>("POST", this.leasePath(), {
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.cfg.name, namespace: this.cfg.namespace },
            spec,
          },
          signal,
        });
        this.observe(created);
        return true;
      }
      this.observe(lease);
      const now = performance.now();
      const decision = decideLease(
        lease.spec,
        this.identity,
        this.observed.atMs,
        now,
        this.cfg.leaseDurationMs,
      );
      if (decision === "wait") return false;
      const old = lease.spec ?? {};
      const spec: LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.cfg.leaseDurationMs / 1000),
        acquireTime: decision === "renew" && old.acquireTime ? old.acquireTime : nowIso,
        renewTime: nowIso,
        // As client-go: every change of hands counts, including taking a released lease.
        leaseTransitions: (old.leaseTransitions ?? 0) + (decision === "acquire" ? 1 : 0),
      };
      // PUT with the read resourceVersion: if another candidate wrote in between, we get 409 and lose the race.
      const updated = await this.client.request<Lease>("PUT", `${this.leasePath()}/${this.cfg.name}`, {
        body: { ...lease, spec },
        signal,
      });
      this.observe(updated);
      return true;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) {
        this.logger?.warn({ err: describeError(err) }, "Lease acquire/renew attempt failed");
      }
      return false;
    }
  }

  private observe(lease: Lease): void {
    const spec = lease.spec;
    const changed =
      spec?.holderIdentity !== this.observed.spec?.holderIdentity ||
      spec?.renewTime !== this.observed.spec?.renewTime;
    if (changed || this.observed.atMs === 0) {
      this.observed = { spec, resourceVersion: lease.metadata.resourceVersion, atMs: performance.now() };
    }
    const holder = spec?.holderIdentity ?? "";
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.callbacks.onNewLeader?.(holder);
    }
  }

  /** Gives the lease up so a standby need not wait for it to expire (client-go's release()). */
  private async release(): Promise<void> {
    try {
      const lease = await this.client.request<Lease>("GET", `${this.leasePath()}/${this.cfg.name}`, {
        signal: AbortSignal.timeout(this.cfg.retryPeriodMs),
      });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const nowIso = microTime(new Date());
      await this.client.request("PUT", `${this.leasePath()}/${this.cfg.name}`, {
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: nowIso,
            renewTime: nowIso,
          },
        },
        signal: AbortSignal.timeout(this.cfg.retryPeriodMs),
      });
      this.logger?.info("Released lease");
    } catch (err) {
      this.logger?.warn(
        { err: describeError(err) },
        "Could not release the lease; a standby takes over when it expires",
      );
    }
  }
}
