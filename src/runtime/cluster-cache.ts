// Clients and informers for clusters other than the one the operator runs against (a HomelabCluster's
// workload cluster), modelled on Cluster API's ClusterCache: one connection per cluster, built from its
// kubeconfig Secret on first use, probed periodically, torn down after repeated probe failures or when
// the Secret goes away or changes, and built again on the next use.
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { type CacheReader, cacheReaderOver } from "./cache-reader.ts";
import { KubeClient } from "./client.ts";
import { describeError } from "./errors.ts";
import { type Informer, InformerFactory, type InformerSelection } from "./informer.ts";
import { parseKubeconfig, RestConfig } from "./kubeconfig.ts";
import { type GroupVersionKind, type KubeObject, keyOf, type ObjectKey } from "./object.ts";

export interface ClusterCacheOptions {
  /** Client of the management cluster, where the kubeconfig Secrets live. */
  client: KubeClient;
  logger?: Logger;
  /** The Secret holding a cluster's kubeconfig. Default `<cluster name>-kubeconfig` (Cluster API). */
  kubeconfigSecret?: (cluster: ObjectKey) => ObjectKey;
  /** Between health checks. Default 10 s (Cluster API's HealthProbe interval). */
  healthCheckIntervalMs?: number;
  /** One probe's deadline. Default 5 s. */
  healthCheckTimeoutMs?: number;
  /** Consecutive failed probes before the connection is torn down. Default 5 (Cluster API). */
  failureThreshold?: number;
  /** Options for every remote informer (resync, backoff). */
  informerDefaults?: { resyncPeriodMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
  fieldManager?: string;
  /** Observes every teardown; for tests and logs. */
  onTeardown?: (cluster: string, reason: string) => void;
}

/** A watch of a remote kind whose events become keys of a management-cluster controller. */
export interface ClusterWatch extends InformerSelection {
  /** Unique per consumer; a second watch() with the same name on the same connection does nothing. */
  name: string;
  gvk: GroupVersionKind;
  /** The management-cluster reconcile keys an event on the remote `obj` should trigger. */
  map(obj: KubeObject): string[];
  /** Keys woken when the connection is torn down, so their reconciles notice and watch again. */
  owners?: string[];
  enqueue(key: string): void;
}

/** One live connection. Do not keep it across reconciles: after a teardown it is stopped for good. */
export interface ClusterAccessor {
  cluster: string;
  client: KubeClient;
  informers: InformerFactory;
  /** Reads the remote caches opened with watch() on this connection. */
  cache: CacheReader;
  /** False once torn down. */
  live(): boolean;
}

/** The cluster has no usable connection now (no Secret, bad kubeconfig, unreachable); retry later. */
export class ClusterNotConnectedError extends Error {
  override readonly name = "ClusterNotConnectedError";
}

/** The kubeconfig a Secret holds: key `value` (Cluster API), or `kubeconfig`. */
export function kubeconfigFromSecret(secret: KubeObject): string | undefined {
  const data = (secret as { data?: Record<string, string> }).data ?? {};
  const encoded = data.value ?? data.kubeconfig;
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}

interface RegisteredWatch {
  informer: Informer;
  owners: string[];
  enqueue(key: string): void;
}

interface Connection extends ClusterAccessor {
  secret: ObjectKey;
  /** sha256 of the kubeconfig text: a changed Secret means new credentials or a new endpoint. */
  digest: string;
  failures: number;
  watches: Map<string, RegisteredWatch>;
  stopped: boolean;
  checking: boolean;
}

export class ClusterCache {
  private readonly opts: ClusterCacheOptions;
  private readonly connections = new Map<string, Connection>();
  private readonly connecting = new Map<string, Promise<Connection>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: ClusterCacheOptions) {
    this.opts = opts;
  }

  private secretOf(cluster: ObjectKey): ObjectKey {
    return (
      this.opts.kubeconfigSecret?.(cluster) ?? {
        ...(cluster.namespace ? { namespace: cluster.namespace } : {}),
        name: `${cluster.name}-kubeconfig`,
      }
    );
  }

  /** Clusters with a live connection, as `namespace/name`. */
  connected(): string[] {
    return [...this.connections.keys()];
  }

  /** The live connection to `cluster`, made now if there is none. */
  async get(cluster: ObjectKey, signal?: AbortSignal): Promise<ClusterAccessor> {
    if (this.closed) throw new ClusterNotConnectedError("the cluster cache is stopped");
    const key = keyOf(cluster);
    const existing = this.connections.get(key);
    if (existing) return existing;
    let pending = this.connecting.get(key);
    if (!pending) {
      // Shared by every caller that asks meanwhile, so no one caller's signal may cancel it; its own
      // deadlines (request and probe timeouts) bound it.
      pending = this.connect(cluster).finally(() => this.connecting.delete(key));
      this.connecting.set(key, pending);
    }
    if (!signal) return pending;
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = () => reject(signal.reason ?? new Error("aborted"));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  private async connect(cluster: ObjectKey): Promise<Connection> {
    const key = keyOf(cluster);
    const secretKey = this.secretOf(cluster);
    const secret = await this.opts.client
      .getOrUndefined({ apiVersion: "v1", kind: "Secret" }, secretKey)
      .catch((err: unknown) => {
        throw new ClusterNotConnectedError(
          `cluster ${key}: reading its kubeconfig Secret failed: ${describeError(err)}`,
        );
      });
    if (!secret)
      throw new ClusterNotConnectedError(`cluster ${key}: kubeconfig Secret ${keyOf(secretKey)} not found`);
    const text = kubeconfigFromSecret(secret);
    if (!text) {
      throw new ClusterNotConnectedError(
        `cluster ${key}: Secret ${keyOf(secretKey)} has neither a "value" nor a "kubeconfig" key`,
      );
    }
    let client: KubeClient;
    let rest: RestConfig;
    try {
      rest = parseKubeconfig(text);
      client = new KubeClient(rest, {
        ...(this.opts.fieldManager ? { fieldManager: this.opts.fieldManager } : {}),
        requestTimeoutMs: 30_000,
      });
    } catch (err) {
      // Never echo the kubeconfig: it carries credentials.
      throw new ClusterNotConnectedError(
        `cluster ${key}: Secret ${keyOf(secretKey)} holds no usable kubeconfig (${(err as Error).name})`,
      );
    }
    if (!(await this.probe(client)) || this.closed) {
      await rest.close();
      if (this.closed) throw new ClusterNotConnectedError("the cluster cache is stopped");
      throw new ClusterNotConnectedError(`cluster ${key}: the API server did not answer GET /version`);
    }
    const logger: Logger | undefined = this.opts.logger?.child<never>({ cluster: key });
    const informers = new InformerFactory(client, {
      ...this.opts.informerDefaults,
      ...(logger ? { logger } : {}),
    });
    informers.start();
    const watches = new Map<string, RegisteredWatch>();
    const conn: Connection = {
      cluster: key,
      client,
      informers,
      secret: secretKey,
      digest: createHash("sha256").update(text).digest("hex"),
      failures: 0,
      watches,
      stopped: false,
      checking: false,
      live: () => !conn.stopped,
      cache: cacheReaderOver(`the connection to cluster ${key}`, (gvk) =>
        [...new Set([...watches.values()].map((w) => w.informer))].filter(
          (i) => i.gvk.apiVersion === gvk.apiVersion && i.gvk.kind === gvk.kind,
        ),
      ),
    };
    this.connections.set(key, conn);
    this.opts.logger?.info({ cluster: key }, "Connected to cluster");
    this.ensureTimer();
    return conn;
  }

  /**
   * Watches `watch.gvk` in `cluster` (connecting if needed) and routes its events through `watch.map` to
   * `watch.enqueue`. Idempotent per watch name and connection, so a reconcile may call it every time.
   */
  async watch(cluster: ObjectKey, watch: ClusterWatch, signal?: AbortSignal): Promise<Informer> {
    const conn = (await this.get(cluster, signal)) as Connection;
    let registered = conn.watches.get(watch.name);
    if (!registered) {
      const informer = conn.informers.informerFor(watch.gvk, {
        ...(watch.namespace ? { namespace: watch.namespace } : {}),
        ...(watch.labelSelector ? { labelSelector: watch.labelSelector } : {}),
        ...(watch.metadataOnly ? { metadataOnly: true } : {}),
        ...(watch.transform ? { transform: watch.transform } : {}),
      });
      const enqueue = (obj: KubeObject) => {
        // A late event from a connection already torn down must not wake anyone.
        if (!conn.stopped) for (const k of watch.map(obj)) watch.enqueue(k);
      };
      informer.addHandler({
        onAdd: enqueue,
        onUpdate: (old, obj) => {
          enqueue(old);
          enqueue(obj);
        },
        onDelete: enqueue,
      });
      registered = { informer, owners: [], enqueue: watch.enqueue };
      conn.watches.set(watch.name, registered);
    }
    for (const o of watch.owners ?? []) if (!registered.owners.includes(o)) registered.owners.push(o);
    await registered.informer.waitForSync(
      AbortSignal.any([AbortSignal.timeout(60_000), ...(signal ? [signal] : [])]),
    );
    return registered.informer;
  }

  /** Tears the connection down now (the cluster is being deleted); the next get() connects anew. */
  async disconnect(cluster: ObjectKey, reason = "disconnected by its owner"): Promise<void> {
    const conn = this.connections.get(keyOf(cluster));
    if (conn) await this.teardown(conn, reason);
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.checkAll(), this.opts.healthCheckIntervalMs ?? 10_000);
    this.timer.unref();
  }

  /** One round of checks; exposed so tests need not wait for the interval. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.connections.values()].map((c) => this.check(c)));
  }

  private async check(conn: Connection): Promise<void> {
    if (conn.checking || conn.stopped) return;
    conn.checking = true;
    try {
      const secret = await this.opts.client
        .getOrUndefined({ apiVersion: "v1", kind: "Secret" }, conn.secret)
        .then(
          (s) => ({ ok: true as const, s }),
          // The management cluster being unreachable says nothing about this cluster: check again later.
          () => ({ ok: false as const }),
        );
      if (secret.ok && !secret.s) return await this.teardown(conn, "kubeconfig Secret deleted");
      if (secret.ok && secret.s) {
        const text = kubeconfigFromSecret(secret.s) ?? "";
        if (createHash("sha256").update(text).digest("hex") !== conn.digest) {
          return await this.teardown(conn, "kubeconfig Secret changed");
        }
      }
      if (await this.probe(conn.client)) {
        conn.failures = 0;
        return;
      }
      conn.failures++;
      const threshold = this.opts.failureThreshold ?? 5;
      this.opts.logger?.warn(
        { cluster: conn.cluster, failures: conn.failures, threshold },
        "Cluster health check failed",
      );
      if (conn.failures >= threshold)
        await this.teardown(conn, `unhealthy: ${conn.failures} failed health checks`);
    } finally {
      conn.checking = false;
    }
  }

  private async probe(client: KubeClient, signal?: AbortSignal): Promise<boolean> {
    const timeout = AbortSignal.timeout(this.opts.healthCheckTimeoutMs ?? 5_000);
    try {
      await client.request("GET", "/version", {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      return true;
    } catch (err) {
      if (signal?.aborted) throw err;
      return false;
    }
  }

  private async teardown(conn: Connection, reason: string): Promise<void> {
    if (conn.stopped) return;
    conn.stopped = true;
    if (this.connections.get(conn.cluster) === conn) this.connections.delete(conn.cluster);
    this.opts.logger?.info({ cluster: conn.cluster, reason }, "Disconnected from cluster");
    this.opts.onTeardown?.(conn.cluster, reason);
    await conn.informers.stop();
    // Its TLS agent's sockets would otherwise stay open until the server closes them.
    if (conn.client.kubeConfig instanceof RestConfig) await conn.client.kubeConfig.close();
    // Wake whoever watched through this connection: their next reconcile connects and watches again.
    for (const w of conn.watches.values()) for (const o of w.owners) w.enqueue(o);
    if (this.connections.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.connections.values()].map((c) => this.teardown(c, "stopping")));
  }
}
