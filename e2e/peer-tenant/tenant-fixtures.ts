import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";

/** A suffix so tenants of this run never meet objects left by another suite (e.g. the examples' alice). */
export const RUN = Math.random().toString(36).slice(2, 6);

export interface TenantStatus {
  namespaces?: string[];
  quota?: { hard?: Record<string, string>; used?: Record<string, string> };
  conditions?: { type: string; status: string; reason: string; message: string }[];
  observedGeneration?: number;
}

export interface TenantObject {
  metadata: { name: string; generation?: number; finalizers?: string[] };
  spec: Record<string, unknown>;
  status?: TenantStatus;
}

const group = "homelab.shdr.ch";
const version = "v1alpha1";
const plural = "peertenants";

export function tenants(kc: KubeConfig) {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    create: (name: string, spec: Record<string, unknown>) =>
      api.createClusterCustomObject({
        group,
        version,
        plural,
        body: { apiVersion: `${group}/${version}`, kind: "PeerTenant", metadata: { name }, spec },
      }) as Promise<TenantObject>,
    get: (name: string) =>
      api.getClusterCustomObject({ group, version, plural, name }) as Promise<TenantObject>,
    patchSpec: (name: string, spec: Record<string, unknown>) =>
      new KubeClient(kc).patch(
        { apiVersion: `${group}/${version}`, kind: "PeerTenant" },
        { name },
        { spec },
        "merge",
      ),
    delete: (name: string) => api.deleteClusterCustomObject({ group, version, plural, name }),
  };
}

export function condition(t: TenantObject, type: string) {
  return t.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the tenant's Ready condition is True for its current generation. */
export async function waitReady(kc: KubeConfig, name: string, timeoutMs = 30_000): Promise<TenantObject> {
  return waitFor(
    `PeerTenant ${name} Ready`,
    async () => {
      const t = await tenants(kc).get(name);
      const ready = condition(t, "Ready");
      return ready?.status === "True" && t.status?.observedGeneration === t.metadata.generation
        ? t
        : undefined;
    },
    timeoutMs,
  );
}
