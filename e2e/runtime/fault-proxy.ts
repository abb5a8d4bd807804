// A plain-HTTP reverse proxy in front of the API server that a test can break on purpose:
// cut every open connection (the watch included) and refuse new ones for a while, or answer the next
// watch with the ERROR event the API server sends when the requested resourceVersion has been compacted
// away ("410 Expired: too old resource version"), or the 504 it answers when the requested resourceVersion
// is newer than its cache ("Too large resource version", e.g. after an etcd restore).
// Why inject it rather than provoke it: on kube-apiserver 1.36 with the watch cache, a watch from an old
// resourceVersion is still served (ADDED events from the cache) even after an etcd compaction, measured
// on the test control plane; a real 410 needs the watch cache to evict history, which takes minutes.
// It authenticates upstream with the admin kubeconfig's credentials, so the client under test needs none.
import {
  type ClientRequest,
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export interface FaultProxy {
  url: string;
  /** A kubeconfig whose server is the proxy. */
  kubeConfig(): KubeConfig;
  /** Destroys every open connection, then refuses (resets) new ones until `restore()`. */
  cut(): void;
  restore(): void;
  /** Answers the next watch request on `pathPart` with the API server's 410 Expired ERROR event. */
  expireNextWatch(pathPart: string): void;
  /** Answers the next watch on `pathPart` with the API server's own refusal of a resourceVersion it has not reached. */
  tooLargeNextWatch(pathPart: string): void;
  /**
   * Holds the upstream's answer to `method` requests on paths containing `pathPart` for `ms` before
   * passing it on (the server has already acted): a slow network on the way back. Undefined: no delay.
   */
  delayResponses(rule: { method: string; pathPart: string; ms: number } | undefined): void;
  /**
   * Withholds the events of every watch on exactly this path (open ones and new ones) until
   * releaseWatches(): the client's cache goes stale while its other requests still get through.
   */
  holdWatches(path: string): void;
  releaseWatches(): void;
  /** Watch requests seen, with the resourceVersion the client asked for. */
  watchRequests: {
    path: string;
    resourceVersion: string | null;
    expired?: boolean;
    tooLarge?: boolean;
    /** For a tooLarge request: the status the API server answered the far-ahead LIST with. */
    upstreamStatus?: number;
  }[];
  close(): Promise<void>;
}

export async function startFaultProxy(admin: KubeConfig): Promise<FaultProxy> {
  const upstream = new URL(admin.getCurrentCluster()!.server);
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  await admin.applyToHTTPSOptions(tls as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
  const sockets = new Set<Socket>();
  const upstreamRequests = new Set<ClientRequest>();
  let down = false;
  let expire: string | undefined;
  let tooLarge: string | undefined;
  let delay: { method: string; pathPart: string; ms: number } | undefined;
  let heldPath: string | undefined;
  const watchStreams = new Set<{ path: string; pending: Buffer[]; ended: boolean; res: ServerResponse }>();
  const flush = (w: { pending: Buffer[]; ended: boolean; res: ServerResponse }) => {
    for (const chunk of w.pending.splice(0)) w.res.write(chunk);
    if (w.ended) w.res.end();
  };
  const watchRequests: FaultProxy["watchRequests"] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", upstream);
    if (url.searchParams.get("watch") === "true") {
      const seen: FaultProxy["watchRequests"][number] = {
        path: url.pathname,
        resourceVersion: url.searchParams.get("resourceVersion"),
      };
      watchRequests.push(seen);
      if (expire && url.pathname.includes(expire)) {
        expire = undefined;
        seen.expired = true;
        // Byte for byte what kube-apiserver's cacher writes for an expired resourceVersion.
        const status = {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: `too old resource version: ${seen.resourceVersion} (${Number(seen.resourceVersion) + 1000})`,
          reason: "Expired",
          code: 410,
        };
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(`${JSON.stringify({ type: "ERROR", object: status })}\n`);
        return;
      }
      if (tooLarge && url.pathname.includes(tooLarge)) {
        tooLarge = undefined;
        seen.tooLarge = true;
        // The API server's own answer to a resourceVersion it has not reached. kube-apiserver 1.36 gives
        // it to a LIST (after its 3 s wait: 504, reason Timeout, cause ResourceVersionTooLarge) but lets a
        // WATCH from such a version wait silently (both measured on the test control plane), so the proxy
        // asks with a LIST from far ahead and hands that response to the watch.
        const ahead = new URL(url.pathname, upstream);
        ahead.searchParams.set("resourceVersion", String(Number(seen.resourceVersion ?? "0") + 1_000_000));
        const up = httpsRequest(
          ahead,
          { method: "GET", headers: { ...req.headers, host: upstream.host }, ...tls },
          (upRes) => {
            seen.upstreamStatus = upRes.statusCode ?? 0;
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        up.on("error", () => res.destroy());
        up.end();
        return;
      }
    }
    const headers = { ...req.headers, host: upstream.host };
    const up = httpsRequest(
      url,
      { method: req.method, headers, ca: tls.ca, cert: tls.cert, key: tls.key },
      (upRes) => {
        const forward = () => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (url.searchParams.get("watch") !== "true") {
            upRes.pipe(res);
            return;
          }
          const w = { path: url.pathname, pending: [] as Buffer[], ended: false, res };
          watchStreams.add(w);
          res.on("close", () => watchStreams.delete(w));
          upRes.on("data", (chunk: Buffer) => {
            if (heldPath === w.path) w.pending.push(chunk);
            else res.write(chunk);
          });
          upRes.on("end", () => {
            w.ended = true;
            if (heldPath !== w.path) flush(w);
          });
        };
        const hold =
          delay && req.method === delay.method && url.pathname.includes(delay.pathPart) ? delay.ms : 0;
        if (hold > 0) setTimeout(forward, hold);
        else forward();
      },
    );
    upstreamRequests.add(up);
    up.on("close", () => upstreamRequests.delete(up));
    up.on("error", () => res.destroy());
    req.pipe(up);
  };

  const server: Server = createServer(handle);
  server.on("connection", (socket: Socket) => {
    if (down) {
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    watchRequests,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: "proxy", server: url, skipTLSVerify: true }],
        users: [{ name: "via-proxy" }],
        contexts: [{ name: "proxy", cluster: "proxy", user: "via-proxy" }],
        currentContext: "proxy",
      });
      return kc;
    },
    cut() {
      down = true;
      for (const s of sockets) s.resetAndDestroy();
      for (const r of upstreamRequests) r.destroy();
    },
    restore() {
      down = false;
    },
    expireNextWatch(pathPart) {
      expire = pathPart;
    },
    tooLargeNextWatch(pathPart) {
      tooLarge = pathPart;
    },
    delayResponses(rule) {
      delay = rule;
    },
    holdWatches(path) {
      heldPath = path;
    },
    releaseWatches() {
      heldPath = undefined;
      for (const w of watchStreams) flush(w);
    },
    async close() {
      down = true;
      for (const s of sockets) s.destroy();
      for (const r of upstreamRequests) r.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
