// One simulated Talos node: the state machine (maintenance → configured → rebooting …) and the gRPC
// server that exposes it with Talos' transport rules. See ../README.md for the behaviour list.

import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { parseAllDocuments } from "yaml";
import { createCA, issueCert, loadCA } from "../../pki/index.ts";
import { unb64 } from "../config/secrets.ts";
import { atLeastMinor } from "../config/version.ts";
import { CONTROL_PLANE_NAMESPACE, encodeManifestSpec, MANIFESTS_TYPE } from "../cosi.ts";
import { loadTalosServices } from "../proto.ts";
import { createTarGz } from "../tar.ts";
import { notAuthorized, SimStatusError, unimplementedInMaintenance } from "./errors.ts";
import type { SimulatedEtcd } from "./etcd.ts";
import { renderBootstrapManifests } from "./manifests.ts";
import { allowed, MAINTENANCE_METHODS } from "./roles.ts";

const S = grpc.status;

export type NodeMode = "maintenance" | "running" | "rebooting" | "down";

export interface NodeConfigState {
  yaml: string;
  role: "controlplane" | "worker";
  clusterId: string;
  clusterName: string;
  hostname: string;
  endpoint: string;
  osCaCrt: string;
  osCaKey: string;
  k8sCaCrt: string;
  k8sCaKey: string;
  installImage: string;
  /** From machine.kubelet.image's tag, "" when the config names no kubelet image. */
  kubeletVersion: string;
  /** cluster.allowSchedulingOnControlPlanes: without it Talos taints control planes NoSchedule. */
  allowSchedulingOnControlPlanes: boolean;
  /** The control-plane static pods the config makes the kubelet run (none on a worker). */
  staticPods: StaticPod[];
}

export interface StaticPod {
  /** kube-apiserver, kube-controller-manager or kube-scheduler. */
  name: string;
  image: string;
}

/** One ApplyConfiguration that took effect (or was staged), as the node recorded it. */
export interface AppliedConfig {
  at: number;
  /** The mode it took effect in: REBOOT, STAGED or NO_REBOOT. */
  mode: string;
  yaml: string;
}

/** One image pull that succeeded, as the node recorded it. */
export interface PulledImage {
  at: number;
  image: string;
  /** containerd namespace: NS_SYSTEM (Talos' own: kubelet, installer) or NS_CRI (pods). */
  namespace: string;
  /** ImageService.Pull (Talos ≥ 1.13) or the older MachineService.ImagePull. */
  api: "ImageService" | "MachineService";
}

export interface NodeFaults {
  /** Extra time a reboot takes. */
  slowRebootMs: number;
  /** Upgrade failure: "pull" fails ImageService.Pull, "install" makes the installer exit non-zero. */
  failUpgrade: null | "pull" | "install";
  /** Applied configs never take: every boot is in maintenance mode. */
  installFails: boolean;
  /** Pulls of these image references fail NotFound (a tag the registry does not have). */
  missingImages: Set<string>;
}

/** What a node needs from the simulator it lives in. */
export interface SimulatorContext {
  etcdFor(clusterId: string): SimulatedEtcd;
  findNode(nameOrAddress: string): SimulatedNode | undefined;
  /** An OS CA key pair for nodes without one (workers get their certificates from trustd). */
  osCaKeyFor(clusterId: string): string | undefined;
  kubeconfig(node: SimulatedNode): Promise<string | undefined>;
  /** The node booted (or resumed) with a config: its kubelet would now register with the cluster. */
  nodeRunning(node: SimulatedNode): void;
  /** Something persisted changed (config, mode, etcd membership): the simulator may save its state. */
  changed(): void;
  /** etcd membership changed (bootstrap, removal): running control planes of that cluster retry joining. */
  onEtcdChanged(clusterId: string): void;
  /** The node's mode or version changed: the simulator keeps the record of node states over time. */
  observe(node: SimulatedNode): void;
  /** Whether the named node runs (its etcd member answers): Talos' pre-upgrade check asks every member. */
  isRunning(nodeName: string): boolean;
  rebootDelayMs: number;
  log(line: string): void;
}

type Handler = (request: Record<string, unknown>, write?: (m: unknown) => void) => Promise<unknown>;

const VERSION_RE = /:(v\d+\.\d+\.\d+(?:-[\w.]+)?)$/;

/**
 * The installer images an upgrade can name: the Image Factory's `<registry>/[nocloud-]installer/<schematic>:<version>`
 * or Sidero's `ghcr.io/siderolabs/installer:<version>`. Anything else fails the pull, as a missing image does.
 */
const INSTALLER_RE =
  /^([^/]+\/(nocloud-|metal-)?installer\/[0-9a-f]{64}|ghcr\.io\/siderolabs\/installer):v\d+\.\d+\.\d+(-[\w.]+)?$/;

export function assertInstallerImage(image: string): void {
  if (!INSTALLER_RE.test(image))
    throw new SimStatusError(
      S.NOT_FOUND,
      `failed to pull image "${image}": not found (not an installer image)`,
    );
}

/**
 * The Kubernetes images a Talos node pulls: the control-plane components from registry.k8s.io and
 * Sidero's kubelet image, each at a release tag. The simulator has no registry behind it, so anything
 * else is refused as a registry would refuse an image it does not have.
 */
const KUBERNETES_IMAGE_RE =
  /^(registry\.k8s\.io\/kube-(apiserver|controller-manager|scheduler|proxy)|ghcr\.io\/siderolabs\/kubelet):v\d+\.\d+\.\d+$/;
/** A reference containerd can parse at all: lowercase repository path, optional tag or digest. */
const REFERENCE_RE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

/** What a pull of `image` answers: InvalidArgument for no reference at all, NotFound for an unknown image. */
export function assertPullableImage(image: string): void {
  if (!REFERENCE_RE.test(image))
    throw new SimStatusError(S.INVALID_ARGUMENT, `failed to pull image "${image}": invalid reference format`);
  if (!KUBERNETES_IMAGE_RE.test(image)) assertInstallerImage(image);
}

export function versionFromImage(image: string): string {
  const m = VERSION_RE.exec(image);
  if (!m?.[1]) throw new SimStatusError(S.INVALID_ARGUMENT, `image reference ${image} has no version tag`);
  return m[1];
}

// biome-ignore lint/suspicious/noExplicitAny: walking untyped YAML
type Any = any;

function parseConfig(yaml: string): NodeConfigState {
  let docs: Any[];
  try {
    docs = parseAllDocuments(yaml).map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors[0]?.message);
      return d.toJS();
    });
  } catch (err) {
    throw new SimStatusError(S.INVALID_ARGUMENT, `failed to parse config: ${(err as Error).message}`);
  }
  const v1 = docs.find((d) => d && typeof d === "object" && d.kind === undefined && d.version === "v1alpha1");
  const role = v1?.machine?.type;
  if (!v1 || (role !== "controlplane" && role !== "worker")) {
    throw new SimStatusError(
      S.INVALID_ARGUMENT,
      "failed to parse config: no v1alpha1 document with machine.type",
    );
  }
  if (!v1.cluster?.id || !v1.machine?.ca?.crt) {
    throw new SimStatusError(
      S.INVALID_ARGUMENT,
      "failed to validate config: cluster.id and machine.ca are required",
    );
  }
  return {
    yaml,
    role,
    clusterId: v1.cluster.id,
    clusterName: v1.cluster.clusterName ?? "",
    hostname: v1.machine.network?.hostname ?? "",
    endpoint: v1.cluster.controlPlane?.endpoint ?? "",
    osCaCrt: unb64(v1.machine.ca.crt),
    osCaKey: v1.machine.ca.key ? unb64(v1.machine.ca.key) : "",
    k8sCaCrt: v1.cluster.ca?.crt ? unb64(v1.cluster.ca.crt) : "",
    k8sCaKey: v1.cluster.ca?.key ? unb64(v1.cluster.ca.key) : "",
    installImage: v1.machine.install?.image ?? "",
    kubeletVersion: VERSION_RE.exec(String(v1.machine.kubelet?.image ?? ""))?.[1] ?? "",
    allowSchedulingOnControlPlanes: v1.cluster?.allowSchedulingOnControlPlanes === true,
    staticPods: role === "controlplane" ? staticPods(docs, v1) : [],
  };
}

/** Talos' defaults when the config names no image (registry.k8s.io/<component>:<kubelet's version>). */
function staticPods(docs: Any[], v1: Any): StaticPod[] {
  // Talos ≥ 1.14 carries the API server in its own document; before, in cluster.apiServer.
  const apiServerDoc = docs.find((d) => d?.kind === "KubeAPIServerConfig");
  const image = (name: string, configured: unknown) => ({ name, image: String(configured ?? "") });
  return [
    image("kube-apiserver", apiServerDoc?.image ?? v1.cluster?.apiServer?.image),
    image("kube-controller-manager", v1.cluster?.controllerManager?.image),
    image("kube-scheduler", v1.cluster?.scheduler?.image),
  ].filter((p) => p.image !== "");
}

type AnyCall =
  | grpc.ServerUnaryCall<Record<string, unknown>, unknown>
  | grpc.ServerWritableStream<Record<string, unknown>, unknown>;

function organizations(call: AnyCall): string[] {
  const o = call.getAuthContext()?.sslPeerCertificate?.subject?.O;
  if (o === undefined) return [];
  return Array.isArray(o) ? o : [o];
}

/** What survives a restart of the simulator (the machine kept running meanwhile). */
export interface NodeState {
  version: string;
  mode: NodeMode;
  configYaml: string | null;
  stagedConfigYaml: string | null;
  stagedVersion: string | null;
  /** The installer image the node last installed from (null: none recorded). */
  image?: string | null;
  stagedImage?: string | null;
  leftEtcd: boolean;
  etcdDataWiped: boolean;
  etcdRemoved: boolean;
  down: boolean;
  reboots: number;
  bootedAt: string;
}

export class SimulatedNode {
  readonly name: string;
  /** The address the simulator listens on. */
  readonly ip: string;
  /** The address clients and the cluster know the node by (e.g. the seed's 10.0.3.16); default `ip`. */
  readonly advertisedIp: string;
  port: number;
  version: string;
  mode: NodeMode = "down";
  config: NodeConfigState | null = null;
  stagedConfig: NodeConfigState | null = null;
  stagedVersion: string | null = null;
  /** Installer image of the installed system: the config's at first install, then each upgrade's. */
  image: string | null = null;
  stagedImage: string | null = null;
  /** Set by EtcdLeaveCluster: the node stays out of etcd until it is reset. */
  leftEtcd = false;
  /** Set by Reset: the node's etcd data is gone, so a member still registered under its name is stale
   * and blocks the rejoin (etcd refuses a second member with the same peer URL) until it is removed. */
  etcdDataWiped = false;
  /** Its member was removed while its data was intact: etcd refuses it until the node is reset. */
  etcdRemoved = false;
  down = false;
  reboots = 0;
  bootedAt = new Date();
  readonly faults: NodeFaults = {
    slowRebootMs: 0,
    failUpgrade: null,
    installFails: false,
    missingImages: new Set(),
  };
  /** Every image pull that succeeded, in order (tests check pre-pulls came before the patches). */
  readonly pulls: PulledImage[] = [];
  /** Every RPC that reached this node, full method name (tests assert on it). */
  readonly calls: string[] = [];
  /** Every configuration applied to it, in order (tests read the static-pod images from them). */
  readonly applied: AppliedConfig[] = [];
  private server: grpc.Server | null = null;
  private applyInProgress = false;
  private readonly ctx: SimulatorContext;
  private readonly maintenanceCert = createCA({ subject: { commonName: "maintenance" }, key: "ed25519" });

  constructor(
    ctx: SimulatorContext,
    name: string,
    ip: string,
    version: string,
    port: number,
    advertisedIp = ip,
  ) {
    this.ctx = ctx;
    this.name = name;
    this.ip = ip;
    this.advertisedIp = advertisedIp;
    this.version = version;
    this.port = port;
  }

  get endpoint(): string {
    return `${this.ip}:${this.port}`;
  }

  get hostname(): string {
    return this.config?.hostname || this.name;
  }

  private etcd(): SimulatedEtcd | null {
    return this.config ? this.ctx.etcdFor(this.config.clusterId) : null;
  }

  // --- lifecycle -------------------------------------------------------------------------------------

  async boot(): Promise<void> {
    if (this.down) {
      this.mode = "down";
      this.ctx.observe(this);
      return;
    }
    if (this.stagedVersion) {
      this.version = this.stagedVersion;
      this.stagedVersion = null;
    }
    if (this.stagedImage) {
      this.image = this.stagedImage;
      this.stagedImage = null;
    }
    if (this.stagedConfig) {
      // installFails: the install did not take (a wrong install disk, say), so it boots the image again,
      // in maintenance mode, as Talos does.
      if (!this.faults.installFails) this.config = this.stagedConfig;
      this.stagedConfig = null;
      if (this.config && !this.image) this.image = this.config.installImage || null;
    }
    // The mode changes only once the listener is up, so waitForMode("running") means "answering".
    // (Server credentials depend on whether a config exists, not on the mode.)
    await this.listen();
    // Powered off while the listener was starting (setDown found no server to close): go down now.
    if (this.down) {
      this.mode = "down";
      this.ctx.observe(this);
      await this.shutdown();
      return;
    }
    this.mode = this.config ? "running" : "maintenance";
    this.bootedAt = new Date();
    this.ctx.observe(this);
    this.joinEtcdIfRunning();
    this.noteEtcdPower("up");
    this.ctx.log(`${this.name} booted in ${this.mode} mode, Talos ${this.version}, ${this.endpoint}`);
    this.ctx.changed();
    if (this.mode === "running") this.ctx.nodeRunning(this);
  }

  snapshot(): NodeState {
    return {
      version: this.version,
      mode: this.mode,
      configYaml: this.config?.yaml ?? null,
      stagedConfigYaml: this.stagedConfig?.yaml ?? null,
      stagedVersion: this.stagedVersion,
      image: this.image,
      stagedImage: this.stagedImage,
      leftEtcd: this.leftEtcd,
      etcdDataWiped: this.etcdDataWiped,
      etcdRemoved: this.etcdRemoved,
      down: this.down,
      reboots: this.reboots,
      bootedAt: this.bootedAt.toISOString(),
    };
  }

  /**
   * Picks up where a previous simulator left this machine: it kept running meanwhile, so staged changes
   * stay staged, except that a reboot in progress completes.
   */
  async resume(state: NodeState): Promise<void> {
    this.version = state.version;
    this.config = state.configYaml ? parseConfig(state.configYaml) : null;
    this.stagedConfig = state.stagedConfigYaml ? parseConfig(state.stagedConfigYaml) : null;
    this.stagedVersion = state.stagedVersion;
    this.image = state.image ?? null;
    this.stagedImage = state.stagedImage ?? null;
    this.leftEtcd = state.leftEtcd;
    this.etcdDataWiped = state.etcdDataWiped;
    this.etcdRemoved = state.etcdRemoved;
    this.down = state.down;
    this.reboots = state.reboots;
    if (state.mode === "rebooting" || this.down) {
      if (state.mode === "rebooting") this.reboots++;
      await this.boot();
      return;
    }
    await this.listen();
    this.mode = this.config ? "running" : "maintenance";
    this.bootedAt = new Date(state.bootedAt);
    this.ctx.observe(this);
    this.ctx.log(`${this.name} resumed in ${this.mode} mode, Talos ${this.version}, ${this.endpoint}`);
    if (this.mode === "running") this.ctx.nodeRunning(this);
  }

  /** Joins etcd when it can, as Talos' etcd service keeps retrying: at boot and on membership changes. */
  joinEtcdIfRunning(): void {
    if (this.mode !== "running" || this.config?.role !== "controlplane" || this.leftEtcd || this.etcdRemoved)
      return;
    const etcd = this.etcd();
    if (!etcd?.bootstrapped) return;
    if (etcd.memberOf(this.name) && this.etcdDataWiped) return; // stale member blocks the join
    // Cleared first, so the join's history record already counts this member as running.
    this.etcdDataWiped = false;
    etcd.join(this.name, this.hostname, this.advertisedIp);
  }

  /** Whether etcd runs here as a member: up, configured, and nothing keeping etcd from running. */
  runsEtcd(): boolean {
    return this.mode === "running" && this.config?.role === "controlplane" && this.etcdWaitReason() === null;
  }

  /** A member's machine changed power: the etcd history records it (quorum is about running members). */
  private noteEtcdPower(event: string): void {
    const etcd = this.etcd();
    if (etcd?.memberOf(this.name)) etcd.record(`${this.hostname} ${event}`);
  }

  /** Why etcd does not run here, or null when it is a member. */
  private etcdWaitReason(): string | null {
    const etcd = this.etcd();
    if (!etcd?.bootstrapped) return "waiting for etcd bootstrap";
    if (this.leftEtcd) return "left the etcd cluster";
    if (this.etcdRemoved) return "etcdserver: the member has been permanently removed from the cluster";
    if (this.etcdDataWiped && etcd.memberOf(this.name)) {
      return "etcdserver: Peer URLs already exists: remove the stale member of this node first";
    }
    return etcd.memberOf(this.name) && !this.etcdDataWiped ? null : "joining etcd";
  }

  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) server.forceShutdown();
  }

  /** Reboot: unavailable for rebootDelay (+ slowReboot), then boots staged version/config. */
  scheduleReboot(reason: string): void {
    this.mode = "rebooting";
    this.ctx.observe(this);
    this.noteEtcdPower("rebooting");
    this.ctx.log(`${this.name} rebooting (${reason})`);
    this.ctx.changed();
    // Let the current RPC's response leave before the listener closes.
    setTimeout(() => {
      void this.shutdown().then(() =>
        setTimeout(() => {
          this.reboots++;
          void this.boot().catch((err) =>
            this.ctx.log(`${this.name} failed to boot: ${(err as Error).message}`),
          );
        }, this.ctx.rebootDelayMs + this.faults.slowRebootMs),
      );
    }, 20);
  }

  /**
   * A new, empty system disk (its VM was destroyed and created again from the image): the machine boots
   * into maintenance mode with no config, and its etcd data is gone, so a member still registered under
   * its name is stale and blocks the rejoin until it is removed. Only a powered-off machine's disk can
   * be swapped.
   */
  wipeDisk(): void {
    if (!this.down) throw new Error(`${this.name} is running: power it off before replacing its disk`);
    this.config = null;
    this.stagedConfig = null;
    this.stagedVersion = null;
    this.leftEtcd = false;
    this.etcdRemoved = false;
    this.etcdDataWiped = true;
    this.ctx.log(`${this.name} has a new, empty disk`);
    this.ctx.changed();
  }

  async setDown(down: boolean): Promise<void> {
    this.down = down;
    if (down) {
      this.mode = "down";
      this.ctx.observe(this);
      this.noteEtcdPower("down");
      await this.shutdown();
      this.ctx.log(`${this.name} is down`);
      this.ctx.changed();
    } else if (!this.server) {
      await this.boot();
    }
  }

  // --- transport ------------------------------------------------------------------------------------

  private credentials(): grpc.ServerCredentials {
    if (!this.config) {
      // A self-signed certificate and no client authentication: any LAN client gets os:reader.
      return grpc.ServerCredentials.createSsl(
        null,
        [
          {
            private_key: Buffer.from(this.maintenanceCert.keyPem),
            cert_chain: Buffer.from(this.maintenanceCert.certPem),
          },
        ],
        false,
      );
    }
    const caKey = this.config.osCaKey || this.ctx.osCaKeyFor(this.config.clusterId);
    if (!caKey) throw new Error(`${this.name}: no OS CA key in the cluster to issue the apid certificate`);
    const ca = loadCA(this.config.osCaCrt, caKey);
    const cert = issueCert(ca, {
      subject: { commonName: this.hostname },
      key: "ed25519",
      ipAddresses: [...new Set([this.ip, this.advertisedIp])],
      dnsNames: [this.hostname, "localhost"],
      keyUsage: ["digitalSignature"],
      extKeyUsage: ["serverAuth", "clientAuth"],
    });
    // mTLS: the client certificate must chain to the cluster's OS CA.
    return grpc.ServerCredentials.createSsl(
      Buffer.from(this.config.osCaCrt),
      [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
      true,
    );
  }

  private async listen(): Promise<void> {
    const services = loadTalosServices();
    const server = new grpc.Server();
    const register = (service: grpc.ServiceDefinition, serviceName: string, pkg = "machine") => {
      const impl: grpc.UntypedServiceImplementation = {};
      for (const [method, def] of Object.entries(service)) {
        const path = `/${pkg}.${serviceName}/${method}`;
        if (def.responseStream) {
          impl[method] = (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
            void this.serveStream(path, call);
          };
        } else {
          impl[method] = (
            call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
            cb: grpc.sendUnaryData<unknown>,
          ) => {
            void this.serveUnary(path, call, cb);
          };
        }
      }
      server.addService(service, impl);
    };
    register(services.MachineService.service, "MachineService");
    register(services.State.service, "State", "cosi.resource");
    // ImageService and LifecycleService exist from Talos v1.13: older nodes answer Unimplemented.
    if (atLeastMinor(this.version, 1, 13)) {
      register(services.ImageService.service, "ImageService");
      register(services.LifecycleService.service, "LifecycleService");
    }
    const creds = this.credentials();
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${this.ip}:${this.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
  }

  /** Authorization, then the `node`/`nodes` proxy headers, then the local handler. */
  private route(path: string, call: AnyCall): { targets: SimulatedNode[]; fanOut: boolean } {
    this.calls.push(path);
    if (this.mode === "maintenance") {
      if (!MAINTENANCE_METHODS.has(path)) throw unimplementedInMaintenance();
    } else if (!allowed(path, organizations(call))) {
      throw notAuthorized();
    }
    // A repeated header may arrive joined with ", " (HTTP/2 header folding): split it again.
    const values = (key: string) =>
      call.metadata
        .get(key)
        .flatMap((v) => String(v).split(","))
        .map((v) => v.trim())
        .filter((v) => v !== "");
    const node = values("node");
    const nodes = values("nodes");
    if (node.length > 1) throw new SimStatusError(S.INVALID_ARGUMENT, "node metadata must be single-valued");
    const names = node.length === 1 ? node : nodes;
    if (names.length === 0) return { targets: [this], fanOut: false };
    const targets = names.map((n) => {
      const target = this.ctx.findNode(n);
      if (!target) throw new SimStatusError(S.UNAVAILABLE, `connection error: no route to ${n}`);
      return target;
    });
    return { targets, fanOut: node.length === 0 };
  }

  private async serveUnary(
    path: string,
    call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
    cb: grpc.sendUnaryData<unknown>,
  ): Promise<void> {
    try {
      const { targets, fanOut } = this.route(path, call);
      if (targets.length === 1 && targets[0] === this && !fanOut) {
        cb(null, await this.handle(path, call.request));
        return;
      }
      // apid proxying: each node's messages carry its address; a failing node becomes an error message.
      const messages: unknown[] = [];
      for (const target of targets) {
        try {
          const res = (await target.handleProxied(path, call.request)) as {
            messages?: Record<string, unknown>[];
          };
          for (const m of res.messages ?? []) messages.push({ ...m, metadata: { hostname: target.ip } });
        } catch (err) {
          if (!fanOut) throw err;
          const e = err instanceof SimStatusError ? err : new SimStatusError(S.UNKNOWN, String(err));
          messages.push({
            metadata: { hostname: target.ip, error: e.details, status: { code: e.code, message: e.details } },
          });
        }
      }
      cb(null, { messages });
    } catch (err) {
      cb(toServiceError(err));
    }
  }

  private async serveStream(path: string, call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) {
    try {
      const { targets } = this.route(path, call);
      const target = targets[0] ?? this;
      if (targets.length > 1)
        throw new SimStatusError(S.INVALID_ARGUMENT, "streaming calls proxy to one node only");
      const proxied = target !== this;
      await (proxied ? target.handleProxied.bind(target) : this.handle.bind(this))(
        path,
        call.request,
        (m) => {
          call.write(
            proxied && path.endsWith("/Kubeconfig")
              ? { ...(m as object), metadata: { hostname: target.ip } }
              : m,
          );
        },
      );
      call.end();
    } catch (err) {
      call.emit("error", toServiceError(err));
    }
  }

  /** A call proxied from another node's apid, which talks mTLS to this one. */
  async handleProxied(
    path: string,
    request: Record<string, unknown>,
    write?: (m: unknown) => void,
  ): Promise<unknown> {
    if (this.mode !== "running") {
      throw new SimStatusError(
        S.UNAVAILABLE,
        `connection error: ${this.name} is ${this.mode === "maintenance" ? "in maintenance mode" : this.mode}`,
      );
    }
    this.calls.push(path);
    return this.handle(path, request, write);
  }

  // --- handlers -------------------------------------------------------------------------------------

  private handle(
    path: string,
    request: Record<string, unknown>,
    write?: (m: unknown) => void,
  ): Promise<unknown> {
    const handler = this.handlers[path];
    if (!handler) return Promise.reject(new SimStatusError(S.UNIMPLEMENTED, `unknown method ${path}`));
    // Saved before the answer leaves: a client that saw a change never finds it undone after a restart.
    return handler(request, write).finally(() => this.ctx.changed());
  }

  private requireControlPlane(): NodeConfigState {
    if (!this.config) throw unimplementedInMaintenance();
    if (this.config.role !== "controlplane") {
      throw new SimStatusError(S.FAILED_PRECONDITION, "command is only supported on control plane nodes");
    }
    return this.config;
  }

  private requireEtcdMember(): SimulatedEtcd {
    this.requireControlPlane();
    const reason = this.etcdWaitReason();
    if (reason)
      throw new SimStatusError(S.FAILED_PRECONDITION, `etcd is not running on this node: ${reason}`);
    return this.etcd() as SimulatedEtcd;
  }

  private readonly handlers: Record<string, Handler> = {
    "/machine.MachineService/Version": async () => ({
      messages: [
        {
          version: {
            tag: this.version,
            sha: "simulated",
            built: "",
            goVersion: "go1.26",
            os: "linux",
            arch: "amd64",
          },
          platform: { name: "nocloud", mode: "cloud" },
          features: { rbac: true },
        },
      ],
    }),

    "/machine.MachineService/Hostname": async () => ({ messages: [{ hostname: this.hostname }] }),

    "/machine.MachineService/ApplyConfiguration": async (req) => {
      const mode = String(req.mode ?? "REBOOT");
      if (this.mode === "maintenance" && (mode === "NO_REBOOT" || mode === "STAGED")) {
        // Maintenance accepts TRY, REBOOT and AUTO only (internal/app/maintenance/server.go @v1.12.0).
        throw new SimStatusError(
          S.UNIMPLEMENTED,
          `apply configuration in ${mode} mode is not supported in maintenance mode`,
        );
      }
      if (this.applyInProgress)
        throw new SimStatusError(S.FAILED_PRECONDITION, "another apply configuration is already in progress");
      const parsed = parseConfig(Buffer.from(req.data as Uint8Array).toString("utf8"));
      if (this.config && parsed.clusterId !== this.config.clusterId) {
        throw new SimStatusError(
          S.INVALID_ARGUMENT,
          "config belongs to another cluster (cluster.id differs)",
        );
      }
      if (req.dryRun) {
        return {
          messages: [
            {
              mode,
              modeDetails: "Dry run summary:\nApplied configuration without a reboot (dry run)",
              warnings: [],
            },
          ],
        };
      }
      this.applyInProgress = true;
      try {
        this.applied.push({
          at: Date.now(),
          mode:
            this.mode === "maintenance" || mode === "REBOOT"
              ? "REBOOT"
              : mode === "STAGED"
                ? "STAGED"
                : "NO_REBOOT",
          yaml: parsed.yaml,
        });
        if (this.mode === "maintenance" || mode === "REBOOT") {
          this.stagedConfig = parsed;
          this.scheduleReboot("configuration applied");
          return {
            messages: [{ mode: "REBOOT", modeDetails: "Applied configuration with a reboot", warnings: [] }],
          };
        }
        if (mode === "STAGED") {
          this.stagedConfig = parsed;
          return {
            messages: [
              {
                mode: "STAGED",
                modeDetails: "Staged configuration to be applied after the next reboot",
                warnings: [],
              },
            ],
          };
        }
        const before = this.config;
        this.config = parsed;
        // Talos restarts the kubelet on a new kubelet image and the kubelet its static pods on new
        // manifests: both report to the cluster again, as at boot.
        if (
          before?.kubeletVersion !== parsed.kubeletVersion ||
          JSON.stringify(before?.staticPods) !== JSON.stringify(parsed.staticPods)
        )
          this.ctx.nodeRunning(this);
        return {
          messages: [
            { mode: "NO_REBOOT", modeDetails: "Applied configuration without a reboot", warnings: [] },
          ],
        };
      } finally {
        this.applyInProgress = false;
      }
    },

    "/machine.MachineService/Bootstrap": async () => {
      this.requireControlPlane();
      const etcd = this.etcd() as SimulatedEtcd;
      etcd.bootstrap(this.name, this.hostname, this.advertisedIp);
      this.ctx.onEtcdChanged((this.config as NodeConfigState).clusterId);
      this.ctx.log(`${this.name} bootstrapped etcd`);
      return { messages: [{}] };
    },

    "/machine.MachineService/Kubeconfig": async (_req, write) => {
      const config = this.requireControlPlane();
      const kubeconfig = (await this.ctx.kubeconfig(this)) ?? generatedKubeconfig(config);
      const archive = createTarGz([{ name: "kubeconfig", mode: 0o600, data: Buffer.from(kubeconfig) }]);
      write?.({ bytes: archive });
      return undefined;
    },

    // COSI reads of the one resource type we serve. Workers have no Manifests (Talos renders them on
    // control planes only): their List is empty, as Talos' is; other types and namespaces are refused.
    "/cosi.resource.State/List": async (req, write) => {
      const config = this.config;
      if (!config) throw unimplementedInMaintenance();
      if (req.namespace !== CONTROL_PLANE_NAMESPACE || req.type !== MANIFESTS_TYPE)
        throw new SimStatusError(
          S.NOT_FOUND,
          `resource type ${String(req.type)} in namespace ${String(req.namespace)} is not served by the simulator`,
        );
      if (config.role !== "controlplane") return undefined;
      for (const m of renderBootstrapManifests(config.yaml)) {
        const now = { seconds: String(Math.floor(this.bootedAt.getTime() / 1000)), nanos: 0 };
        write?.({
          resource: {
            metadata: {
              namespace: CONTROL_PLANE_NAMESPACE,
              type: MANIFESTS_TYPE,
              id: m.id,
              version: "1",
              owner: "k8s.ManifestController",
              phase: "running",
              created: now,
              updated: now,
            },
            spec: { protoSpec: encodeManifestSpec(m.objects), yamlSpec: "" },
          },
        });
      }
      return undefined;
    },

    "/machine.MachineService/EtcdMemberList": async () => {
      this.requireControlPlane();
      const etcd = this.etcd() as SimulatedEtcd;
      if (!etcd.bootstrapped) throw new SimStatusError(S.FAILED_PRECONDITION, "etcd is not bootstrapped yet");
      const members = [...etcd.members.values()].map((m) => ({
        id: m.id,
        hostname: m.hostname,
        peerUrls: [`https://${m.ip}:2380`],
        clientUrls: [`https://${m.ip}:2379`],
        isLearner: m.isLearner,
      }));
      return { messages: [{ members, legacyMembers: [] }] };
    },

    "/machine.MachineService/EtcdRemoveMemberByID": async (req) => {
      const etcd = this.requireEtcdMember();
      const removed = etcd.removeById(String(req.memberId));
      const owner = this.ctx.findNode(removed.nodeName);
      if (owner && !owner.etcdDataWiped) owner.etcdRemoved = true;
      this.ctx.onEtcdChanged((this.config as NodeConfigState).clusterId);
      return { messages: [{}] };
    },

    "/machine.MachineService/EtcdLeaveCluster": async () => {
      const etcd = this.requireEtcdMember();
      etcd.leave(this.name);
      this.leftEtcd = true;
      return { messages: [{}] };
    },

    "/machine.MachineService/EtcdForfeitLeadership": async () => {
      const etcd = this.requireEtcdMember();
      return { messages: [{ member: etcd.forfeit(this.name) }] };
    },

    "/machine.MachineService/EtcdStatus": async () => {
      const etcd = this.requireEtcdMember();
      const me = etcd.memberOf(this.name);
      const unhealthy = etcd.unhealthy.has(this.name);
      return {
        messages: [
          {
            memberStatus: {
              memberId: me?.id ?? "0",
              leader: etcd.leaderId ?? "0",
              protocolVersion: "3.6.0",
              storageVersion: "3.6.0",
              errors: unhealthy ? ["etcdserver: simulated member failure"] : [],
            },
          },
        ],
      };
    },

    "/machine.MachineService/ServiceList": async () => ({ messages: [{ services: this.services() }] }),

    "/machine.MachineService/Reboot": async () => {
      this.scheduleReboot("reboot requested");
      return { messages: [{ actorId: randomUUID() }] };
    },

    "/machine.MachineService/Reset": async (req) => {
      if (!this.config) throw unimplementedInMaintenance();
      const etcd = this.etcd();
      if (req.graceful && this.config.role === "controlplane" && etcd?.memberOf(this.name)) {
        etcd.leave(this.name);
      }
      this.config = null;
      this.stagedConfig = null;
      this.leftEtcd = false;
      this.etcdRemoved = false;
      this.etcdDataWiped = true;
      if (req.reboot) this.scheduleReboot("reset");
      else setTimeout(() => void this.setDown(true), 20);
      return { messages: [{ actorId: randomUUID() }] };
    },

    "/machine.MachineService/Upgrade": async (req) => {
      if (!this.config) throw unimplementedInMaintenance();
      const image = String(req.image ?? "");
      const version = versionFromImage(image);
      // The installer is pulled before the answer (v1alpha1_server.go Upgrade): a wrong image fails here.
      assertInstallerImage(image);
      if (this.faults.failUpgrade === "pull")
        throw new SimStatusError(S.NOT_FOUND, `failed to pull image "${image}": not found (injected fault)`);
      if (this.config.role === "controlplane" && !req.force)
        this.etcd()?.assertHealthyForUpgrade((n) => this.ctx.isRunning(n));
      // The legacy API acknowledges at once and upgrades asynchronously (v1alpha1_server.go Upgrade).
      setTimeout(() => {
        if (this.faults.failUpgrade) {
          this.ctx.log(`${this.name} upgrade to ${image} failed (injected fault)`);
          return;
        }
        this.stagedVersion = version;
        this.stagedImage = image;
        this.scheduleReboot(`upgrade to ${version}`);
      }, 20);
      return { messages: [{ ack: "Upgrade request received", actorId: randomUUID() }] };
    },

    "/machine.MachineService/ImagePull": async (req) => {
      if (!this.config) throw unimplementedInMaintenance();
      this.pull(String(req.reference ?? ""), String(req.namespace ?? "NS_UNKNOWN"), "MachineService");
      return { messages: [{}] };
    },

    "/machine.ImageService/Pull": async (req, write) => {
      if (!this.config) throw unimplementedInMaintenance();
      const ref = String(req.imageRef ?? "");
      const containerd = req.containerd as { namespace?: string } | undefined;
      this.pull(ref, containerd?.namespace ?? "NS_UNKNOWN", "ImageService");
      write?.({
        pullProgress: {
          layerId: "sha256:simulated",
          progress: { status: "DOWNLOAD_COMPLETE", offset: 1, total: 1 },
        },
      });
      write?.({ name: ref });
      return undefined;
    },

    "/machine.LifecycleService/Upgrade": async (req, write) => {
      if (!this.config) throw unimplementedInMaintenance();
      const image = String((req.source as { imageName?: string } | undefined)?.imageName ?? "");
      const version = versionFromImage(image);
      assertInstallerImage(image);
      if (this.config.role === "controlplane")
        this.etcd()?.assertHealthyForUpgrade((n) => this.ctx.isRunning(n));
      write?.({ progress: { message: `installing ${image}` } });
      if (this.faults.failUpgrade) {
        write?.({ progress: { message: "installer failed (injected fault)" } });
        write?.({ progress: { exitCode: 1 } });
        return undefined;
      }
      this.stagedVersion = version;
      this.stagedImage = image;
      write?.({ progress: { message: "upgrade staged, reboot to activate" } });
      write?.({ progress: { exitCode: 0 } });
      return undefined;
    },
  };

  /** A pull: refused for an unparsable or unknown reference or an injected fault, else recorded. */
  private pull(image: string, namespace: string, api: PulledImage["api"]) {
    if (namespace !== "NS_SYSTEM" && namespace !== "NS_CRI")
      throw new SimStatusError(S.INVALID_ARGUMENT, `unsupported containerd namespace ${namespace}`);
    assertPullableImage(image);
    const installer = !KUBERNETES_IMAGE_RE.test(image);
    if ((installer && this.faults.failUpgrade === "pull") || this.faults.missingImages.has(image))
      throw new SimStatusError(S.NOT_FOUND, `failed to pull image "${image}": not found (injected fault)`);
    this.pulls.push({ at: Date.now(), image, namespace, api });
  }

  private services() {
    const since = timestamp(this.bootedAt);
    const running = (id: string, healthy = true, lastMessage = "") => ({
      id,
      state: "Running",
      events: { events: [{ msg: "Health check successful", state: "Running", ts: since }] },
      health: { unknown: false, healthy, lastMessage, lastChange: since },
    });
    const list = [running("apid"), running("machined")];
    if (!this.config) return list;
    list.push(running("containerd"), running("cri"), running("kubelet"), running("trustd"));
    if (this.config.role === "controlplane") {
      const waiting = this.etcdWaitReason();
      if (waiting) {
        list.push({
          id: "etcd",
          state: "Preparing",
          events: { events: [{ msg: waiting, state: "Preparing", ts: since }] },
          health: { unknown: true, healthy: false, lastMessage: waiting, lastChange: since },
        });
      } else {
        const unhealthy = this.etcd()?.unhealthy.has(this.name) ?? false;
        list.push(running("etcd", !unhealthy, unhealthy ? "etcdserver: simulated member failure" : ""));
      }
    }
    return list.sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** Without a configured kubeconfig, mint one as Talos does: an admin cert from the cluster's K8s CA. */
function generatedKubeconfig(config: NodeConfigState): string {
  const ca = loadCA(config.k8sCaCrt, config.k8sCaKey);
  const admin = issueCert(ca, {
    subject: { commonName: "admin", organizations: ["system:masters"] },
    key: "ecdsa-p256",
    extKeyUsage: ["clientAuth"],
  });
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const name = config.clusterName || "talos";
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `  - name: ${name}`,
    "    cluster:",
    `      server: ${config.endpoint}`,
    `      certificate-authority-data: ${b64(config.k8sCaCrt)}`,
    "users:",
    `  - name: admin@${name}`,
    "    user:",
    `      client-certificate-data: ${b64(admin.certPem)}`,
    `      client-key-data: ${b64(admin.keyPem)}`,
    "contexts:",
    `  - name: admin@${name}`,
    "    context:",
    `      cluster: ${name}`,
    `      user: admin@${name}`,
    `current-context: admin@${name}`,
    "",
  ].join("\n");
}

function timestamp(d: Date) {
  return { seconds: String(Math.floor(d.getTime() / 1000)), nanos: (d.getTime() % 1000) * 1_000_000 };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof SimStatusError) return { code: err.code, details: err.details };
  return { code: S.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
