// What stands in for the parts of a workload cluster that the harness's control plane has no processes
// for: kubelets (rollout status), the Cilium agent (its CRDs, registered at start-up), cilium-operator
// (GatewayClass Accepted) and Crossplane's init container (its CRDs). Each writes exactly what the real
// process writes, through the same API (status subresource, CRD create), so readiness checks see real
// objects; what they never do is decide anything about our components.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import type { KubeClient } from "../../src/runtime/client.ts";
import type { KubeObject } from "../../src/runtime/object.ts";

export const CRDS_DIR = fileURLToPath(new URL("./crds/", import.meta.url));

export async function helmBinary(): Promise<string> {
  const script = fileURLToPath(new URL("../../deploy/helm/build-helm.sh", import.meta.url));
  const { stdout } = await promisify(execFile)("bash", [script], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim().split("\n").slice(-1)[0] as string;
}

export async function applyCrdFile(client: KubeClient, file: string): Promise<void> {
  const crd = parse(await readFile(`${CRDS_DIR}${file}`, "utf8")) as KubeObject;
  await client.apply(crd, { force: true });
}

const exists = async (
  client: KubeClient,
  apiVersion: string,
  kind: string,
  key: { namespace?: string; name: string },
) => (await client.getOrUndefined({ apiVersion, kind }, key)) !== undefined;

/** One round of what kubelets, the Cilium agent/operator and Crossplane's init would have done by now. */
export async function standInRound(client: KubeClient): Promise<void> {
  const deployments = await client.list<KubeObject>({ apiVersion: "apps/v1", kind: "Deployment" });
  for (const d of deployments.items) {
    const replicas = (d.spec as { replicas?: number }).replicas ?? 1;
    const status = d.status as { observedGeneration?: number; availableReplicas?: number } | undefined;
    if (status?.observedGeneration === d.metadata?.generation && status?.availableReplicas === replicas)
      continue;
    await client.patchStatus(
      { apiVersion: "apps/v1", kind: "Deployment" },
      { namespace: d.metadata?.namespace as string, name: d.metadata?.name as string },
      {
        observedGeneration: d.metadata?.generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
      },
    );
  }
  const daemonSets = await client.list<KubeObject>({ apiVersion: "apps/v1", kind: "DaemonSet" });
  for (const d of daemonSets.items) {
    const status = d.status as { observedGeneration?: number; numberAvailable?: number } | undefined;
    if (status?.observedGeneration === d.metadata?.generation && status?.numberAvailable === 1) continue;
    await client.patchStatus(
      { apiVersion: "apps/v1", kind: "DaemonSet" },
      { namespace: d.metadata?.namespace as string, name: d.metadata?.name as string },
      {
        observedGeneration: d.metadata?.generation,
        desiredNumberScheduled: 1,
        currentNumberScheduled: 1,
        updatedNumberScheduled: 1,
        numberReady: 1,
        numberAvailable: 1,
        numberMisscheduled: 0,
      },
    );
  }
  if (await exists(client, "apps/v1", "DaemonSet", { namespace: "kube-system", name: "cilium" })) {
    await applyCrdFile(client, "v2_ciliumloadbalancerippools.yaml");
    await applyCrdFile(client, "v2alpha1_ciliuml2announcementpolicies.yaml");
  }
  const gc = await client.getOrUndefined<KubeObject>(
    { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
    { name: "cilium" },
  );
  const gcConditions =
    (gc?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
  if (gc && !gcConditions.some((c) => c.type === "Accepted" && c.status === "True")) {
    await client.patchStatus(
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
      { name: "cilium" },
      {
        conditions: [
          {
            type: "Accepted",
            status: "True",
            reason: "Accepted",
            message: "accepted by the cilium-operator stand-in",
            observedGeneration: gc.metadata?.generation,
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        ],
      },
    );
  }
  if (await exists(client, "apps/v1", "Deployment", { namespace: "crossplane-system", name: "crossplane" })) {
    await applyCrdFile(client, "pkg.crossplane.io_providers.yaml");
  }
}

/** Runs stand-in rounds until stopped; errors of one round are retried in the next. */
export function startStandIns(client: KubeClient): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await standInRound(client).catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}
