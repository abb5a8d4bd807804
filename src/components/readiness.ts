// Readiness as the component's own API reports it, never Helm's `--wait`: a release can be "deployed"
// while its pods crash, and --wait cannot tell a Crossplane package or a KnativeServing apart.
import type { KubeClient } from "../runtime/client.ts";
import type { KubeObject } from "../runtime/object.ts";

export type ReadinessCheck =
  | { kind: "crdsEstablished"; names: string[] }
  | {
      kind: "rollout";
      apiVersion: string;
      resource: "Deployment" | "DaemonSet";
      namespace: string;
      name: string;
    }
  | { kind: "packageHealthy"; name: string }
  | { kind: "gatewayClassAccepted"; name: string }
  | {
      kind: "conditionTrue";
      apiVersion: string;
      resource: string;
      namespace: string;
      name: string;
      condition: string;
    };

interface Condition {
  type: string;
  status: string;
  observedGeneration?: number;
}

function conditions(obj: KubeObject | undefined): Condition[] {
  const c = (obj?.status as { conditions?: Condition[] } | undefined)?.conditions;
  return Array.isArray(c) ? c : [];
}

function conditionIs(obj: KubeObject | undefined, type: string, status = "True"): boolean {
  return conditions(obj).some((c) => c.type === type && c.status === status);
}

/**
 * kubectl rollout status's rule: the controller has seen the newest generation, and every replica is
 * updated and available (DaemonSets: every scheduled pod updated and available).
 */
export function rolloutComplete(obj: KubeObject): { done: boolean; why: string } {
  const status = (obj.status ?? {}) as Record<string, number | undefined>;
  const generation = obj.metadata?.generation ?? 0;
  if ((status.observedGeneration ?? 0) < generation) {
    return { done: false, why: "its controller has not observed the newest generation" };
  }
  if (obj.kind === "DaemonSet") {
    const want = status.desiredNumberScheduled ?? 0;
    const updated = status.updatedNumberScheduled ?? 0;
    const available = status.numberAvailable ?? 0;
    if (want === 0) return { done: false, why: "no node runs it yet" };
    if (updated < want || available < want) {
      return { done: false, why: `${Math.min(updated, available)}/${want} pods updated and available` };
    }
    return { done: true, why: "" };
  }
  const want = ((obj.spec as { replicas?: number } | undefined)?.replicas ?? 1) as number;
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  if (updated < want || available < want || total > updated) {
    return { done: false, why: `${Math.min(updated, available)}/${want} replicas updated and available` };
  }
  return { done: true, why: "" };
}

/** Undefined when ready, else what it waits for (one sentence, for the component's Condition). */
export async function firstUnready(
  client: KubeClient,
  checks: ReadinessCheck[],
): Promise<string | undefined> {
  for (const check of checks) {
    const why = await checkOne(client, check);
    if (why) return why;
  }
  return undefined;
}

async function checkOne(client: KubeClient, check: ReadinessCheck): Promise<string | undefined> {
  switch (check.kind) {
    case "crdsEstablished": {
      for (const name of check.names) {
        const crd = await client.getOrUndefined(
          { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
          { name },
        );
        if (!crd) return `CRD ${name} does not exist`;
        if (!conditionIs(crd, "Established")) return `CRD ${name} is not Established`;
      }
      return undefined;
    }
    case "rollout": {
      const obj = await client.getOrUndefined(
        { apiVersion: check.apiVersion, kind: check.resource },
        { namespace: check.namespace, name: check.name },
      );
      if (!obj) return `${check.resource} ${check.namespace}/${check.name} does not exist`;
      const r = rolloutComplete(obj);
      return r.done ? undefined : `${check.resource} ${check.namespace}/${check.name}: ${r.why}`;
    }
    case "packageHealthy": {
      const pkg = await client.getOrUndefined(
        { apiVersion: "pkg.crossplane.io/v1", kind: "Provider" },
        { name: check.name },
      );
      if (!pkg) return `Crossplane Provider ${check.name} does not exist`;
      if (!conditionIs(pkg, "Installed")) return `Crossplane Provider ${check.name} is not Installed`;
      if (!conditionIs(pkg, "Healthy")) return `Crossplane Provider ${check.name} is not Healthy`;
      return undefined;
    }
    case "gatewayClassAccepted": {
      const gc = await client.getOrUndefined(
        { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass" },
        { name: check.name },
      );
      if (!gc) return `GatewayClass ${check.name} does not exist`;
      if (!conditionIs(gc, "Accepted")) return `GatewayClass ${check.name} is not Accepted`;
      return undefined;
    }
    case "conditionTrue": {
      const obj = await client.getOrUndefined(
        { apiVersion: check.apiVersion, kind: check.resource },
        { namespace: check.namespace, name: check.name },
      );
      if (!obj) return `${check.resource} ${check.namespace}/${check.name} does not exist`;
      if (!conditionIs(obj, check.condition)) {
        return `${check.resource} ${check.namespace}/${check.name} is not ${check.condition}`;
      }
      return undefined;
    }
  }
}
