// A Talos API simulator: one gRPC server per simulated node, each on its own loopback address at Talos'
// port 50000 when it is free (else a port of its own), speaking the same protocol as Talos so that both
// our client and the real talosctl can drive it. Usage and behaviour: ../README.md.

import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { TALOS_API_PORT } from "../client/talos-client.ts";
import { DEFAULT_TALOS_VERSION } from "../config/defaults.ts";
import { type BootstrapRecord, type EtcdMemberState, type EtcdRecord, SimulatedEtcd } from "./etcd.ts";
import {
  type AppliedConfig,
  type NodeMode,
  type NodeState,
  type PulledImage,
  SimulatedNode,
  type SimulatorContext,
  type StaticPod,
} from "./node.ts";

export interface SimulatorNodeSpec {
  name: string;
  /** Loopback address to listen on, e.g. 127.0.0.2 (any 127.0.0.0/8 address works on Linux). */
  ip: string;
  /** Talos version the node boots with. Default: DEFAULT_TALOS_VERSION. */
  talosVersion?: string;
  /** Port; default 50000 if free on that address, else an ephemeral one. */
  port?: number;
  /**
   * The address the node is known by on its network, when it differs from `ip` (local mode: the seed's
   * 10.0.3.16 while listening on 127.0.0.16). Its certificate names both; etcd peers and the Node's
   * InternalIP use this one; the `node` header may name either.
   */
  advertisedIp?: string;
}

/** A node whose kubelet registers with its cluster: configured, running, and etcd bootstrapped. */
export interface JoinedNode {
  /** The hostname from the machine config (the Node's name), else the simulated node's name. */
  hostname: string;
  address: string;
  role: "controlplane" | "worker";
  /** From the machine config's kubelet image, "" if it names none. */
  kubeletVersion: string;
  clusterName: string;
  /** False for a control plane of a cluster without allowSchedulingOnControlPlanes (Talos taints it). */
  schedulable: boolean;
  /** The static pods its kubelet runs from the machine config (control planes: API server, controller manager, scheduler). */
  staticPods: StaticPod[];
}

/**
 * The Kubernetes side of a simulated cluster, implemented outside src/talos (local mode runs a real
 * control plane for it). The simulator only calls it; it never talks to Kubernetes itself.
 */
export interface WorkloadClusterHook {
  /** The admin kubeconfig Talos' Kubeconfig call returns once the cluster's etcd is bootstrapped. */
  kubeconfig(): Promise<string>;
  /** A node's kubelet registers (called at every boot; must be idempotent). */
  nodeJoined(node: JoinedNode): Promise<void>;
}

export type KubeconfigSource = string | (() => string | undefined | Promise<string | undefined>);

export interface TalosSimulatorOptions {
  nodes: readonly SimulatorNodeSpec[];
  /** What Kubeconfig returns (e.g. a real test control plane's admin kubeconfig). Default: one minted
   * from the cluster's Kubernetes CA, pointing at the config's endpoint. */
  kubeconfig?: KubeconfigSource;
  /** Kubeconfig after bootstrap and Node registration come from here (takes precedence over `kubeconfig`). */
  workloadCluster?: WorkloadClusterHook;
  /**
   * A JSON file the simulator keeps its machines' state in (configs, modes, versions, etcd members),
   * written before each answer; a simulator started with an existing file resumes those machines.
   */
  stateFile?: string;
  /** How long a reboot keeps a node unavailable. Default 300 ms. */
  rebootDelayMs?: number;
  log?: (line: string) => void;
}

export interface SimulatedNodeInfo {
  name: string;
  ip: string;
  port: number;
  /** host:port for clients and `talosctl -e`. */
  endpoint: string;
}

export interface TalosSimulatorFaults {
  /** Node powered off (or back on): every call fails with Unavailable. */
  nodeDown(name: string, down?: boolean): Promise<void>;
  /** Reboots take this much longer. */
  slowReboot(name: string, extraMs: number): void;
  /** Upgrades fail: at image pull, or the installer exits non-zero (legacy: no reboot happens). */
  failUpgrade(name: string, stage?: "pull" | "install" | null): void;
  /** Applied configs never take: the node reboots back into maintenance mode (until turned off). */
  installFails(name: string, fails?: boolean): void;
  /** Pulls of `image` on the node fail NotFound (or succeed again with missing = false). */
  missingImage(name: string, image: string, missing?: boolean): void;
  /** The node's etcd member reports unhealthy (ServiceList, EtcdStatus, upgrade pre-checks). */
  etcdUnhealthy(name: string, unhealthy?: boolean): void;
}

/** One entry of the simulator's record of node states over time. */
export interface NodeStateRecord {
  /** Date.now() when the state began. */
  at: number;
  node: string;
  mode: NodeMode;
  version: string;
  /** Started and healthy etcd members of the node's cluster at that moment (null: no etcd yet). */
  etcdHealthy: number | null;
}

export interface NodeSnapshot {
  name: string;
  mode: NodeMode;
  version: string;
  /** Installer image of the installed system (the config's, then each upgrade's). */
  image: string | null;
  role: "controlplane" | "worker" | null;
  configYaml: string | null;
  /** Every configuration applied to the node, in order. */
  applied: readonly AppliedConfig[];
  /** Every image pull that succeeded on the node, in order. */
  pulls: readonly PulledImage[];
  reboots: number;
  etcdMemberId: string | null;
  calls: readonly string[];
}

export interface TalosSimulator {
  nodes: SimulatedNodeInfo[];
  endpoint(name: string): string;
  node(name: string): NodeSnapshot;
  faults: TalosSimulatorFaults;
  setKubeconfig(source: KubeconfigSource | undefined): void;
  /** Every change of a node's mode or version, and of etcd health, since the simulator started. */
  history(): readonly NodeStateRecord[];
  /**
   * The etcd history (membership changes, member machines' power) of the cluster machine `name` is
   * configured for, oldest first; kept in memory only (a restarted simulator starts a new record).
   */
  etcdHistory(name: string): readonly EtcdRecord[];
  /** The machine got a new, empty disk (its VM was recreated): maintenance mode, etcd data gone. */
  wipeDisk(name: string): void;
  /** Resolves when the node reaches `mode` (after a reboot, for example). */
  waitForMode(name: string, mode: NodeMode, timeoutMs?: number): Promise<void>;
  /** Resolves once the node has booted again after `reboots` (a count read from node(name).reboots). */
  waitForReboot(name: string, reboots: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function portFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host: ip, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

export interface EtcdState {
  bootstrapped: boolean;
  leaderId: string | null;
  members: EtcdMemberState[];
  /** Absent in state files written before bootstrap calls were recorded. */
  bootstraps?: BootstrapRecord[];
}

/** What `stateFile` holds. */
export interface SimulatorState {
  nodes: Record<string, NodeState>;
  etcd: Record<string, EtcdState>;
}

const JOIN_RETRY_MS = 1_000;

export async function startTalosSimulator(options: TalosSimulatorOptions): Promise<TalosSimulator> {
  const etcds = new Map<string, SimulatedEtcd>();
  const nodes = new Map<string, SimulatedNode>();
  let kubeconfigSource = options.kubeconfig;
  const log = options.log ?? (() => {});
  let stopped = false;
  let loading = true;

  const save = () => {
    if (!options.stateFile || loading) return;
    const state: SimulatorState = {
      nodes: Object.fromEntries([...nodes.values()].map((n) => [n.name, n.snapshot()])),
      etcd: Object.fromEntries(
        [...etcds.entries()].map(([id, e]) => [
          id,
          {
            bootstrapped: e.bootstrapped,
            leaderId: e.leaderId,
            members: [...e.members.values()],
            bootstraps: e.bootstraps,
          },
        ]),
      ),
    };
    // Write-then-rename: a kill at any moment leaves the old or the new state, never half of one.
    const tmp = `${options.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
    renameSync(tmp, options.stateFile);
  };

  // The kubelet keeps retrying its registration until the API server takes it, as long as it runs.
  const joining = new Set<string>();
  // Announced again while a registration runs (a config changed meanwhile): run once more after it.
  const again = new Set<string>();
  const announce = (node: SimulatedNode) => {
    const hook = options.workloadCluster;
    const config = node.config;
    if (joining.has(node.name)) again.add(node.name);
    if (!hook || !config || stopped || joining.has(node.name)) return;
    if (!etcds.get(config.clusterId)?.bootstrapped) return;
    joining.add(node.name);
    const joined: JoinedNode = {
      hostname: node.hostname,
      address: node.advertisedIp,
      role: config.role,
      kubeletVersion: config.kubeletVersion,
      clusterName: config.clusterName,
      schedulable: config.role === "worker" || config.allowSchedulingOnControlPlanes,
      staticPods: config.staticPods,
    };
    const finished = () => {
      joining.delete(node.name);
      if (again.delete(node.name)) announce(node);
    };
    const attempt = () => {
      if (stopped || node.mode !== "running") {
        finished();
        return;
      }
      hook.nodeJoined(joined).then(finished, (err: unknown) => {
        log(`${node.name}: kubelet registration failed, retrying: ${(err as Error).message}`);
        setTimeout(attempt, JOIN_RETRY_MS);
      });
    };
    attempt();
  };

  const history: NodeStateRecord[] = [];
  const isRunning = (name: string) => nodes.get(name)?.mode === "running";
  const observe = (node: SimulatedNode) => {
    const etcd = node.config ? etcds.get(node.config.clusterId) : undefined;
    history.push({
      at: Date.now(),
      node: node.name,
      mode: node.mode,
      version: node.version,
      etcdHealthy: etcd?.bootstrapped ? etcd.healthyMembers(isRunning) : null,
    });
  };

  const ctx: SimulatorContext = {
    observe,
    isRunning,
    etcdFor(clusterId) {
      let etcd = etcds.get(clusterId);
      if (!etcd) {
        etcd = new SimulatedEtcd((name) => nodes.get(name)?.runsEtcd() ?? false);
        etcds.set(clusterId, etcd);
      }
      return etcd;
    },
    findNode(key) {
      const host = key.replace(/:\d+$/, "");
      for (const n of nodes.values())
        if (n.name === key || n.ip === host || n.advertisedIp === host || n.hostname === key) return n;
      return undefined;
    },
    osCaKeyFor(clusterId) {
      for (const n of nodes.values())
        if (n.config?.clusterId === clusterId && n.config.osCaKey) return n.config.osCaKey;
      return undefined;
    },
    async kubeconfig(node) {
      const clusterId = node.config?.clusterId;
      if (options.workloadCluster && clusterId && etcds.get(clusterId)?.bootstrapped)
        return options.workloadCluster.kubeconfig();
      if (typeof kubeconfigSource === "function") return kubeconfigSource();
      return kubeconfigSource;
    },
    onEtcdChanged(clusterId) {
      for (const n of nodes.values()) {
        if (n.config?.clusterId !== clusterId) continue;
        n.joinEtcdIfRunning();
        if (n.mode === "running") announce(n);
      }
    },
    nodeRunning: announce,
    changed: save,
    rebootDelayMs: options.rebootDelayMs ?? 300,
    log,
  };

  const seen = new Set<string>();
  for (const spec of options.nodes) {
    if (seen.has(spec.name) || seen.has(spec.ip))
      throw new Error(`duplicate simulated node ${spec.name}/${spec.ip}`);
    seen.add(spec.name);
    seen.add(spec.ip);
    const port = spec.port ?? ((await portFree(spec.ip, TALOS_API_PORT)) ? TALOS_API_PORT : 0);
    nodes.set(
      spec.name,
      new SimulatedNode(
        ctx,
        spec.name,
        spec.ip,
        spec.talosVersion ?? DEFAULT_TALOS_VERSION,
        port,
        spec.advertisedIp,
      ),
    );
  }

  const saved: SimulatorState | undefined =
    options.stateFile && existsSync(options.stateFile)
      ? JSON.parse(readFileSync(options.stateFile, "utf8"))
      : undefined;
  for (const [id, e] of Object.entries(saved?.etcd ?? {})) {
    const etcd = ctx.etcdFor(id);
    etcd.bootstrapped = e.bootstrapped;
    etcd.leaderId = e.leaderId;
    for (const m of e.members) etcd.members.set(m.id, m);
    etcd.bootstraps.push(...(e.bootstraps ?? []));
  }
  try {
    for (const n of nodes.values()) {
      const state = saved?.nodes[n.name];
      if (state) await n.resume(state);
      else await n.boot();
    }
  } catch (err) {
    for (const n of nodes.values()) await n.shutdown();
    throw err;
  }
  loading = false;
  save();

  const get = (name: string): SimulatedNode => {
    const n = nodes.get(name);
    if (!n) throw new Error(`no simulated node ${name}`);
    return n;
  };

  return {
    nodes: [...nodes.values()].map((n) => ({ name: n.name, ip: n.ip, port: n.port, endpoint: n.endpoint })),
    endpoint: (name) => get(name).endpoint,
    node(name) {
      const n = get(name);
      const etcd = n.config ? etcds.get(n.config.clusterId) : undefined;
      return {
        name: n.name,
        mode: n.mode,
        version: n.version,
        image: n.image,
        role: n.config?.role ?? null,
        configYaml: n.config?.yaml ?? null,
        applied: [...n.applied],
        pulls: [...n.pulls],
        reboots: n.reboots,
        etcdMemberId: etcd?.memberOf(n.name)?.id ?? null,
        calls: [...n.calls],
      };
    },
    faults: {
      nodeDown: (name, down = true) => get(name).setDown(down),
      slowReboot(name, extraMs) {
        get(name).faults.slowRebootMs = extraMs;
      },
      installFails(name, fails = true) {
        get(name).faults.installFails = fails;
      },
      missingImage(name, image, missing = true) {
        if (missing) get(name).faults.missingImages.add(image);
        else get(name).faults.missingImages.delete(image);
      },
      failUpgrade(name, stage = "install") {
        get(name).faults.failUpgrade = stage;
      },
      etcdUnhealthy(name, unhealthy = true) {
        const n = get(name);
        if (!n.config) throw new Error(`${name} has no config, so no etcd member`);
        const etcd = ctx.etcdFor(n.config.clusterId);
        if (unhealthy) etcd.unhealthy.add(name);
        else etcd.unhealthy.delete(name);
        observe(n);
      },
    },
    history: () => [...history],
    setKubeconfig(source) {
      kubeconfigSource = source;
    },
    wipeDisk: (name) => get(name).wipeDisk(),
    etcdHistory(name) {
      const clusterId = get(name).config?.clusterId;
      return clusterId ? [...(etcds.get(clusterId)?.history ?? [])] : [];
    },
    async waitForMode(name, mode, timeoutMs = 10_000) {
      const n = get(name);
      const deadline = Date.now() + timeoutMs;
      while (n.mode !== mode) {
        if (Date.now() > deadline) throw new Error(`${name} did not reach ${mode} (is ${n.mode})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async waitForReboot(name, reboots, timeoutMs = 10_000) {
      const n = get(name);
      const deadline = Date.now() + timeoutMs;
      while (n.reboots <= reboots || n.mode === "rebooting") {
        if (Date.now() > deadline)
          throw new Error(`${name} did not reboot (${n.reboots} reboots, ${n.mode})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      save();
      stopped = true;
      loading = true; // nothing after this point is the machines' state: powering off the simulator is not
      for (const n of nodes.values()) {
        n.down = true;
        await n.shutdown();
      }
    },
  };
}
