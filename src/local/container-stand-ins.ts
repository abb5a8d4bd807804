// What KWOK cannot do in local mode's workload cluster: run a container. Three of the platform charts'
// processes change the API when they start, and the components' readiness checks wait for exactly that:
// the Cilium agent registers its CRDs (the chart ships none), cilium-operator accepts the `cilium`
// GatewayClass, and Crossplane's init container installs its package CRDs. Each is done here only once a
// pod that would do it runs (KWOK's Running), with the same API calls; nothing here looks at releases,
// values or the operator's decisions. Crossplane's package manager is played from the same round
// (package-manager.ts).
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { KubeClient, KubeObject } from "../runtime/index.ts";
import { packageManagerRound } from "./package-manager.ts";
import { runRounds } from "./rounds.ts";

export const WORKLOAD_CRDS_DIR = fileURLToPath(new URL("./workload-crds/", import.meta.url));

export async function applyWorkloadCrd(client: KubeClient, file: string): Promise<void> {
  const crd = parse(await readFile(`${WORKLOAD_CRDS_DIR}${file}`, "utf8")) as KubeObject;
  await client.apply(crd, { force: true });
}

async function podRuns(client: KubeClient, namespace: string, labelSelector: string): Promise<boolean> {
  const pods = await client.list<KubeObject>({ apiVersion: "v1", kind: "Pod" }, { namespace, labelSelector });
  return pods.items.some((p) => (p.status as { phase?: string } | undefined)?.phase === "Running");
}

/** One round: what the running agent, operator and init container would have done by now. */
export async function containerStandInRound(client: KubeClient): Promise<void> {
  // The agent DaemonSet's label (also the CNI rule's, cni-readiness.ts).
  if (await podRuns(client, "kube-system", "k8s-app=cilium")) {
    await applyWorkloadCrd(client, "v2_ciliumloadbalancerippools.yaml");
    await applyWorkloadCrd(client, "v2alpha1_ciliuml2announcementpolicies.yaml");
  }
  const gc = await client.getOrUndefined<KubeObject>(
    { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
    { name: "cilium" },
  );
  const accepted = (
    (gc?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []
  ).some((c) => c.type === "Accepted" && c.status === "True");
  if (gc && !accepted && (await podRuns(client, "kube-system", "io.cilium/app=operator"))) {
    await client.patchStatus(
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
      { name: "cilium" },
      {
        conditions: [
          {
            type: "Accepted",
            status: "True",
            reason: "Accepted",
            message: "accepted by cilium-operator (local mode: played for the KWOK pod)",
            observedGeneration: gc.metadata?.generation,
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        ],
      },
    );
  }
  const crossplaneRuns = await podRuns(client, "crossplane-system", "app=crossplane");
  if (crossplaneRuns) {
    await applyWorkloadCrd(client, "pkg.crossplane.io_providers.yaml");
  }
  await packageManagerRound(client, crossplaneRuns);
}

/** Rounds every `intervalMs` until stopped; a failed round is retried in the next. */
export function watchContainerStandIns(
  client: KubeClient,
  onError: (err: unknown) => void,
  intervalMs = 1_000,
): { stop(): Promise<void> } {
  return runRounds(() => containerStandInRound(client), onError, intervalMs);
}
