// KWOK's node Stages for local mode's workload cluster: a registered Node behaves as the kubelet of a
// Talos machine with `cluster.network.cni.name: none` does. Until a CNI runs on the node the kubelet
// reports Ready=False with the container runtime's "cni plugin not initialized" (so the node
// lifecycle controller taints it not-ready and only pods tolerating that, such as a CNI's DaemonSet,
// are scheduled); once the node carries CNI_READY_ANNOTATION it reports Ready=True. The four stages
// select disjoint sets of nodes, so exactly one applies to a node at any time. Pods use KWOK's default
// pod stages (scheduled pods become Running).
import { stringify } from "yaml";

/** Set by cni-readiness.ts on a node where a CNI agent pod runs (the kubelet would find its CNI config). */
export const CNI_READY_ANNOTATION = "local.homelab.shdr.ch/cni-pod";

// What kubelet v1.36 reports with no CNI config (pkg/kubelet/nodestatus ReadyCondition + containerd's
// NetworkReady=false message), as `kubectl describe node` shows on a fresh Talos node without a CNI.
export const NOT_READY_MESSAGE =
  "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/** The Ready condition of a node without a CNI, as the kubelet posts it (also at registration). */
export const NOT_READY = { status: "False", reason: "KubeletNotReady", message: NOT_READY_MESSAGE } as const;
/** The pressure conditions a healthy kubelet reports (pkg/kubelet/nodestatus), in the order it lists them. */
export const PRESSURE_CONDITIONS = (["MemoryPressure", "DiskPressure", "PIDPressure"] as const).map(
  (type) => ({
    type,
    status: "False",
    reason: `KubeletHasNo${type}`,
    message: `kubelet has no ${type.replace("Pressure", "").toLowerCase()} pressure`,
  }),
);

const annotation = `.metadata.annotations["${CNI_READY_ANNOTATION}"]`;
const readyStatus = '.status.conditions.[] | select( .type == "Ready" ) | .status';
const readyReason = '.status.conditions.[] | select( .type == "Ready" ) | .reason';

/**
 * Node status with the given Ready condition (its lastTransitionTime kept while the status stays the
 * same); addresses, capacity and nodeInfo the kubelet posted are kept.
 */
function statusTemplate(ready: { status: string; reason: string; message: string }): string {
  const pressure = PRESSURE_CONDITIONS.map(
    (c) => `- type: ${c.type}
  status: ${JSON.stringify(c.status)}
  reason: ${c.reason}
  message: ${c.message}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ or .creationTimestamp $now | Quote }}
`,
  );
  return `{{ $now := Now }}
{{ $since := $now }}
{{ range .status.conditions }}{{ if and (eq .type "Ready") (eq .status ${JSON.stringify(ready.status)}) }}{{ $since = .lastTransitionTime }}{{ end }}{{ end }}
conditions:
- type: Ready
  status: ${JSON.stringify(ready.status)}
  reason: ${JSON.stringify(ready.reason)}
  message: ${JSON.stringify(ready.message)}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
${pressure.join("")}{{ with .status.addresses }}
addresses:
{{ YAML . 1 }}
{{ end }}
{{ with .status.capacity }}
capacity:
{{ YAML . 1 }}
{{ end }}
{{ with .status.allocatable }}
allocatable:
{{ YAML . 1 }}
{{ end }}
{{ with .status.nodeInfo }}
nodeInfo:
{{ YAML . 1 }}
{{ end }}
phase: Running
`;
}

/** A heartbeat keeps lastHeartbeatTime fresh and the conditions as they are. */
const HEARTBEAT_DELAY = { durationMilliseconds: 20_000, jitterDurationMilliseconds: 25_000 };

interface Stage {
  apiVersion: "kwok.x-k8s.io/v1alpha1";
  kind: "Stage";
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function nodeStage(
  name: string,
  matchExpressions: { key: string; operator: string; values?: string[] }[],
  ready: { status: string; reason: string; message: string },
  heartbeat: boolean,
): Stage {
  return {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "Stage",
    metadata: { name },
    spec: {
      resourceRef: { apiGroup: "v1", kind: "Node" },
      selector: { matchExpressions },
      ...(heartbeat ? { delay: HEARTBEAT_DELAY } : {}),
      next: { statusTemplate: statusTemplate(ready) },
      ...(heartbeat ? { immediateNextStage: true } : {}),
    },
  };
}

const READY = { status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" };

export function nodeStages(): Stage[] {
  const noCni = { key: annotation, operator: "DoesNotExist" };
  const cni = { key: annotation, operator: "Exists" };
  return [
    nodeStage(
      "talos-node-network-not-ready",
      [noCni, { key: readyReason, operator: "NotIn", values: ["KubeletNotReady"] }],
      NOT_READY,
      false,
    ),
    nodeStage(
      "talos-node-heartbeat-not-ready",
      [noCni, { key: readyReason, operator: "In", values: ["KubeletNotReady"] }],
      NOT_READY,
      true,
    ),
    nodeStage(
      "talos-node-network-ready",
      [cni, { key: readyStatus, operator: "NotIn", values: ["True"] }],
      READY,
      false,
    ),
    nodeStage(
      "talos-node-heartbeat-ready",
      [cni, { key: readyStatus, operator: "In", values: ["True"] }],
      READY,
      true,
    ),
  ];
}

/**
 * A kwok --config file with the node Stages. No KwokConfiguration document: kwok v0.8.0 applies its
 * defaults only when the config has none (a given one keeps zero parallelism and kwok refuses to run).
 */
export function kwokConfigYaml(): string {
  return nodeStages()
    .map((d) => stringify(d))
    .join("---\n");
}
