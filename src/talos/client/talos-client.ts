// A Talos API client over @grpc/grpc-js with our proto subset. Two ways in, as talosctl has:
// - mTLS with a talosconfig context (client certificate signed by the OS CA; the role comes from its
//   organization);
// - the maintenance connection: TLS without a client certificate and without verifying the server (a
//   node in maintenance mode presents a self-signed certificate; talosctl --insecure does the same,
//   cmd/talosctl/pkg/talos/global/client.go WithClientMaintenance).
// Every call carries a deadline; the `node` metadata header asks the endpoint's apid to proxy the call
// to that node (apid director: one value = one-to-one proxy).

import type * as grpc from "@grpc/grpc-js";
import { parsePrivateKeyPem } from "../../pki/index.ts";
import { type Talosconfig, talosconfigCredentials } from "../config/talosconfig.ts";
import { CONTROL_PLANE_NAMESPACE, decodeManifestSpec, MANIFESTS_TYPE } from "../cosi.ts";
import { grpcJs } from "../grpc.ts";
import { loadTalosServices } from "../proto.ts";
import { readTarGz } from "../tar.ts";
import { TalosApiError, toTalosError } from "./errors.ts";

export const TALOS_API_PORT = 50000;

export type TalosCredentials =
  | { kind: "mtls"; caPem: string; certPem: string; keyPem: string }
  | { kind: "maintenance" };

export interface TalosClientOptions {
  /** host, host:port or [v6]:port; port defaults to 50000. */
  endpoint: string;
  credentials: TalosCredentials;
  /** Proxy through `endpoint` to this node (the `node` metadata header). */
  node?: string;
  /** Deadline per call, default 30 s. */
  timeoutMs?: number;
  /**
   * Where the connection to the endpoint really goes; TLS still verifies the endpoint's name or address.
   * The one seam local mode uses to reach the simulators at the seed's addresses (unset in production).
   */
  dial?: (target: { host: string; port: number }) => { host: string; port: number };
}

export type ApplyMode = "REBOOT" | "AUTO" | "NO_REBOOT" | "STAGED" | "TRY";

export interface VersionInfo {
  tag: string;
  sha: string;
  os: string;
  arch: string;
  platform: string;
  /** Talos' platform mode string (e.g. "cloud", "metal", "container"). */
  mode: string;
  node: string;
}

export interface EtcdMember {
  /** uint64 as a decimal string: it does not fit a JS number. */
  id: string;
  hostname: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface ServiceState {
  id: string;
  state: string;
  healthy: boolean;
  healthUnknown: boolean;
  lastMessage: string;
  /** Time of the oldest event the service reports: machined keeps a service's events since it started. */
  since: Date | undefined;
}

interface Metadata {
  hostname?: string;
  error?: string;
  status?: { code?: number; message?: string } | null;
}

interface WithMetadata {
  metadata?: Metadata | null;
}

export interface CosiResource {
  namespace: string;
  type: string;
  id: string;
  version: string;
  phase: string;
  protoSpec: Uint8Array;
  yamlSpec: string;
}

interface RawCosiResource {
  metadata?: { namespace?: string; type?: string; id?: string; version?: string; phase?: string } | null;
  spec?: { protoSpec?: Uint8Array; yamlSpec?: string } | null;
}

function cosiResource(r: RawCosiResource): CosiResource {
  return {
    namespace: r.metadata?.namespace ?? "",
    type: r.metadata?.type ?? "",
    id: r.metadata?.id ?? "",
    version: r.metadata?.version ?? "",
    phase: r.metadata?.phase ?? "",
    protoSpec: r.spec?.protoSpec ?? new Uint8Array(),
    yamlSpec: r.spec?.yamlSpec ?? "",
  };
}

type UnaryFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;
type StreamFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;

function hostPort(endpoint: string): string {
  if (/^\[.*\]:\d+$/.test(endpoint) || /^[^:]+:\d+$/.test(endpoint)) return endpoint;
  if (endpoint.includes(":") && !endpoint.startsWith("[")) return `[${endpoint}]:${TALOS_API_PORT}`;
  return `${endpoint}:${TALOS_API_PORT}`;
}

/** The address to connect to, and the options that keep TLS checking (and :authority) on the endpoint. */
function dialled(
  endpoint: string,
  dial: TalosClientOptions["dial"],
): { target: string; channelOptions: grpc.ChannelOptions } {
  if (!dial) return { target: endpoint, channelOptions: {} };
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(endpoint);
  if (!m?.[1] || !m[2]) throw new Error(`cannot dial ${endpoint}: expected host:port`);
  const to = dial({ host: m[1], port: Number(m[2]) });
  const host = to.host.includes(":") ? `[${to.host}]` : to.host;
  return {
    target: `${host}:${to.port}`,
    channelOptions: { "grpc.ssl_target_name_override": m[1], "grpc.default_authority": endpoint },
  };
}

function channelCredentials(creds: TalosCredentials): grpc.ChannelCredentials {
  if (creds.kind === "maintenance") {
    return grpcJs().credentials.createSsl(null, null, null, {
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
  }
  // Node's TLS cannot read Talos' "ED25519 PRIVATE KEY" label: re-encode as PKCS#8.
  const key = parsePrivateKeyPem(creds.keyPem).export({ type: "pkcs8", format: "pem" });
  return grpcJs().credentials.createSsl(
    Buffer.from(creds.caPem),
    Buffer.from(key),
    Buffer.from(creds.certPem),
  );
}

function oldestEvent(events: { ts?: { seconds?: string; nanos?: number } | null }[]): Date | undefined {
  let oldest: number | undefined;
  for (const e of events) {
    if (!e.ts?.seconds) continue;
    const ms = Number(e.ts.seconds) * 1000 + Math.floor((e.ts.nanos ?? 0) / 1e6);
    if (oldest === undefined || ms < oldest) oldest = ms;
  }
  return oldest === undefined ? undefined : new Date(oldest);
}

export class TalosClient {
  readonly endpoint: string;
  readonly node: string | undefined;
  private readonly timeoutMs: number;
  private readonly machine: grpc.Client;
  private readonly image: grpc.Client;
  private readonly lifecycle: grpc.Client;
  private readonly state: grpc.Client;
  /** Set on a view from withSignal(). */
  private boundSignal: AbortSignal | undefined;

  constructor(options: TalosClientOptions) {
    this.endpoint = hostPort(options.endpoint);
    this.node = options.node;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const services = loadTalosServices();
    const creds = channelCredentials(options.credentials);
    const { target, channelOptions } = dialled(this.endpoint, options.dial);
    this.machine = new services.MachineService(target, creds, channelOptions);
    // The three services share one HTTP/2 connection through grpc-js' subchannel pool.
    const channelOverride = this.machine.getChannel();
    this.image = new services.ImageService(target, creds, { channelOverride });
    this.lifecycle = new services.LifecycleService(target, creds, { channelOverride });
    this.state = new services.State(target, creds, { channelOverride });
  }

  static fromTalosconfig(
    config: Talosconfig,
    options: { endpoint?: string; node?: string; timeoutMs?: number; dial?: TalosClientOptions["dial"] } = {},
  ) {
    const creds = talosconfigCredentials(config);
    const endpoint = options.endpoint ?? creds.endpoints[0];
    if (!endpoint) throw new Error("talosconfig context has no endpoints");
    return new TalosClient({
      endpoint,
      node: options.node,
      timeoutMs: options.timeoutMs,
      dial: options.dial,
      credentials: { kind: "mtls", caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem },
    });
  }

  static maintenance(
    endpoint: string,
    options: { timeoutMs?: number; dial?: TalosClientOptions["dial"] } = {},
  ) {
    return new TalosClient({
      endpoint,
      credentials: { kind: "maintenance" },
      timeoutMs: options.timeoutMs,
      dial: options.dial,
    });
  }

  close(): void {
    this.machine.close();
  }

  /**
   * A view whose every call is bound to `signal` (a reconcile's ctx.signal): once it aborts, calls are
   * refused before anything is sent and calls in flight are cancelled. Shares the connection.
   */
  withSignal(signal: AbortSignal): TalosClient {
    const view = Object.create(this) as TalosClient;
    view.boundSignal = this.boundSignal ? AbortSignal.any([this.boundSignal, signal]) : signal;
    return view;
  }

  /** Cancels `call` when the bound signal aborts; returns the listener's removal. */
  private cancelOnAbort(call: { cancel(): void }): () => void {
    const signal = this.boundSignal;
    if (!signal) return () => {};
    const onAbort = () => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    return () => signal.removeEventListener("abort", onAbort);
  }

  private metadata(): grpc.Metadata {
    const md = new (grpcJs().Metadata)();
    if (this.node) md.set("node", this.node);
    return md;
  }

  private callOptions(): grpc.CallOptions {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  private unary<T>(client: grpc.Client, method: string, request: unknown): Promise<T> {
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (!fn) throw new Error(`unknown method ${method}`);
    const signal = this.boundSignal;
    return new Promise<T>((resolve, reject) => {
      // Refused here: an aborted reconcile must not reach the node (a second bootstrap, say).
      if (signal?.aborted) return reject(signal.reason);
      let release = () => {};
      const call = fn.call(client, request, this.metadata(), this.callOptions(), (err, response) => {
        release();
        if (signal?.aborted) reject(signal.reason);
        else if (err) reject(toTalosError(err, method, this.endpoint));
        else resolve(response as T);
      });
      release = this.cancelOnAbort(call);
    });
  }

  private async stream<T>(client: grpc.Client, method: string, request: unknown, onMessage?: (m: T) => void) {
    const fn = (client as unknown as Record<string, StreamFn>)[method];
    if (!fn) throw new Error(`unknown method ${method}`);
    this.boundSignal?.throwIfAborted();
    const call = fn.call(client, request, this.metadata(), this.callOptions());
    const release = this.cancelOnAbort(call);
    const out: T[] = [];
    try {
      for await (const message of call) {
        out.push(message as T);
        onMessage?.(message as T);
      }
    } catch (err) {
      this.boundSignal?.throwIfAborted();
      throw toTalosError(err, method, this.endpoint);
    } finally {
      release();
    }
    return out;
  }

  /** apid reports a per-node failure inside the message's metadata instead of the call status. */
  private messages<T extends WithMetadata>(method: string, response: { messages?: T[] }): T[] {
    const messages = response.messages ?? [];
    for (const m of messages) {
      if (m.metadata?.error) {
        const code = m.metadata.status?.code;
        const kind = code === grpcJs().status.UNAVAILABLE ? "unavailable" : "unknown";
        throw new TalosApiError(kind, method, m.metadata.hostname || this.endpoint, m.metadata.error, code);
      }
    }
    return messages;
  }

  /**
   * COSI State.List: every resource of `type` in `namespace` on the node (as `talosctl get`). Unlike
   * MachineService, COSI answers are not wrapped in per-node messages: a failure is the call's status.
   */
  async listResources(namespace: string, type: string): Promise<CosiResource[]> {
    const answers = await this.stream<{ resource?: RawCosiResource }>(this.state, "List", {
      namespace,
      type,
    });
    return answers.flatMap((a) => (a.resource ? [cosiResource(a.resource)] : []));
  }

  /**
   * Talos' bootstrap manifests (kube-proxy, CoreDNS, kubelet bootstrapping RBAC …) as the node renders
   * them from its config: Manifests.kubernetes.talos.dev in namespace controlplane, control planes
   * only, each resource's objects decoded from its protobuf spec, in the node's order (by id).
   */
  async bootstrapManifests(): Promise<{ id: string; version: string; objects: Record<string, unknown>[] }[]> {
    const resources = await this.listResources(CONTROL_PLANE_NAMESPACE, MANIFESTS_TYPE);
    return resources
      .map((r) => ({ id: r.id, version: r.version, objects: decodeManifestSpec(r.protoSpec) }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async version(): Promise<VersionInfo> {
    const res = await this.unary<{
      messages: (WithMetadata & { version?: Record<string, string>; platform?: Record<string, string> })[];
    }>(this.machine, "Version", {});
    const m = this.messages("Version", res)[0];
    if (!m?.version) throw new TalosApiError("unknown", "Version", this.endpoint, "empty response");
    return {
      tag: m.version.tag ?? "",
      sha: m.version.sha ?? "",
      os: m.version.os ?? "",
      arch: m.version.arch ?? "",
      platform: m.platform?.name ?? "",
      mode: m.platform?.mode ?? "",
      node: m.metadata?.hostname ?? "",
    };
  }

  async applyConfiguration(config: string, options: { mode?: ApplyMode; dryRun?: boolean } = {}) {
    const res = await this.unary<{
      messages: (WithMetadata & { warnings: string[]; mode: string; modeDetails: string })[];
    }>(this.machine, "ApplyConfiguration", {
      data: Buffer.from(config, "utf8"),
      mode: options.mode ?? "AUTO",
      dryRun: options.dryRun ?? false,
    });
    const m = this.messages("ApplyConfiguration", res)[0];
    return { mode: m?.mode ?? "", modeDetails: m?.modeDetails ?? "", warnings: m?.warnings ?? [] };
  }

  /** Bootstraps etcd on this control plane. AlreadyExists means it was done before: success. */
  async bootstrap(): Promise<"bootstrapped" | "already-bootstrapped"> {
    try {
      this.messages("Bootstrap", await this.unary(this.machine, "Bootstrap", {}));
      return "bootstrapped";
    } catch (err) {
      if (err instanceof TalosApiError && err.kind === "already-exists") return "already-bootstrapped";
      throw err;
    }
  }

  /** The admin kubeconfig: concatenated Data chunks form a gzipped tar holding `kubeconfig`. */
  async kubeconfig(): Promise<string> {
    const chunks = await this.stream<{ metadata?: Metadata; bytes?: Buffer }>(this.machine, "Kubeconfig", {});
    for (const c of chunks) {
      if (c.metadata?.error)
        throw new TalosApiError("unknown", "Kubeconfig", this.endpoint, c.metadata.error);
    }
    const archive = Buffer.concat(chunks.map((c) => Buffer.from(c.bytes ?? [])));
    const entry = readTarGz(archive).find((e) => e.name === "kubeconfig");
    if (!entry)
      throw new TalosApiError("unknown", "Kubeconfig", this.endpoint, "archive has no kubeconfig file");
    return entry.data.toString("utf8");
  }

  async serviceList(): Promise<ServiceState[]> {
    type Info = {
      id: string;
      state: string;
      health?: { healthy?: boolean; unknown?: boolean; lastMessage?: string };
      events?: { events?: { ts?: { seconds?: string; nanos?: number } | null }[] } | null;
    };
    const res = await this.unary<{ messages: (WithMetadata & { services: Info[] })[] }>(
      this.machine,
      "ServiceList",
      {},
    );
    return this.messages("ServiceList", res).flatMap((m) =>
      m.services.map((s) => ({
        id: s.id,
        state: s.state,
        healthy: s.health?.healthy ?? false,
        healthUnknown: s.health?.unknown ?? true,
        lastMessage: s.health?.lastMessage ?? "",
        since: oldestEvent(s.events?.events ?? []),
      })),
    );
  }

  /** Which of `ids` are not Running and healthy (empty = all good). */
  async unhealthyServices(ids: readonly string[]): Promise<string[]> {
    const services = new Map((await this.serviceList()).map((s) => [s.id, s]));
    return ids.filter((id) => {
      const s = services.get(id);
      return s?.state !== "Running" || !s.healthy;
    });
  }

  async etcdMemberList(options: { queryLocal?: boolean } = {}): Promise<EtcdMember[]> {
    type Raw = { id: string; hostname: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean };
    const res = await this.unary<{ messages: (WithMetadata & { members: Raw[] })[] }>(
      this.machine,
      "EtcdMemberList",
      {
        queryLocal: options.queryLocal ?? false,
      },
    );
    return this.messages("EtcdMemberList", res).flatMap((m) =>
      m.members.map((r) => ({
        id: String(r.id),
        hostname: r.hostname,
        peerUrls: r.peerUrls,
        clientUrls: r.clientUrls,
        isLearner: r.isLearner,
      })),
    );
  }

  /** Removes a member by id (for a node that is gone). NotFound means already removed: success. */
  async etcdRemoveMemberById(memberId: string): Promise<"removed" | "not-found"> {
    try {
      this.messages(
        "EtcdRemoveMemberByID",
        await this.unary(this.machine, "EtcdRemoveMemberByID", { memberId }),
      );
      return "removed";
    } catch (err) {
      if (err instanceof TalosApiError && err.kind === "not-found") return "not-found";
      throw err;
    }
  }

  async etcdLeaveCluster(): Promise<void> {
    this.messages("EtcdLeaveCluster", await this.unary(this.machine, "EtcdLeaveCluster", {}));
  }

  /** Returns the member that is leader afterwards (as Talos reports it). */
  async etcdForfeitLeadership(): Promise<string> {
    const res = await this.unary<{ messages: (WithMetadata & { member: string })[] }>(
      this.machine,
      "EtcdForfeitLeadership",
      {},
    );
    return this.messages("EtcdForfeitLeadership", res)[0]?.member ?? "";
  }

  async reboot(mode: "DEFAULT" | "POWERCYCLE" | "FORCE" = "DEFAULT"): Promise<void> {
    this.messages("Reboot", await this.unary(this.machine, "Reboot", { mode }));
  }

  async reset(
    options: { graceful?: boolean; reboot?: boolean; mode?: "ALL" | "SYSTEM_DISK" | "USER_DISKS" } = {},
  ) {
    this.messages(
      "Reset",
      await this.unary(this.machine, "Reset", {
        graceful: options.graceful ?? true,
        reboot: options.reboot ?? true,
        mode: options.mode ?? "ALL",
      }),
    );
  }

  /**
   * Pulls `image` into the node's containerd: `system` is where Talos runs the kubelet (and the
   * installer), `cri` where the kubelet runs pods (the static control-plane pods). Talos ≥ 1.13:
   * ImageService.Pull; older Talos answers Unimplemented to it, then MachineService.ImagePull, the RPC
   * `talosctl upgrade-k8s` pre-pulls with (pkg/cluster/kubernetes/talos_managed.go prePullImages). A node
   * that has neither gives "unsupported": talosctl then skips the pre-pull on it, and so may the caller.
   */
  async pullImage(
    image: string,
    namespace: "system" | "cri",
  ): Promise<"image-service" | "legacy" | "unsupported"> {
    const ns = namespace === "system" ? "NS_SYSTEM" : "NS_CRI";
    try {
      await this.stream(this.image, "Pull", {
        containerd: { driver: "CRI", namespace: ns },
        imageRef: image,
      });
      return "image-service";
    } catch (err) {
      if (!(err instanceof TalosApiError && err.kind === "unimplemented")) throw err;
    }
    try {
      this.messages(
        "ImagePull",
        await this.unary<{ messages: WithMetadata[] }>(this.machine, "ImagePull", {
          namespace: ns,
          reference: image,
        }),
      );
      return "legacy";
    } catch (err) {
      if (err instanceof TalosApiError && err.kind === "unimplemented") return "unsupported";
      throw err;
    }
  }

  /**
   * Upgrades Talos to `image`. Talos ≥ 1.13: ImageService.Pull, LifecycleService.Upgrade (a non-zero
   * exit_code in the stream is the failure), then Reboot. Older Talos answers Unimplemented to Pull:
   * fall back to MachineService.Upgrade, which reboots by itself (terraform-provider-talos and talosctl
   * v1.13 do the same).
   */
  async upgrade(
    image: string,
    options: {
      force?: boolean;
      rebootMode?: "DEFAULT" | "POWERCYCLE";
      onProgress?: (message: string) => void;
    } = {},
  ): Promise<{ method: "lifecycle" | "legacy" }> {
    const containerd = { driver: "CRI", namespace: "NS_SYSTEM" };
    try {
      await this.stream<{ name?: string }>(this.image, "Pull", { containerd, imageRef: image }, (m) => {
        if (m.name) options.onProgress?.(`pulled ${m.name}`);
      });
    } catch (err) {
      if (!(err instanceof TalosApiError && err.kind === "unimplemented")) throw err;
      const res = await this.unary<{ messages: (WithMetadata & { ack: string })[] }>(
        this.machine,
        "Upgrade",
        {
          image,
          force: options.force ?? false,
          rebootMode: options.rebootMode ?? "DEFAULT",
        },
      );
      const ack = this.messages("Upgrade", res)[0]?.ack;
      if (ack) options.onProgress?.(ack);
      return { method: "legacy" };
    }
    type Progress = { progress?: { message?: string; exitCode?: number; response?: string } };
    let exitCode = 0;
    await this.stream<Progress>(
      this.lifecycle,
      "Upgrade",
      { containerd, source: { imageName: image } },
      (m) => {
        if (m.progress?.response === "exitCode") exitCode = m.progress.exitCode ?? 0;
        else if (m.progress?.message) options.onProgress?.(m.progress.message);
      },
    );
    if (exitCode !== 0) {
      throw new TalosApiError(
        "upgrade-failed",
        "LifecycleService.Upgrade",
        this.endpoint,
        `installer exited with ${exitCode}`,
      );
    }
    await this.reboot(options.rebootMode ?? "DEFAULT");
    return { method: "lifecycle" };
  }
}
