// A Talos API simulator: one gRPC server per simulated node, each on its own loopback address at Talos'
// port 50000 when it is free (else a port of its own), speaking the same protocol as Talos so that both
// our client and the real talosctl can drive it. Usage and behaviour: ../README.md.

import { createServer } from "node:net";
import { TALOS_API_PORT } from "../client/talos-client.ts";
import { DEFAULT_TALOS_VERSION } from "../config/defaults.ts";
import { SimulatedEtcd } from "./etcd.ts";
import { type NodeMode, SimulatedNode, type SimulatorContext } from "./node.ts";

export interface SimulatorNodeSpec {
  name: string;
  /** Loopback address to listen on, e.g. 127.0.0.2 (any 127.0.0.0/8 address works on Linux). */
  ip: string;
  /** Talos version the node boots with. Default: DEFAULT_TALOS_VERSION. */
  talosVersion?: string;
  /** Port; default 50000 if free on that address, else an ephemeral one. */
  port?: number;
}

export type KubeconfigSource = string | (() => string | undefined | Promise<string | undefined>);

export interface TalosSimulatorOptions {
  nodes: readonly SimulatorNodeSpec[];
  /** What Kubeconfig returns (e.g. a real test control plane's admin kubeconfig). Default: one minted
   * from the cluster's Kubernetes CA, pointing at the config's endpoint. */
  kubeconfig?: KubeconfigSource;
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
  /** The node's etcd member reports unhealthy (ServiceList, EtcdStatus, upgrade pre-checks). */
  etcdUnhealthy(name: string, unhealthy?: boolean): void;
}

export interface NodeSnapshot {
  name: string;
  mode: NodeMode;
  version: string;
  role: "controlplane" | "worker" | null;
  configYaml: string | null;
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

export async function startTalosSimulator(options: TalosSimulatorOptions): Promise<TalosSimulator> {
  const etcds = new Map<string, SimulatedEtcd>();
  const nodes = new Map<string, SimulatedNode>();
  let kubeconfigSource = options.kubeconfig;

  const ctx: SimulatorContext = {
    etcdFor(clusterId) {
      let etcd = etcds.get(clusterId);
      if (!etcd) {
        etcd = new SimulatedEtcd();
        etcds.set(clusterId, etcd);
      }
      return etcd;
    },
    findNode(key) {
      const host = key.replace(/:\d+$/, "");
      for (const n of nodes.values()) if (n.name === key || n.ip === host || n.hostname === key) return n;
      return undefined;
    },
    osCaKeyFor(clusterId) {
      for (const n of nodes.values())
        if (n.config?.clusterId === clusterId && n.config.osCaKey) return n.config.osCaKey;
      return undefined;
    },
    async kubeconfig() {
      if (typeof kubeconfigSource === "function") return kubeconfigSource();
      return kubeconfigSource;
    },
    onEtcdChanged(clusterId) {
      for (const n of nodes.values()) if (n.config?.clusterId === clusterId) n.joinEtcdIfRunning();
    },
    rebootDelayMs: options.rebootDelayMs ?? 300,
    log: options.log ?? (() => {}),
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
      new SimulatedNode(ctx, spec.name, spec.ip, spec.talosVersion ?? DEFAULT_TALOS_VERSION, port),
    );
  }

  try {
    for (const n of nodes.values()) await n.boot();
  } catch (err) {
    for (const n of nodes.values()) await n.shutdown();
    throw err;
  }

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
        role: n.config?.role ?? null,
        configYaml: n.config?.yaml ?? null,
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
      failUpgrade(name, stage = "install") {
        get(name).faults.failUpgrade = stage;
      },
      etcdUnhealthy(name, unhealthy = true) {
        const n = get(name);
        if (!n.config) throw new Error(`${name} has no config, so no etcd member`);
        const etcd = ctx.etcdFor(n.config.clusterId);
        if (unhealthy) etcd.unhealthy.add(name);
        else etcd.unhealthy.delete(name);
      },
    },
    setKubeconfig(source) {
      kubeconfigSource = source;
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
      for (const n of nodes.values()) {
        n.down = true;
        await n.shutdown();
      }
    },
  };
}
