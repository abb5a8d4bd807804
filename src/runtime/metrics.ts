import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { QueueObserver, WorkQueue } from "./queue.ts";

/** controller-runtime's reconcile-time buckets (pkg/internal/controller/metrics/metrics.go). */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go/controller-runtime workqueue buckets: ExponentialBuckets(10e-9, 10, 12). */
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 10e-9 * 10 ** i);

export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";

/**
 * The Prometheus metrics of one Manager, named and labelled as controller-runtime's so existing dashboards
 * and alerts work unchanged. Each Manager has its own Registry (tests run several in one process).
 */
export class RuntimeMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly terminalReconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly maxConcurrentReconciles: Gauge<"controller">;
  readonly queueDepth: Gauge<"name" | "controller">;
  readonly queueAdds: Counter<"name" | "controller">;
  readonly queueRetries: Counter<"name" | "controller">;
  readonly queueDuration: Histogram<"name" | "controller">;
  readonly workDuration: Histogram<"name" | "controller">;
  readonly leaderStatus: Gauge<"name">;
  readonly leaderSlowpath: Counter<"name">;
  readonly restRequests: Counter<"code" | "method" | "host">;
  readonly restLatency: Histogram<"verb" | "host">;
  private readonly queues = new Map<string, WorkQueue>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = new Registry();
    this.registry = r;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: r });
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers: [r],
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers: [r],
    });
    this.terminalReconcileErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"],
      registers: [r],
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: RECONCILE_BUCKETS,
      registers: [r],
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers: [r],
    });
    this.maxConcurrentReconciles = new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers: [r],
    });
    this.queueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name", "controller"],
      registers: [r],
    });
    this.queueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name", "controller"],
      registers: [r],
    });
    this.queueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of items added with a delay (rate-limited requeues, RequeueAfter)",
      labelNames: ["name", "controller"],
      registers: [r],
    });
    this.queueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name", "controller"],
      buckets: QUEUE_BUCKETS,
      registers: [r],
    });
    this.workDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name", "controller"],
      buckets: QUEUE_BUCKETS,
      registers: [r],
    });
    const queues = this.queues;
    new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
      labelNames: ["name", "controller"],
      registers: [r],
      collect() {
        for (const [name, q] of queues) {
          const now = q.clockNow();
          const total = q.inFlightSince().reduce((sum, t) => sum + (now - t), 0);
          this.set({ name, controller: name }, total / 1000);
        }
      },
    });
    new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running",
      labelNames: ["name", "controller"],
      registers: [r],
      collect() {
        for (const [name, q] of queues) {
          const now = q.clockNow();
          const longest = q.inFlightSince().reduce((max, t) => Math.max(max, now - t), 0);
          this.set({ name, controller: name }, longest / 1000);
        }
      },
    });
    this.leaderStatus = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
      labelNames: ["name"],
      registers: [r],
    });
    this.restRequests = new Counter({
      name: "rest_client_requests_total",
      help: "Number of HTTP requests, partitioned by status code, method, and host",
      labelNames: ["code", "method", "host"],
      registers: [r],
    });
    this.restLatency = new Histogram({
      name: "rest_client_request_duration_seconds",
      help: "Request latency in seconds. Broken down by verb, and host",
      labelNames: ["verb", "host"],
      // client-go's buckets (k8s.io/client-go/tools/metrics via component-base)
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers: [r],
    });
    this.leaderSlowpath = new Counter({
      name: "leader_election_slowpath_total",
      help: "Total number of slow path exercised in renewing leader leases",
      labelNames: ["name"],
      registers: [r],
    });
  }

  /** Pre-initialises a controller's series to 0, as controller-runtime does, so rates work from the start. */
  registerController(controller: string, maxConcurrent: number): void {
    for (const result of ["success", "error", "requeue", "requeue_after"] as const) {
      this.reconcileTotal.inc({ controller, result }, 0);
    }
    this.reconcileErrors.inc({ controller }, 0);
    this.terminalReconcileErrors.inc({ controller }, 0);
    this.activeWorkers.set({ controller }, 0);
    this.maxConcurrentReconciles.set({ controller }, maxConcurrent);
  }

  /** The queue's observer; the controller's queue is named after the controller, as in controller-runtime. */
  queueObserver(name: string): QueueObserver {
    const labels = { name, controller: name };
    this.queueDepth.set(labels, 0);
    this.queueAdds.inc(labels, 0);
    this.queueRetries.inc(labels, 0);
    return {
      added: () => this.queueAdds.inc(labels),
      depth: (n) => this.queueDepth.set(labels, n),
      dequeued: (s) => this.queueDuration.observe(labels, s),
      finished: (s) => this.workDuration.observe(labels, s),
      retried: () => this.queueRetries.inc(labels),
    };
  }

  trackQueue(name: string, queue: WorkQueue): void {
    this.queues.set(name, queue);
  }
}
