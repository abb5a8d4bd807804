// What one reconcile of one HomelabCluster works with. Reads of outside state are memoised here, so a
// phase can ask for "the VMs" without costing a second cluster-wide Proxmox read.
import type { HomelabCluster, HomelabClusterStatus } from "../../crds/homelab-cluster.ts";
import type { ProxmoxClient, VmResource } from "../../proxmox/index.ts";
import type { KubeClient, KubeObject, ReconcileContext } from "../../runtime/index.ts";
import type { SecretsBundle } from "../../talos/config/secrets.ts";
import type { Talosconfig } from "../../talos/config/talosconfig.ts";
import type { Connections } from "./connections.ts";

export type NodeStatus = NonNullable<HomelabClusterStatus["nodes"]>[number];

export interface Timings {
  /** A phase waiting on Proxmox or Talos looks again after this long. */
  pollMs: number;
  /** A phase blocked on the user (wrong token, taken VM id) looks again after this long. */
  blockedMs: number;
  /** A Ready cluster is checked again after this long (the steady-state resync). */
  resyncMs: number;
}

export interface ControllerOptions {
  /** Namespace of the operator: the cluster's Secrets live there. */
  namespace: string;
  connections: Connections;
  timings: Timings;
}

export interface Scope {
  ctx: ReconcileContext;
  opts: ControllerOptions;
  /** The object as cached (owner of Events, base of the status patch). */
  cached: KubeObject & { status?: HomelabClusterStatus };
  hc: HomelabCluster;
  spec: HomelabCluster["spec"];
  name: string;
  generation: number;
  /** The previous status: where progress is remembered between reconciles. */
  previous: HomelabClusterStatus;
  /** Node status being built this reconcile, keyed by node name. */
  nodes: Map<string, NodeStatus>;
  /** Status fields phases set (image, secretRefs, endpoint). */
  status: Partial<HomelabClusterStatus>;
  proxmox(): Promise<ProxmoxClient>;
  /** A client for the workload cluster behind this admin kubeconfig. */
  workload(kubeconfig: string): KubeClient;
  /** Every VM of the Proxmox cluster, read once per reconcile (`refresh` after a change). */
  vms(refresh?: boolean): Promise<VmResource[]>;
  secrets?: SecretsBundle;
  talosconfig?: Talosconfig;
  /** The admin kubeconfig, once stored. */
  kubeconfig?: string;
  /** What deletion still waits for (shown in status while Deleting). */
  deleting?: string;
  /** Events to record when the status is written (milestones). */
  milestones: { reason: string; action: string; note: string }[];
  /** Writes the status built so far now: for progress a restart must not repeat (a started download). */
  writeProgress(): Promise<void>;
}

export function nodeStatus(scope: Scope, name: string): NodeStatus {
  let s = scope.nodes.get(name);
  if (!s) {
    s = { name, ready: false };
    scope.nodes.set(name, s);
  }
  return s;
}

export function milestone(scope: Scope, reason: string, action: string, note: string): void {
  scope.milestones.push({ reason, action, note });
}
