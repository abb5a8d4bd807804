import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Gauge } from "prom-client";
import { KubeClient } from "./client.ts";
import { ClusterCache, type ClusterCacheOptions } from "./cluster-cache.ts";
import { Controller, type ControllerSpec } from "./controller.ts";
import { EventRecorder } from "./events.ts";
import { type Fence, FencingError, leaseFence, noFence } from "./fencing.ts";
import { type Check, HealthServer } from "./health-server.ts";
import { type Informer, InformerFactory } from "./informer.ts";
import type { RestConfig } from "./kubeconfig.ts";
import { type LeaderElectionConfig, LeaderElector } from "./leader-election.ts";
import { createLogger } from "./logger.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { type GroupVersionKind, gvkString, type KubeObject } from "./object.ts";

export interface ManagerOptions {
  /** Ours (kubeconfig.ts; no client-node loaded) or client-node's. */
  kubeConfig: KubeConfig | RestConfig;
  logger?: Logger;
  /** Port of the /metrics, /healthz, /readyz server; 0 picks a free port; undefined disables it. */
  healthPort?: number;
  healthHost?: string;
  /** Omit to run without leader election (one replica, tests). */
  leaderElection?: LeaderElectionConfig;
  /** Called with true when this process starts leading (workers start), false when it stops. */
  onLeadershipChange?: (leading: boolean) => void;
  /** Restrict every informer to one namespace. */
  namespace?: string;
  /** Periodic resync of every informer. Default 10 h (controller-runtime's SyncPeriod). */
  resyncPeriodMs?: number;
  /** Give up starting when caches have not synced by then. Default 2 min (controller-runtime's CacheSyncTimeout). */
  cacheSyncTimeoutMs?: number;
  /** How long stop() waits for in-flight reconciles. Default 30 s (controller-runtime's GracefulShutdownTimeout). */
  gracefulShutdownTimeoutMs?: number;
  fieldManager?: string;
  /** events.k8s.io reportingController. */
  reportingController?: string;
  /** Reconnect backoff of watches (tests shorten it). */
  watchBackoff?: { initialMs?: number; maxMs?: number };
  /** Workers of every controller whose spec sets none (MAX_CONCURRENT_RECONCILES); default 1. */
  maxConcurrentReconciles?: number;
  /** User-Agent of every API request, so audit logs tell replicas apart. */
  userAgent?: string;
  /** Health checks and Secret naming of the ClusterCache (`manager.clusters`). */
  clusterCache?: Omit<ClusterCacheOptions, "client" | "logger">;
}

export class LeaderElectionLostError extends Error {
  override readonly name = "LeaderElectionLostError";
}

/**
 * Holds what every controller shares: the client, shared informers, metrics, probes, logger, event
 * recorder and leader election. start() syncs the caches, then starts workers (at once, or when this
 * process becomes leader). stop() stops taking work, drains in-flight reconciles, releases the lease.
 * A lost lease is not a stop: every in-flight reconcile is aborted at once (its client refuses to send
 * anything more and cancels what is in flight), nothing is drained, and done() rejects so the process exits.
 */
export class Manager {
  readonly client: KubeClient;
  readonly informers: InformerFactory;
  /** Connections to other clusters (workload clusters), from their kubeconfig Secrets. */
  readonly clusters: ClusterCache;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  readonly recorder: EventRecorder;
  readonly health: HealthServer;
  private readonly opts: ManagerOptions;
  private readonly controllers: Controller[] = [];
  private elector: LeaderElector | undefined;
  private electorRun: Promise<"stopped" | "lost"> | undefined;
  private readonly stopSignal = new AbortController();
  /** Aborted when the lease is lost: everything that writes on the leader's behalf is bound to it. */
  private readonly leadership = new AbortController();
  /** The client controllers and the event recorder write with (informers read with the unbound one). */
  private readonly workClient: KubeClient;
  private started = false;
  private stopping: Promise<void> | undefined;
  private workersRunning = false;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  private readonly finished: Promise<void>;
  /** The port the health server listens on, once started. */
  healthPort: number | undefined;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.logger = opts.logger ?? createLogger();
    this.client = new KubeClient(opts.kubeConfig, {
      ...(opts.fieldManager ? { fieldManager: opts.fieldManager } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    });
    this.workClient = this.client.withSignal(this.leadership.signal);
    this.metrics = new RuntimeMetrics();
    this.client.onResponse = (method, code, seconds, host) => {
      this.metrics.restRequests.inc({ code: String(code), method, host });
      this.metrics.restLatency.observe({ verb: method, host }, seconds);
    };
    this.informers = new InformerFactory(this.client, {
      resyncPeriodMs: opts.resyncPeriodMs ?? 10 * 60 * 60 * 1000,
      logger: this.logger,
      ...(opts.watchBackoff ? { backoff: opts.watchBackoff } : {}),
    });
    const informers = this.informers;
    // What the caches hold, per selection: the first thing to look at when the process grows.
    new Gauge({
      name: "homelab_informer_cached_objects",
      help: "Objects held in each informer cache of the management cluster",
      labelNames: ["kind", "namespace", "selector", "shape"],
      registers: [this.metrics.registry],
      collect() {
        this.reset();
        for (const i of informers.all()) {
          this.set(
            {
              kind: gvkString(i.gvk),
              namespace: i.namespace ?? "",
              selector: i.labelSelector ?? "",
              shape: i.metadataOnly ? "metadata" : "full",
            },
            i.size,
          );
        }
      },
    });
    this.clusters = new ClusterCache({
      client: this.client,
      logger: this.logger,
      ...(opts.fieldManager ? { fieldManager: opts.fieldManager } : {}),
      informerDefaults: {
        resyncPeriodMs: opts.resyncPeriodMs ?? 10 * 60 * 60 * 1000,
        ...(opts.watchBackoff ? { backoff: opts.watchBackoff } : {}),
      },
      ...opts.clusterCache,
    });
    this.recorder = new EventRecorder(this.workClient, {
      logger: this.logger,
      ...(opts.reportingController ? { reportingController: opts.reportingController } : {}),
    });
    this.health = new HealthServer(this.metrics.registry);
    this.health.addHealthzCheck("ping", () => true);
    this.health.addReadyzCheck("informers-synced", () => this.informers.hasSynced() && this.started);
    this.finished = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Nobody may be waiting on done(); an unobserved rejection must not crash the process.
    this.finished.catch(() => {});
  }

  addController(spec: ControllerSpec): Controller {
    if (this.started) throw new Error("controllers must be added before start()");
    if (this.controllers.some((c) => c.name === spec.name))
      throw new Error(`duplicate controller name ${spec.name}`);
    const maxConcurrentReconciles = spec.maxConcurrentReconciles ?? this.opts.maxConcurrentReconciles;
    const controller = new Controller(
      { ...spec, ...(maxConcurrentReconciles ? { maxConcurrentReconciles } : {}) },
      {
        client: this.workClient,
        fence: (reason, signal) => this.fence(reason, signal),
        informers: this.informers,
        metrics: this.metrics,
        logger: this.logger,
        recorder: this.recorder,
        clusters: this.clusters,
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
      },
    );
    this.controllers.push(controller);
    return controller;
  }

  /**
   * The shared informer of a kind, restricted like the controllers' (the manager's namespace): use it to
   * add indices (`addIndex`) before start(), or to read the cache outside a reconcile.
   */
  informer<T extends KubeObject = KubeObject>(
    gvk: GroupVersionKind,
    opts: { labelSelector?: string } = {},
  ): Informer<T> {
    return this.informers.informerFor<T>(gvk, {
      ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
    });
  }

  addHealthzCheck(name: string, check: Check): void {
    this.health.addHealthzCheck(name, check);
  }

  addReadyzCheck(name: string, check: Check): void {
    this.health.addReadyzCheck(name, check);
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : this.workersRunning;
  }

  get identity(): string | undefined {
    return this.elector?.identity;
  }

  private leaseFence: Fence | undefined;

  /**
   * Resolves only if this process provably holds the lease right now (fencing.ts); throws FencingError
   * otherwise. Without leader election (one replica) it resolves. Reconciles call it as ctx.fence.
   */
  fence(reason: string, signal?: AbortSignal): Promise<void> {
    if (!this.opts.leaderElection) return noFence(reason, signal);
    if (!this.elector)
      return Promise.reject(new FencingError(`fence before ${reason} refused: not campaigning yet`));
    this.leaseFence ??= leaseFence(this.workClient, this.elector.fenceTarget());
    return this.leaseFence(reason, signal);
  }

  /** Resolves once caches are synced and workers run (or wait for leadership). */
  async start(): Promise<void> {
    if (this.started) return;
    if (this.opts.healthPort !== undefined) {
      this.healthPort = await this.health.listen(this.opts.healthPort, this.opts.healthHost);
      this.logger.info({ port: this.healthPort }, "Serving /metrics, /healthz and /readyz");
    }
    const isNamespaced = async (gvk: GroupVersionKind) => (await this.client.resourceInfo(gvk)).namespaced;
    for (const c of this.controllers) await c.setUp(isNamespaced);
    this.informers.start();
    const timeout = AbortSignal.any([
      AbortSignal.timeout(this.opts.cacheSyncTimeoutMs ?? 120_000),
      this.stopSignal.signal,
    ]);
    try {
      await this.informers.waitForSync(timeout);
    } catch (err) {
      await this.informers.stop();
      await this.health.close();
      throw err;
    }
    this.started = true;
    this.logger.info({ informers: this.informers.all().length }, "Caches synced");
    if (this.opts.leaderElection) this.startElection(this.opts.leaderElection);
    else this.startWorkers();
  }

  private startWorkers(): void {
    if (this.workersRunning || this.stopSignal.signal.aborted) return;
    this.workersRunning = true;
    for (const c of this.controllers) c.startWorkers();
  }

  private startElection(cfg: LeaderElectionConfig): void {
    const name = cfg.name;
    this.metrics.leaderStatus.set({ name }, 0);
    let stoppedByUs = false;
    this.elector = new LeaderElector(
      this.client,
      cfg,
      {
        onStartedLeading: () => {
          this.metrics.leaderStatus.set({ name }, 1);
          this.startWorkers();
          this.opts.onLeadershipChange?.(true);
        },
        onStoppedLeading: () => {
          this.metrics.leaderStatus.set({ name }, 0);
          this.opts.onLeadershipChange?.(false);
          stoppedByUs = this.stopSignal.signal.aborted;
          if (!stoppedByUs) this.abandonWork();
        },
        onNewLeader: (identity) => this.logger.info({ leader: identity }, "Observed leader"),
      },
      this.logger,
    );
    this.electorRun = this.elector.run(this.stopSignal.signal);
    void this.electorRun.then(
      async (outcome) => {
        if (outcome === "lost") {
          // Settle first: the process should exit now, not after the informers have closed.
          this.settle.reject(new LeaderElectionLostError("leader election lost: stopped reconciling"));
          await this.shutdown();
        }
      },
      async (err: unknown) => {
        this.logger.error({ err }, "Leader election failed");
        this.abandonWork();
        this.settle.reject(err instanceof Error ? err : new Error(String(err)));
        await this.shutdown();
      },
    );
  }

  /**
   * Leadership is gone: from this moment nothing may be written on the leader's behalf. Aborts the
   * leadership signal (the controllers' and the recorder's clients refuse every call and cancel those in
   * flight), then every controller's queue and in-flight reconciles, without waiting for them.
   */
  private abandonWork(): void {
    if (this.leadership.signal.aborted) return;
    this.leadership.abort(new LeaderElectionLostError("leadership lost: no more writes"));
    for (const c of this.controllers) c.abandon();
  }

  /** Settles when the manager has stopped: resolves after stop(), rejects with LeaderElectionLostError. */
  done(): Promise<void> {
    return this.finished;
  }

  async stop(): Promise<void> {
    await this.shutdown();
    this.settle.resolve();
  }

  private shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.leadership.signal.aborted) {
        this.logger.info("Stopping after losing the lease: in-flight reconciles were aborted, not drained");
      } else {
        this.logger.info("Stopping: no new reconciles, draining in-flight ones");
        const timeout = this.opts.gracefulShutdownTimeoutMs ?? 30_000;
        // Stop taking work before giving up the lease, so a successor cannot overlap with us.
        await Promise.all(this.controllers.map((c) => c.stop(timeout)));
      }
      // Repeats counted since the last flush are written now, while the client still works; not after a
      // lost lease, when this process must not write at all.
      await this.recorder.stop({ flush: !this.leadership.signal.aborted });
      this.stopSignal.abort();
      await this.electorRun?.catch(() => {});
      await this.clusters.stop();
      await this.informers.stop();
      await this.health.close();
      this.logger.info("Stopped");
    })();
    return this.stopping;
  }

  /** SIGTERM/SIGINT → stop() → exit 0; a second signal exits at once. */
  handleSignals(exit: (code: number) => void = (code) => process.exit(code)): void {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) return exit(1);
      received = true;
      this.logger.info({ signal }, "Received signal, shutting down");
      this.stop().then(
        () => exit(0),
        (err: unknown) => {
          this.logger.error({ err }, "Shutdown failed");
          exit(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
}
