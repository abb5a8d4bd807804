// The simulator's HTTPS front: Proxmox's request pipeline in order — route, API-token auth, parameter
// verification against the official schema, proxy to the target node (595 when it is down), schema
// permission check, handler — and its wire format: `{"data": ...}`, errors with `message` (also the
// HTTP reason phrase) and, for 400, the per-parameter `errors` object
// (pve-http-server src/PVE/APIServer/AnyEvent.pm, Formatter/Standard.pm).
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, fetch } from "undici";
import { matchRoute } from "./api-schema.ts";
import {
  CHECKSUM_ALGORITHMS,
  type FetchFile,
  SimCluster,
  type SimRecord,
  type StorageSpec,
} from "./cluster.ts";
import { ApiFailure } from "./failure.ts";
import { Faults, faultSettingsSchema } from "./faults.ts";
import { HANDLERS, WithTotal } from "./handlers.ts";
import { verifyParameters } from "./param-check.ts";
import { ALL_PRIVILEGES, evaluate, PermissionDenied, type TokenAcl } from "./permissions.ts";
import { loadState, saveState } from "./state.ts";
import { TaskRunner } from "./tasks.ts";
import { createServingPki } from "./x509.ts";

export interface SimulatorToken {
  /** `user@realm!tokenid`. */
  tokenId: string;
  secret: string;
  /** ACL: path -> privileges (propagating to sub-paths). */
  acl: TokenAcl;
}

export interface ProxmoxSimulatorOptions {
  /** Proxmox node names; default pve1, pve2, pve3. */
  nodes?: string[];
  /** Storages present on every node; default local (dir), local-lvm (lvmthin), shared (nfs, shared). */
  storages?: StorageSpec[];
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  host?: string;
  /** More names and addresses for the serving certificate (local mode: the seed's pve.home.shdr.ch). */
  certificateNames?: string[];
  /** The default token's id; default `homelab@pve!operator`. It holds every privilege on `/`. */
  tokenId?: string;
  /** Extra tokens, e.g. one without some privilege to test 403s. */
  tokens?: SimulatorToken[];
  /** How long a task runs before it finishes, by task type; default 40 ms each. */
  taskDurationMs?: number | Record<string, number>;
  /** How long a node is down before its HA-managed VMs are recovered to other nodes; default 1 s. */
  haRecoveryMs?: number;
  /** Bytes recorded for a download whose URL is not on loopback (the simulator has no internet). */
  offlineDownloadSize?: number;
  /** Reported by GET /version. */
  version?: string;
  /** Linux bridges every node has (GET /nodes/{node}/network); default ["vmbr0"]. */
  bridges?: string[];
  /** The default token's secret; default a random UUID (local mode passes a kept one to resume). */
  tokenSecret?: string;
  /**
   * Files "on the internet" for download-url (the simulator has no internet): URL -> content or its
   * size and digests. Any other non-loopback URL serves `simulatedDownload(url)`.
   */
  remoteFiles?: Record<string, RemoteFile>;
  /**
   * A folder holding the simulator's state (VMs, volumes, HA, tasks, records) as JSON: loaded at start
   * when present, saved after every change, so a restarted simulator resumes.
   */
  stateDir?: string;
  random?: () => number;
}

export type RemoteFile = string | Buffer | { size: number; digests: Partial<Record<string, string>> };

/** What a non-loopback URL the simulator knows nothing about downloads as: a text naming the URL. */
export function simulatedDownload(url: string): Buffer {
  return Buffer.from(`simulated download of ${url}\n`);
}

export function digestsOf(body: Buffer): Record<string, string> {
  return Object.fromEntries(CHECKSUM_ALGORITHMS.map((a) => [a, createHash(a).update(body).digest("hex")]));
}

/** A record with its task's outcome (`exitstatus` once the task ended). */
export interface SimRecordWithOutcome extends SimRecord {
  exitstatus?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

export interface ProxmoxSimulator {
  /** Base URL, e.g. https://127.0.0.1:41234 (the API is under /api2/json). */
  url: string;
  /** PEM of the throwaway CA that signed the serving certificate. */
  caPem: string;
  /** SHA-256 fingerprint of the serving certificate, `AB:CD:...`. */
  fingerprint: string;
  tokenId: string;
  tokenSecret: string;
  /** Bearer secret for the admin endpoints under /simulator/. */
  adminSecret: string;
  faults: Faults;
  cluster: SimCluster;
  tasks: TaskRunner;
  /** Every API request answered so far (method, path without query, status). */
  requests: RecordedRequest[];
  /** VM creates/deletes, downloads and power requests with their tasks' outcomes (also GET /simulator/records). */
  records(): SimRecordWithOutcome[];
  /** Makes a URL downloadable with this content (or size and digests). */
  publishRemoteFile(url: string, file: RemoteFile): void;
  /** Writes the state to `stateDir` now (it is also written after every change). */
  saveState(): void;
  addToken(token: SimulatorToken): void;
  stop(): Promise<void>;
}

const DEFAULT_STORAGES: StorageSpec[] = [
  {
    storage: "local",
    type: "dir",
    content: ["iso", "vztmpl", "backup", "import", "snippets"],
    shared: false,
    total: 100 * 1024 ** 3,
  },
  {
    storage: "local-lvm",
    type: "lvmthin",
    content: ["images", "rootdir"],
    shared: false,
    total: 500 * 1024 ** 3,
  },
  {
    storage: "shared",
    type: "nfs",
    content: ["images", "iso", "import", "backup"],
    shared: true,
    total: 2 * 1024 ** 4,
  },
];

/** pve-http-server Formatter.pm extract_auth_value + AccessControl verify_token: split at the last '='. */
export function parseTokenHeader(
  header: string | undefined,
): { tokenId: string; secret: string } | undefined {
  const m = /PVEAPIToken(?:=| )([^;]*)/.exec(header ?? "");
  if (!m) return undefined;
  const i = m[1]!.lastIndexOf("=");
  if (i <= 0) return undefined;
  return { tokenId: m[1]!.slice(0, i), secret: m[1]!.slice(i + 1) };
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseForm(text: string, into: Record<string, unknown>): void {
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = into[k];
    into[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function asText(v: unknown): string {
  if (typeof v === "boolean") return v ? "1" : "0";
  if (Array.isArray(v)) return v.map(asText).join("\0");
  return String(v);
}

function send(res: ServerResponse, status: number, body: unknown, message?: string): void {
  const text = JSON.stringify(body);
  // The reason phrase carries the message (AnyEvent.pm); it must be a single header-safe line.
  res.statusMessage = (message ?? (status === 200 ? "OK" : "error"))
    .split("\n")[0]!
    .replace(/[^\x20-\x7e]/g, "?");
  res.writeHead(status, {
    "content-type": "application/json;charset=UTF-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "max-age=0",
    pragma: "no-cache",
  });
  res.end(text);
}

/** Download-url source: loopback URLs are really fetched; others come from `remoteFiles` or are simulated. */
function fileFetcher(remote: Map<string, RemoteFile>, offlineSize: number): FetchFile {
  return async (url, verifyCertificates) => {
    const host = new URL(url).hostname;
    if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) {
      const known = remote.get(url);
      if (known === undefined) return { size: offlineSize, digests: digestsOf(simulatedDownload(url)) };
      if (typeof known === "string" || Buffer.isBuffer(known)) {
        const body = Buffer.from(known);
        return { size: body.length, digests: digestsOf(body) };
      }
      return { size: known.size, digests: { ...known.digests } as Record<string, string> };
    }
    // verify-certificates=0 is Proxmox's own switch for self-signed download sources.
    const dispatcher = verifyCertificates ? undefined : new Agent({ connect: { rejectUnauthorized: false } });
    try {
      const response = await fetch(url, dispatcher ? { dispatcher } : {}).catch((err: unknown) => {
        throw new Error(`download failed: ${(err as Error).message}`);
      });
      if (!response.ok) throw new Error(`download failed: ${response.status} ${response.statusText}`);
      const body = Buffer.from(await response.arrayBuffer());
      return { size: body.length, digests: digestsOf(body) };
    } finally {
      await dispatcher?.close();
    }
  };
}

export async function startProxmoxSimulator(
  options: ProxmoxSimulatorOptions = {},
): Promise<ProxmoxSimulator> {
  const host = options.host ?? "127.0.0.1";
  const pki = createServingPki([
    "localhost",
    "127.0.0.1",
    "::1",
    ...(host === "127.0.0.1" ? [] : [host]),
    ...(options.certificateNames ?? []),
  ]);
  const faults = new Faults(options.random);
  const duration = options.taskDurationMs ?? 40;
  const tasks = new TaskRunner(faults, (type) =>
    typeof duration === "number" ? duration : (duration[type] ?? duration["default"] ?? 40),
  );
  const cluster = new SimCluster(
    {
      nodes: options.nodes ?? ["pve1", "pve2", "pve3"],
      storages: options.storages ?? DEFAULT_STORAGES,
      offlineDownloadSize: options.offlineDownloadSize ?? 87 * 1024 ** 2,
      haRecoveryMs: options.haRecoveryMs ?? 1_000,
      random: options.random ?? Math.random,
    },
    tasks,
    faults,
  );
  const stateDir = options.stateDir;
  if (stateDir) loadState(stateDir, cluster, tasks);
  const persist = () => {
    if (stateDir) saveState(stateDir, cluster, tasks);
  };
  tasks.onEnd = persist;
  const remote = new Map(Object.entries(options.remoteFiles ?? {}));
  const fetchFile = fileFetcher(remote, options.offlineDownloadSize ?? 87 * 1024 ** 2);
  const records = (): SimRecordWithOutcome[] =>
    cluster.records.map((r) => {
      const exitstatus = tasks.tasks.get(r.upid)?.exitstatus;
      return exitstatus === undefined ? { ...r } : { ...r, exitstatus };
    });
  faults.onChange = () => {
    tasks.release();
    cluster.nodesChanged();
  };
  const tokens = new Map<string, SimulatorToken>();
  const main: SimulatorToken = {
    tokenId: options.tokenId ?? "homelab@pve!operator",
    secret: options.tokenSecret ?? randomUUID(),
    acl: { "/": ALL_PRIVILEGES },
  };
  for (const t of [main, ...(options.tokens ?? [])]) tokens.set(t.tokenId, t);
  const adminSecret = randomUUID();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: string,
  ) {
    const decoded = safeDecode(path);
    const record = (status: number) => requests.push({ method, path: decoded, status });
    const fail = (status: number, message: string, errors?: Record<string, string>) => {
      record(status);
      send(res, status, { data: null, ...(errors ? { errors } : {}), message }, message);
    };
    if (faults.latencyMs() > 0) await sleep(faults.latencyMs());
    if (faults.dropsConnection(method, decoded)) {
      record(0);
      req.socket.destroy();
      return;
    }
    const auth = parseTokenHeader(req.headers.authorization);
    const token = auth && tokens.get(auth.tokenId);
    if (!auth) return fail(401, "No ticket");
    if (!token || !sameSecret(token.secret, auth.secret)) return fail(401, "authentication failure");
    const match = matchRoute(path);
    const schema = match?.route.methods[method];
    const handler = match && HANDLERS[`${method} ${match.route.template}`];
    if (!match || !schema || !handler) return fail(501, `Method '${method} ${path}' not implemented`);
    const injected = faults.injectedError(method, decoded);
    if (injected) return fail(injected.status, `${injected.message}\n`);

    const raw: Record<string, unknown> = {};
    parseForm(query, raw);
    const body = await readBody(req);
    if (body) {
      if ((req.headers["content-type"] ?? "").startsWith("application/json")) {
        try {
          Object.assign(raw, JSON.parse(body) as Record<string, unknown>);
        } catch {
          return fail(400, "failed to parse JSON body\n");
        }
      } else parseForm(body, raw);
    }
    Object.assign(raw, match.params);
    const errors = verifyParameters(schema.parameters, raw);
    if (Object.keys(errors).length > 0) return fail(400, "Parameter verification failed.\n", errors);
    const params = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, asText(v)]));

    if (params["node"] && cluster.nodes.includes(params["node"]) && faults.nodeDown(params["node"]))
      return fail(595, "Errors during connection establishment, proxy handshake: No route to host\n");
    const check = schema.permissions?.check;
    const denied = check && evaluate(check, token.acl, params);
    if (denied) return fail(403, `${denied.message}\n`);
    try {
      const data = await handler({
        params,
        user: token.tokenId,
        acl: token.acl,
        cluster,
        tasks,
        faults,
        fetchFile,
        version: options.version ?? "9.1.1",
        bridges: options.bridges ?? ["vmbr0"],
      });
      record(200);
      if (method !== "GET") persist();
      const delay = faults.answerDelayMs(method, decoded);
      if (delay > 0) await sleep(delay);
      if (data instanceof WithTotal) send(res, 200, { data: data.data, total: data.total });
      else send(res, 200, { data: data ?? null });
    } catch (err) {
      if (err instanceof PermissionDenied) return fail(403, `${err.message}\n`);
      if (err instanceof ApiFailure) return fail(err.status, err.message, err.errors);
      return fail(500, `${(err as Error).message}\n`);
    }
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, method: string, path: string) {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!bearer || !sameSecret(bearer, adminSecret))
      return send(res, 401, { error: "admin secret required" });
    if (path === "/simulator/faults") {
      if (method === "GET") return send(res, 200, { data: faults.current() });
      if (method === "DELETE") {
        faults.reset();
        return send(res, 200, { data: faults.current() });
      }
      if (method === "PUT") {
        const parsed = faultSettingsSchema.safeParse(JSON.parse((await readBody(req)) || "{}"));
        if (!parsed.success) return send(res, 400, { error: parsed.error.message });
        faults.set(parsed.data);
        return send(res, 200, { data: faults.current() });
      }
    }
    if (path === "/simulator/requests" && method === "GET") return send(res, 200, { data: requests });
    if (path === "/simulator/records" && method === "GET") return send(res, 200, { data: records() });
    return send(res, 404, { error: "no such admin endpoint" });
  }

  const server: Server = createServer({ key: pki.keyPem, cert: pki.certPem }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://simulator");
    const method = (req.method ?? "GET").toUpperCase();
    const work = url.pathname.startsWith("/api2/json/")
      ? handleApi(
          req,
          res,
          method,
          url.pathname.slice("/api2/json".length).replace(/\/+$/, ""),
          url.search.slice(1),
        )
      : url.pathname.startsWith("/simulator/")
        ? handleAdmin(req, res, method, url.pathname)
        : Promise.resolve(send(res, 404, { data: null }, "Not Found"));
    work.catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { data: null, message: String(err) }, "internal error");
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caPem: pki.caPem,
    fingerprint: pki.fingerprint,
    tokenId: main.tokenId,
    tokenSecret: main.secret,
    adminSecret,
    faults,
    cluster,
    tasks,
    requests,
    records,
    publishRemoteFile: (url, file) => {
      remote.set(url, file);
    },
    saveState: persist,
    addToken: (t) => tokens.set(t.tokenId, t),
    stop: async () => {
      tasks.stop();
      persist();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
