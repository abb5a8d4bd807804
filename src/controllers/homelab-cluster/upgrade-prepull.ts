// The pre-pull `talosctl upgrade-k8s` does before it patches any machine config
// (pkg/cluster/kubernetes/talos_managed.go prePullImages): every new image onto every node that will run
// it, so a tag the registry does not have (or a node that cannot reach it) stops the rollout before any
// static pod or kubelet is touched, and each later restart is only a container swap. The control-plane
// images go into containerd's CRI namespace (the kubelet runs the static pods there), the kubelet image
// into Talos' system namespace (Talos runs the kubelet itself), as talosctl does.
import { TalosClient } from "../../talos/client/talos-client.ts";
import type { Scope } from "./scope.ts";

export interface PullTarget {
  image: string;
  namespace: "system" | "cri";
}

/** A real pull of a control-plane image takes far longer than a Talos API call (talos.ts' 10 s). */
const PULL_TIMEOUT_MS = 5 * 60_000;

/** The images a node runs at `version`: the control-plane components on control planes, the kubelet everywhere. */
export function imagesToPull(
  role: "controlplane" | "worker",
  version: string,
  repositories: { controlPlane: readonly string[]; kubelet: string },
): PullTarget[] {
  const cri =
    role === "controlplane"
      ? repositories.controlPlane.map((r) => ({ image: `${r}:${version}`, namespace: "cri" as const }))
      : [];
  return [...cri, { image: `${repositories.kubelet}:${version}`, namespace: "system" }];
}

export type PrePullResult =
  | { ok: true; pulled: number; skipped: string[] }
  | { ok: false; node: string; image: string; message: string };

/**
 * Pulls each node's images, node by node in the order given; the first failure stops and is returned,
 * naming the node and the image. A node with no pull API at all is skipped (talosctl logs "not
 * implemented, skipping" and goes on). Pulling an image a node has already is a no-op for containerd,
 * so a pass that repeats this after a restart changes nothing.
 */
export async function prePull(
  scope: Scope,
  nodes: readonly { name: string; ip: string; images: PullTarget[] }[],
): Promise<PrePullResult> {
  if (!scope.talosconfig) throw new Error("talosconfig not loaded (the Secrets phase runs first)");
  let pulled = 0;
  const skipped: string[] = [];
  for (const node of nodes) {
    const client = TalosClient.fromTalosconfig(scope.talosconfig, {
      endpoint: scope.opts.connections.talosEndpoint(node.ip),
      timeoutMs: PULL_TIMEOUT_MS,
      dial: scope.opts.connections.dial,
    });
    try {
      for (const { image, namespace } of node.images) {
        let how: Awaited<ReturnType<TalosClient["pullImage"]>>;
        try {
          how = await client.pullImage(image, namespace);
        } catch (err) {
          return { ok: false, node: node.name, image, message: (err as Error).message };
        }
        if (how === "unsupported") {
          skipped.push(node.name);
          break;
        }
        pulled++;
      }
    } finally {
      client.close();
    }
  }
  return { ok: true, pulled, skipped };
}
