// Type-only: importing client-node's values would load its generated models (see kubeconfig.ts).
import type { KubeConfig } from "@kubernetes/client-node";
import { type Dispatcher, fetch } from "undici";
import { ApiError, isNotFound, KindNotServedError, type StatusCause, WatchStatusError } from "./errors.ts";
import { RestConfig } from "./kubeconfig.ts";
import {
  type GroupVersionKind,
  type KubeObject,
  type ObjectKey,
  objectKeyOf,
  splitApiVersion,
} from "./object.ts";

export const FIELD_MANAGER = "homelab-operator";

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS";

export interface ResourceInfo {
  /** The plural resource name used in URLs (`configmaps`). */
  resource: string;
  namespaced: boolean;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  object: T;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Server-side watch duration; the server then ends the stream cleanly. */
  timeoutSeconds?: number;
  /** The stream is aborted when no byte arrives for this long: it catches half-open TCP connections. */
  idleTimeoutMs?: number;
  /** Events carry PartialObjectMetadata (metadata only) instead of the whole object. */
  metadataOnly?: boolean;
  signal?: AbortSignal;
}

/**
 * The API server's metadata-only representations (what client-go's metadata client asks for): the
 * object's metadata and nothing else, so Secrets and Namespaces can be cached without their bodies.
 */
export const PARTIAL_OBJECT_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
export const PARTIAL_OBJECT_METADATA_LIST =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** Accept header; default `application/json`. */
  accept?: string;
  signal?: AbortSignal;
  /** Read the response body off the wire and drop it unparsed (errors are still parsed and thrown). */
  discardBody?: boolean;
}

/** Every call takes one: an aborted signal rejects the call before anything is sent and cancels it in flight. */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * A write whose caller needs only to know it succeeded. The API server answers every write with the whole
 * object, every field manager's managedFields included (for a PeerTenant's status apply several times the
 * status itself): with `discardResponse` the body is read and dropped instead of parsed into objects that
 * are garbage at once, and the call resolves to undefined.
 */
export interface WriteOptions extends CallOptions {
  discardResponse?: boolean;
}

export interface StatusApplyOptions extends WriteOptions {
  force?: boolean;
  fieldManager?: string;
}

export interface ApplyOptions extends StatusApplyOptions {
  subresource?: string;
  dryRun?: boolean;
}

function writeRequestOptions(opts: WriteOptions): { signal?: AbortSignal; discardBody?: boolean } {
  return { ...signalOnly(opts), ...(opts.discardResponse ? { discardBody: true } : {}) };
}

/**
 * Server-side preconditions of a DELETE: the API server refuses with 409 Conflict when the live object's
 * uid (a different object of the same name) or resourceVersion (changed since it was read) differs.
 */
export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
}

export interface DeleteOptions extends CallOptions {
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  ignoreNotFound?: boolean;
  preconditions?: DeletePreconditions;
}

export type PatchType = "json" | "merge" | "strategic";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

/**
 * A small untyped REST client for any kind, on KubeConfig's authentication.
 *
 * Why not client-node's generated APIs: the runtime handles arbitrary GVKs (CRDs included), needs the
 * status subresource, JSON patch with `test`, server-side apply and a long-lived watch it controls.
 * Why one cached dispatcher: KubeConfig.applySecurityAuthentication builds a new undici Agent on every
 * call (client-node 2.0.1 config.js createDispatcher), so a reconnecting watch would pile up agents.
 * Headers are still taken per request, so rotating exec/OIDC tokens keep working.
 */
export class KubeClient {
  /** Ours (the operator process) or client-node's (tests and the harness, which load it anyway). */
  readonly kubeConfig: KubeConfig | RestConfig;
  readonly fieldManager: string;
  /** Bound on every non-watch request, so a half-open connection cannot hang a list or a reconcile. */
  readonly requestTimeoutMs: number;
  /** The API server URL, without a trailing slash. */
  readonly server: string;
  private dispatcher: Dispatcher | undefined;
  private dispatcherResolved = false;
  private readonly discovery = new Map<string, Promise<Map<string, ResourceInfo>>>();
  /** Told about every response (the Manager feeds rest_client_* metrics from it). */
  onResponse: ((method: string, code: number | "<error>", seconds: number, host: string) => void) | undefined;
  /** Set on a view from withSignal(): every call of the view carries it. */
  private boundSignal: AbortSignal | undefined;
  private readonly userAgent: string | undefined;
  /** The client views were made from (views inherit this field through their prototype). */
  private readonly origin: KubeClient = this;

  constructor(
    kubeConfig: KubeConfig | RestConfig,
    opts: { fieldManager?: string; requestTimeoutMs?: number; userAgent?: string } = {},
  ) {
    this.kubeConfig = kubeConfig;
    this.fieldManager = opts.fieldManager ?? FIELD_MANAGER;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.userAgent = opts.userAgent;
    if (kubeConfig instanceof RestConfig) {
      this.server = kubeConfig.server;
    } else {
      const cluster = kubeConfig.getCurrentCluster();
      if (!cluster) throw new Error("kubeconfig has no current cluster");
      this.server = cluster.server.replace(/\/+$/, "");
    }
  }

  /**
   * A view of this client whose every call (reads, writes, watches) is bound to `signal`: once it aborts,
   * calls reject locally before any byte is sent, and calls in flight are cancelled. The view shares the
   * connection pool and discovery cache; the reconcile context hands one to each reconcile, so a
   * reconciler cannot forget to pass its signal.
   */
  withSignal(signal: AbortSignal): KubeClient {
    const view = Object.create(this) as KubeClient;
    view.boundSignal = this.boundSignal ? AbortSignal.any([this.boundSignal, signal]) : signal;
    return view;
  }

  /** The signal a call must obey: the view's, the caller's, or both. */
  private signalFor(signal: AbortSignal | undefined): AbortSignal | undefined {
    if (this.boundSignal && signal) return AbortSignal.any([this.boundSignal, signal]);
    return this.boundSignal ?? signal;
  }

  private async prepare(
    url: string,
    method: HttpVerb,
  ): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }> {
    const kc = this.kubeConfig;
    if (kc instanceof RestConfig) {
      // RestConfig keeps one dispatcher itself, so views made by withSignal share it already.
      const dispatcher = await kc.dispatcher();
      const headers: Record<string, string> = { ...(await kc.headers()) };
      if (this.userAgent) headers["User-Agent"] = this.userAgent;
      return { headers, ...(dispatcher ? { dispatcher } : {}) };
    }
    // Only reached with a client-node KubeConfig, whose caller has loaded the package already.
    const { RequestContext, HttpMethod } = await import("@kubernetes/client-node");
    const ctx = new RequestContext(url, HttpMethod[method]);
    await kc.applySecurityAuthentication(ctx);
    // Views made by withSignal inherit these fields: resolve the dispatcher on the root client, once.
    const root = this.origin;
    if (!root.dispatcherResolved) {
      root.dispatcher = ctx.getDispatcher() as Dispatcher | undefined;
      root.dispatcherResolved = true;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.getHeaders() as unknown as Record<string, string>))
      headers[k] = v;
    if (this.userAgent) headers["User-Agent"] = this.userAgent;
    return { headers, ...(root.dispatcher ? { dispatcher: root.dispatcher } : {}) };
  }

  private url(path: string, query?: Query): string {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async request<T>(method: HttpVerb, path: string, opts: RequestOptions = {}): Promise<T> {
    const signal = this.signalFor(opts.signal);
    // Refused here, not by the server: an aborted reconcile's write must never leave the process.
    signal?.throwIfAborted();
    const url = this.url(path, opts.query);
    const { headers, dispatcher } = await this.prepare(url, method);
    // Credentials may take a while (exec plugins): the signal may have aborted meanwhile.
    signal?.throwIfAborted();
    headers["Accept"] = opts.accept ?? "application/json";
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = opts.contentType ?? "application/json";
    }
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const started = performance.now();
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(dispatcher ? { dispatcher } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      this.observe(method, "<error>", started);
      // Report the caller's reason (e.g. "leadership lost"), not undici's generic AbortError.
      signal?.throwIfAborted();
      throw err;
    }
    this.observe(method, res.status, started);
    if (opts.discardBody && res.ok) {
      try {
        // Bytes outside V8's heap, collected with the next scavenge; nothing is decoded or parsed.
        await res.arrayBuffer();
      } catch (err) {
        signal?.throwIfAborted();
        throw err;
      }
      return undefined as T;
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      signal?.throwIfAborted();
      throw err;
    }
    if (!res.ok) {
      // A bare "404 page not found" (not a Status) means the whole group/version is not served (a CRD
      // was removed): forget its discovery so resourceInfo asks again.
      if (res.status === 404 && !text.trimStart().startsWith("{")) this.forgetDiscovery(path);
      throw apiErrorFrom(res.status, text, method, path);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private observe(method: string, code: number | "<error>", started: number): void {
    this.onResponse?.(method, code, (performance.now() - started) / 1000, new URL(this.server).host);
  }

  /** Resolves the plural resource name and scope of a kind through discovery (cached per group/version). */
  async resourceInfo(gvk: GroupVersionKind): Promise<ResourceInfo> {
    const found = (await this.discover(gvk.apiVersion, false)).get(gvk.kind);
    if (found) return found;
    // A CRD may have been installed after the first lookup.
    const fresh = (await this.discover(gvk.apiVersion, true)).get(gvk.kind);
    if (!fresh) throw new KindNotServedError(gvk.kind, gvk.apiVersion);
    return fresh;
  }

  private forgetDiscovery(path: string): void {
    const m = /^\/apis\/([^/]+)\/([^/?]+)/.exec(path) ?? /^\/api\/([^/?]+)/.exec(path);
    if (!m) return;
    this.discovery.delete(m[2] ? `${m[1]}/${m[2]}` : (m[1] ?? ""));
  }

  private discover(apiVersion: string, refresh: boolean): Promise<Map<string, ResourceInfo>> {
    let cached = this.discovery.get(apiVersion);
    if (!cached || refresh) {
      const { group } = splitApiVersion(apiVersion);
      const path = group ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      // On the root client: discovery is shared, and one aborted reconcile must not fail it for all.
      cached = this.origin
        .request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>("GET", path)
        .then((list) => {
          const byKind = new Map<string, ResourceInfo>();
          for (const r of list.resources) {
            if (!r.name.includes("/")) byKind.set(r.kind, { resource: r.name, namespaced: r.namespaced });
          }
          return byKind;
        })
        .catch((err: unknown) => {
          this.discovery.delete(apiVersion);
          if (isNotFound(err)) return new Map<string, ResourceInfo>();
          throw err;
        });
      this.discovery.set(apiVersion, cached);
    }
    return cached;
  }

  /** The URL path of a collection (no name) or an object, optionally of a subresource. */
  async pathFor(
    gvk: GroupVersionKind,
    ref: { namespace?: string | undefined; name?: string | undefined },
    subresource?: string,
  ): Promise<string> {
    const info = await this.resourceInfo(gvk);
    const { group } = splitApiVersion(gvk.apiVersion);
    let path = group ? `/apis/${gvk.apiVersion}` : `/api/${gvk.apiVersion}`;
    if (info.namespaced && ref.namespace) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
    if (info.namespaced && !ref.namespace && ref.name) {
      throw new Error(`${gvk.kind} ${ref.name} is namespaced but no namespace was given`);
    }
    path += `/${info.resource}`;
    if (ref.name) path += `/${encodeURIComponent(ref.name)}`;
    if (subresource) path += `/${subresource}`;
    return path;
  }

  async get<T extends KubeObject>(gvk: GroupVersionKind, key: ObjectKey, opts: CallOptions = {}): Promise<T> {
    return this.request<T>("GET", await this.pathFor(gvk, key), signalOnly(opts));
  }

  /** Like get, but undefined when the object does not exist. */
  async getOrUndefined<T extends KubeObject>(
    gvk: GroupVersionKind,
    key: ObjectKey,
    opts: CallOptions = {},
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(gvk, key, opts);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list<T extends KubeObject>(
    gvk: GroupVersionKind,
    opts: {
      namespace?: string;
      labelSelector?: string;
      fieldSelector?: string;
      limit?: number;
      continue?: string;
      resourceVersion?: string;
      /** Items are PartialObjectMetadata; apiVersion/kind are still set to `gvk`. */
      metadataOnly?: boolean;
      signal?: AbortSignal;
    } = {},
  ): Promise<ListResult<T>> {
    const path = await this.pathFor(gvk, { namespace: opts.namespace });
    const res = await this.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
      "GET",
      path,
      {
        query: {
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          limit: opts.limit,
          continue: opts.continue,
          resourceVersion: opts.resourceVersion,
        },
        ...(opts.metadataOnly ? { accept: PARTIAL_OBJECT_METADATA_LIST } : {}),
        ...signalOnly(opts),
      },
    );
    // List items carry no apiVersion/kind (PartialObjectMetadata ones carry meta.k8s.io's); fill them so every cached object is self-describing.
    for (const item of res.items) {
      item.apiVersion = gvk.apiVersion;
      item.kind = gvk.kind;
    }
    return {
      items: res.items,
      resourceVersion: res.metadata.resourceVersion,
      ...(res.metadata.continue ? { continue: res.metadata.continue } : {}),
    };
  }

  create<T extends KubeObject>(obj: T, opts: CallOptions & { discardResponse: true }): Promise<undefined>;
  create<T extends KubeObject>(obj: T, opts?: WriteOptions): Promise<T>;
  async create<T extends KubeObject>(obj: T, opts: WriteOptions = {}): Promise<T | undefined> {
    const gvk = gvkOf(obj);
    const path = await this.pathFor(gvk, { namespace: obj.metadata?.namespace });
    return this.request<T>("POST", path, {
      body: obj,
      query: { fieldManager: this.fieldManager },
      ...writeRequestOptions(opts),
    });
  }

  /** PUT: fails with 409 Conflict when metadata.resourceVersion is stale (optimistic concurrency). */
  replace<T extends KubeObject>(
    obj: T,
    subresource: string | undefined,
    opts: CallOptions & { discardResponse: true },
  ): Promise<undefined>;
  replace<T extends KubeObject>(obj: T, subresource?: string, opts?: WriteOptions): Promise<T>;
  async replace<T extends KubeObject>(
    obj: T,
    subresource?: string,
    opts: WriteOptions = {},
  ): Promise<T | undefined> {
    const path = await this.pathFor(gvkOf(obj), objectKeyOf(obj), subresource);
    // A PUT that carries managedFields replaces the server's with them; cached objects keep only our own
    // managers' entries (informer transform), so sending them would drop every other manager's ownership.
    const { managedFields: _dropped, ...metadata } = obj.metadata ?? {};
    return this.request<T>("PUT", path, {
      body: { ...obj, metadata },
      query: { fieldManager: this.fieldManager },
      ...writeRequestOptions(opts),
    });
  }

  /** DELETE; with `preconditions` the server deletes only that very object (uid) in that state (resourceVersion). */
  async delete(gvk: GroupVersionKind, key: ObjectKey, opts: DeleteOptions = {}): Promise<void> {
    const preconditions = opts.preconditions
      ? Object.fromEntries(Object.entries(opts.preconditions).filter(([, v]) => v !== undefined))
      : undefined;
    const needsBody = opts.propagationPolicy || (preconditions && Object.keys(preconditions).length);
    try {
      await this.request("DELETE", await this.pathFor(gvk, key), {
        ...(needsBody
          ? {
              body: {
                apiVersion: "v1",
                kind: "DeleteOptions",
                ...(opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : {}),
                ...(preconditions && Object.keys(preconditions).length ? { preconditions } : {}),
              },
            }
          : {}),
        ...signalOnly(opts),
      });
    } catch (err) {
      if (opts.ignoreNotFound && isNotFound(err)) return;
      throw err;
    }
  }

  async patch<T extends KubeObject>(
    gvk: GroupVersionKind,
    key: ObjectKey,
    patch: unknown,
    type: PatchType,
    subresource?: string,
    opts: CallOptions = {},
  ): Promise<T> {
    return this.request<T>("PATCH", await this.pathFor(gvk, key, subresource), {
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      query: { fieldManager: this.fieldManager },
      ...signalOnly(opts),
    });
  }

  /**
   * Server-side apply with the operator's single field manager. `force` defaults to true: the SSA docs
   * recommend that controllers always force conflicts on objects they own and manage. `dryRun`: the
   * server checks everything and stores nothing.
   */
  apply<T extends KubeObject>(obj: T, opts: ApplyOptions & { discardResponse: true }): Promise<undefined>;
  apply<T extends KubeObject>(obj: T, opts?: ApplyOptions): Promise<T>;
  async apply<T extends KubeObject>(obj: T, opts: ApplyOptions = {}): Promise<T | undefined> {
    const path = await this.pathFor(gvkOf(obj), objectKeyOf(obj), opts.subresource);
    // An apply configuration must not carry managedFields (the API server rejects it); objects read back
    // from the API do, so drop them here rather than in every caller.
    const { managedFields: _dropped, ...metadata } = obj.metadata ?? {};
    return this.request<T>("PATCH", path, {
      body: { ...obj, metadata },
      contentType: "application/apply-patch+yaml",
      query: {
        fieldManager: opts.fieldManager ?? this.fieldManager,
        force: opts.force ?? true,
        // Validated, admitted and defaulted as a real apply, and nothing stored.
        ...(opts.dryRun ? { dryRun: "All" } : {}),
      },
      ...writeRequestOptions(opts),
    });
  }

  /** Server-side apply of `status` only, through the status subresource. */
  applyStatus<T extends KubeObject>(
    obj: T,
    opts: StatusApplyOptions & { discardResponse: true },
  ): Promise<undefined>;
  applyStatus<T extends KubeObject>(obj: T, opts?: StatusApplyOptions): Promise<T>;
  async applyStatus<T extends KubeObject>(obj: T, opts: StatusApplyOptions = {}): Promise<T | undefined> {
    return this.apply(obj, { ...opts, subresource: "status" });
  }

  /** Merge-patches `status` through the status subresource (the main resource ignores status writes). */
  async patchStatus<T extends KubeObject>(
    gvk: GroupVersionKind,
    key: ObjectKey,
    status: unknown,
    opts: CallOptions = {},
  ): Promise<T> {
    return this.patch<T>(gvk, key, { status }, "merge", "status", opts);
  }

  /**
   * Opens one watch request and yields its events until the server ends it, the connection breaks
   * (the iterator then throws) or the signal aborts. A server-side ERROR event throws WatchStatusError.
   */
  async *watch<T extends KubeObject>(
    gvk: GroupVersionKind,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>> {
    const path = await this.pathFor(gvk, { namespace: opts.namespace });
    const url = this.url(path, {
      watch: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      allowWatchBookmarks: opts.allowWatchBookmarks,
      timeoutSeconds: opts.timeoutSeconds,
    });
    const { headers, dispatcher } = await this.prepare(url, "GET");
    headers["Accept"] = opts.metadataOnly ? PARTIAL_OBJECT_METADATA : "application/json";
    const outer = this.signalFor(opts.signal);
    const abort = new AbortController();
    const onOuterAbort = () => abort.abort(outer?.reason);
    outer?.addEventListener("abort", onOuterAbort, { once: true });
    // The caller may have stopped while we were resolving the path or the credentials.
    if (outer?.aborted) onOuterAbort();
    const idleMs = opts.idleTimeoutMs ?? 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const touch = () => {
      if (!idleMs) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () => abort.abort(new Error(`watch on ${path} received nothing for ${idleMs}ms`)),
        idleMs,
      );
      idleTimer.unref();
    };
    try {
      touch();
      const started = performance.now();
      const res = await fetch(url, {
        method: "GET",
        headers,
        signal: abort.signal,
        ...(dispatcher ? { dispatcher } : {}),
      }).catch((err: unknown) => {
        this.observe("GET", "<error>", started);
        throw err;
      });
      this.observe("GET", res.status, started);
      if (!res.ok || !res.body) throw apiErrorFrom(res.status, await res.text(), "GET", path);
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of res.body) {
        touch();
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline = buffered.indexOf("\n");
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf("\n");
          if (!line) continue;
          const event = JSON.parse(line) as { type: string; object: KubeObject };
          if (event.type === "ERROR") {
            const status = event.object as StatusBody;
            throw new WatchStatusError({
              code: status.code ?? 500,
              reason: status.reason ?? "Unknown",
              message: status.message ?? "watch ended with an error event",
              method: "WATCH",
              path,
              causes: status.details?.causes ?? [],
            });
          }
          yield event as WatchEvent<T>;
        }
      }
    } catch (err) {
      if (abort.signal.aborted && outer?.aborted) return;
      if (abort.signal.aborted && abort.signal.reason instanceof Error) throw abort.signal.reason;
      throw err;
    } finally {
      clearTimeout(idleTimer);
      outer?.removeEventListener("abort", onOuterAbort);
      abort.abort();
    }
  }
}

function signalOnly(opts: CallOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}

/**
 * Deletes exactly the object that was read: the DELETE carries its uid (and resourceVersion, when it has
 * one) as preconditions, so a same-named object created since, or a change made since the read, makes the
 * server refuse (409) instead of deleting something the decision was not about. Already gone: resolves.
 */
export async function deleteExactly(
  client: KubeClient,
  obj: KubeObject,
  opts: Omit<DeleteOptions, "preconditions" | "ignoreNotFound"> & { checkResourceVersion?: boolean } = {},
): Promise<void> {
  const uid = obj.metadata?.uid;
  if (!uid)
    throw new Error(
      `deleteExactly: ${obj.kind} ${obj.metadata?.name} has no uid (was it read from the API?)`,
    );
  const { checkResourceVersion = true, ...rest } = opts;
  const rv = checkResourceVersion ? obj.metadata?.resourceVersion : undefined;
  await client.delete(gvkOf(obj), objectKeyOf(obj), {
    ...rest,
    ignoreNotFound: true,
    preconditions: { uid, ...(rv ? { resourceVersion: rv } : {}) },
  });
}

export function gvkOf(obj: KubeObject): GroupVersionKind {
  if (!obj.apiVersion || !obj.kind) throw new Error("object lacks apiVersion or kind");
  return { apiVersion: obj.apiVersion, kind: obj.kind };
}

interface StatusBody {
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: StatusCause[] };
}

function apiErrorFrom(code: number, text: string, method: string, path: string): ApiError {
  let reason = "Unknown";
  let message = text.slice(0, 500);
  let causes: StatusCause[] = [];
  try {
    const status = JSON.parse(text) as StatusBody;
    reason = status.reason ?? reason;
    message = status.message ?? message;
    causes = status.details?.causes ?? [];
  } catch {
    // not a Status object (a proxy error page, for instance): keep the raw text
  }
  return new ApiError({ code, reason, message, method, path, causes });
}
