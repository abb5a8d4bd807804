// HTTPS to one Proxmox API endpoint: token auth, TLS trust (CA bundle or pinned certificate
// fingerprint), Proxmox's wire format, and the retry policy. Only reads are retried on transient
// failures; a write is retried only when the connection was refused (the request never left), because
// repeating a create that may have happened is worse than failing.
import { checkServerIdentity, type TLSSocket } from "node:tls";
import { Agent, buildConnector, type Dispatcher, fetch } from "undici";
import type { z } from "zod";
import {
  apiErrorFor,
  ProxmoxApiError,
  ProxmoxNetworkError,
  ProxmoxResponseError,
  ProxmoxTlsError,
} from "./errors.ts";

export type TlsTrust =
  /** PEM bundle of CAs that may sign the Proxmox certificate (hostname is verified as usual). */
  | { caPem: string }
  /** SHA-256 fingerprint of the Proxmox certificate ("AB:CD:..." or plain hex), as `pvenode cert info` shows. */
  | { fingerprint: string };

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export interface RequestInfo {
  method: string;
  path: string;
  status: number | "network-error";
  durationMs: number;
  attempt: number;
}

export interface TransportOptions {
  /** e.g. https://pve1.example:8006 — the client adds /api2/json. */
  url: string;
  /** `user@realm!tokenid`. */
  tokenId: string;
  tokenSecret: string;
  tls: TlsTrust;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Observes every HTTP exchange (for logs and metrics); never sees headers or the secret. */
  onRequest?: (info: RequestInfo) => void;
  /** For tests: replace the sleeping between retries. */
  sleep?: (ms: number) => Promise<void>;
}

export type Params = Record<string, string | number | boolean | undefined>;

export function normalizeFingerprint(text: string): string {
  const hex = text.replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex))
    throw new ProxmoxTlsError("a certificate fingerprint must be 32 bytes of SHA-256 hex");
  return hex.match(/../g)!.join(":");
}

/**
 * Pinning replaces chain validation with an exact certificate match, the way Proxmox's own tools trust
 * a self-signed node (pve-common `fingerprint` options): the connection is refused unless the peer's
 * SHA-256 fingerprint equals the pin. Verification is never just switched off.
 */
export function dispatcherFor(tls: TlsTrust): Dispatcher {
  if ("caPem" in tls) return new Agent({ connect: { ca: tls.caPem, checkServerIdentity } });
  const pin = normalizeFingerprint(tls.fingerprint);
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  return new Agent({
    connect: (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error("no socket"), null);
        const cert = (socket as TLSSocket).getPeerCertificate?.();
        if (!cert?.fingerprint256 || cert.fingerprint256.toUpperCase() !== pin) {
          socket.destroy();
          return callback(
            new ProxmoxTlsError(
              `certificate of ${opts.hostname} has fingerprint ${cert?.fingerprint256 ?? "(none)"}, expected the pinned ${pin}`,
            ),
            null,
          );
        }
        callback(null, socket);
      }),
  });
}

function encode(params: Params): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    // Proxmox's boolean type accepts exactly "1" and "0" (pve-common JSONSchema check_type).
    out.append(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  return out;
}

const TRANSIENT_STATUS = new Set([502, 503, 504]);
const REFUSED = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

function causeOf(err: unknown): { code: string | undefined; cause: unknown } {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e; depth++) {
    if (e instanceof ProxmoxTlsError) return { code: "TLS", cause: e };
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return { code, cause: e };
    e = (e as { cause?: unknown }).cause;
  }
  return { code: undefined, cause: err };
}

function isTlsCode(code: string | undefined): boolean {
  return code !== undefined && (code === "TLS" || /CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO/.test(code));
}

export class ProxmoxTransport {
  readonly baseUrl: string;
  readonly tokenId: string;
  // A private field: the secret is invisible to console.log / util.inspect / JSON.stringify.
  readonly #authorization: string;
  readonly #dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly onRequest: ((info: RequestInfo) => void) | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Number of HTTP requests sent (each retry counts). */
  requestCount = 0;

  constructor(options: TransportOptions) {
    this.baseUrl = `${options.url.replace(/\/+$/, "")}/api2/json`;
    if (!/^[^@!=\s]+@[^@!=\s]+![A-Za-z][A-Za-z0-9.\-_]+$/.test(options.tokenId))
      throw new Error(
        `Proxmox token id must look like user@realm!tokenid, got ${JSON.stringify(options.tokenId)}`,
      );
    this.tokenId = options.tokenId;
    this.#authorization = `PVEAPIToken=${options.tokenId}=${options.tokenSecret}`;
    this.#dispatcher = dispatcherFor(options.tls);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = { attempts: 4, baseMs: 200, maxMs: 5_000, ...options.retry };
    this.onRequest = options.onRequest;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * A view whose every call is bound to `signal`: once it aborts, calls are refused before anything is
   * sent, requests in flight are cancelled, and nothing is retried. Shares the connection pool and counters.
   */
  withSignal(signal: AbortSignal): ProxmoxTransport {
    const view = Object.create(this) as ProxmoxTransport;
    view.call = (method, path, params, schema, own) =>
      this.call(method, path, params, schema, own ? AbortSignal.any([signal, own]) : signal);
    view.withSignal = (more) => this.withSignal(AbortSignal.any([signal, more]));
    return view;
  }

  async call<S extends z.ZodType>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    params: Params,
    schema: S,
    signal?: AbortSignal,
  ): Promise<z.infer<S>> {
    const idempotent = method === "GET";
    for (let attempt = 1; ; attempt++) {
      // Also between retries: an aborted caller must not send the next attempt.
      signal?.throwIfAborted();
      try {
        const data = await this.once(method, path, params, attempt, signal);
        const parsed = schema.safeParse(data);
        if (!parsed.success)
          throw new ProxmoxResponseError(`unexpected response to ${method} ${path}: ${parsed.error.message}`);
        return parsed.data;
      } catch (err) {
        signal?.throwIfAborted();
        const retryable =
          attempt < this.retry.attempts &&
          ((err instanceof ProxmoxNetworkError && (idempotent || !err.mayHaveApplied)) ||
            (err instanceof ProxmoxApiError && idempotent && TRANSIENT_STATUS.has(err.status)));
        if (!retryable) throw err;
        await this.sleep(Math.min(this.retry.baseMs * 2 ** (attempt - 1), this.retry.maxMs));
      }
    }
  }

  private async once(
    method: string,
    path: string,
    params: Params,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const body = encode(params);
    const hasBody = method === "POST" || method === "PUT";
    const url = `${this.baseUrl}${path}${!hasBody && body.size ? `?${body}` : ""}`;
    const started = performance.now();
    this.requestCount++;
    const report = (status: RequestInfo["status"]) =>
      this.onRequest?.({ method, path, status, durationMs: performance.now() - started, attempt });
    let response: Awaited<ReturnType<typeof fetch>>;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        dispatcher: this.#dispatcher,
        headers: {
          authorization: this.#authorization,
          accept: "application/json",
          ...(hasBody ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        ...(hasBody ? { body: body.toString() } : {}),
        signal: signal
          ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)])
          : AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      report("network-error");
      const { code, cause } = causeOf(err);
      if (cause instanceof ProxmoxTlsError) throw cause;
      if (isTlsCode(code))
        throw new ProxmoxTlsError(`TLS verification of ${new URL(this.baseUrl).host} failed: ${code}`, {
          cause,
        });
      const refused = code !== undefined && REFUSED.has(code);
      throw new ProxmoxNetworkError(
        `Proxmox ${method} ${path}: ${code ?? (err as Error).name} ${refused ? "(connection refused)" : "(no response)"}`,
        code,
        !refused,
        cause,
      );
    }
    report(response.status);
    let json: { data?: unknown; errors?: Record<string, string>; message?: string } | undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (response.status !== 200) {
      throw apiErrorFor({
        status: response.status,
        // Proxmox puts the message into the reason phrase; newer versions also into the body.
        proxmoxMessage: json?.message ?? response.statusText ?? `HTTP ${response.status}`,
        errors: json?.errors,
        method,
        path,
      });
    }
    if (!json || !("data" in json))
      throw new ProxmoxResponseError(`${method} ${path}: response is not Proxmox JSON`);
    return json.data;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}
