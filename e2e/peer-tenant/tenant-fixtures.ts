import { readFileSync } from "node:fs";
import { CustomObjectsApi, type KubeConfig, type V1Pod, type V1PodSpec } from "@kubernetes/client-node";
import { expect } from "vitest";
import { parse } from "yaml";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { statusMessage, statusOf, waitFor } from "../harness/wait.ts";

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

/** A pod that passes Pod Security "restricted" and carries the required owner label. */
export function compliantPod(
  name: string,
  memory = "128Mi",
  labels: Record<string, string> = { owner: "alice" },
): V1Pod & { spec: V1PodSpec } {
  return {
    metadata: { name, labels },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "app",
          image: "registry.example/app:1",
          imagePullPolicy: "Always",
          resources: { requests: { memory, cpu: "50m" }, limits: { memory, cpu: "100m" } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
}

export async function expectAllowed<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new Error(`${what} should be allowed but got ${statusOf(err)}: ${statusMessage(err)}`);
  }
}

export async function expectDenied(what: string, call: Promise<unknown>, message?: RegExp): Promise<void> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${what} should be denied`).toBeDefined();
  expect([403, 422], `${what}: ${statusMessage(err)}`).toContain(statusOf(err));
  if (message) expect(statusMessage(err), what).toMatch(message);
}

export function tenantSpec(owner: string, extra: Record<string, unknown> = {}) {
  return {
    owners: { users: [owner], groups: [`peers-${owner}`] },
    quota: { perNamespace: { "requests.memory": "4Gi", "limits.memory": "8Gi", pods: "20" } },
    limits: { defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } },
    network: { allowIngressFromNamespaces: ["ingress", "knative-serving"] },
    requiredLabels: ["owner"],
    ...extra,
  };
}

/** Installs an upstream CRD from fixtures/crds (verbatim copies) and waits until its kind is served. */
export async function installFixtureCrd(
  kc: KubeConfig,
  file: string,
): Promise<{ apiVersion: string; kind: string }> {
  const crd = parse(readFileSync(new URL(`./fixtures/crds/${file}`, import.meta.url), "utf8")) as {
    spec: { group: string; names: { kind: string }; versions: { name: string; storage: boolean }[] };
  } & KubeObject;
  const client = new KubeClient(kc);
  await client.apply(crd);
  const version = crd.spec.versions.find((v) => v.storage)!.name;
  const gvk = { apiVersion: `${crd.spec.group}/${version}`, kind: crd.spec.names.kind };
  await waitFor(`${gvk.kind} to be served`, () => client.resourceInfo(gvk), 30_000);
  return gvk;
}
