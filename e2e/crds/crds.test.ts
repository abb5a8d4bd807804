// The four CRDs on a real kube-apiserver: they install, accept the seed's own manifests, reject broken
// objects with messages a user can act on, teach through `kubectl explain`, and print useful columns.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { TENANT_LABEL } from "../../src/controllers/peer-tenant/labels.ts";
import { type ExampleDocument, example, loadExamples } from "../../src/crds/examples.ts";
import { KINDS } from "../../src/crds/index.ts";
import { CRDInstallError, describeApiError, installCRDs } from "../../src/crds/install.ts";
import { INVALID_CASES } from "../../src/crds/invalid-objects.ts";
import { defineKind } from "../../src/crds/kind.ts";
import { withRules } from "../../src/crds/rules.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";

const run = promisify(execFile);
const KUBECTL = "/usr/bin/kubectl";

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(KUBECTL, ["--kubeconfig", kubeconfigPath(), ...args]);
  return stdout;
}

/** The apiserver's message when `action` is refused; fails the test when it succeeds. */
async function rejection(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (error) {
    return describeApiError(error);
  }
  throw new Error("the apiserver accepted the object");
}

async function eventually<T>(what: string, attempt: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${describeApiError(error)}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

let kc: KubeConfig;
let objects: KubernetesObjectApi;
const created: KubernetesObject[] = [];
const createdNamespaces: string[] = [];
const examples = loadExamples();

/**
 * Namespaces of the PeerTenant examples, labelled as the operator would: an AppVending is admitted only in a
 * tenant's namespace, and the operator's cluster-wide admission policies outlive other test files on the
 * shared control plane (this file checks the schemas, not those policies).
 */
const tenantOfNamespace = new Map(
  examples
    .filter((d) => d.object.kind === "PeerTenant")
    .map((d) => {
      const tenant = d.object.metadata.name;
      const primary = (d.object as { spec?: { namespaces?: { primary?: string } } }).spec?.namespaces
        ?.primary;
      return [primary ?? `peers-${tenant}`, tenant] as const;
    }),
);

async function ensureNamespace(name: string) {
  const core = kc.makeApiClient(CoreV1Api);
  const tenant = tenantOfNamespace.get(name);
  try {
    await core.createNamespace({
      body: { metadata: { name, ...(tenant ? { labels: { [TENANT_LABEL]: tenant } } : {}) } },
    });
    createdNamespaces.push(name);
  } catch (error) {
    if (!describeApiError(error).includes("already exists")) throw error;
  }
}

beforeAll(async () => {
  kc = adminKubeConfig();
  objects = KubernetesObjectApi.makeApiClient(kc);
  await installCRDs(kc);
  const namespaces = new Set(
    examples.flatMap((d) => (d.object.metadata.namespace ? [d.object.metadata.namespace] : [])),
  );
  for (const ns of namespaces) await ensureNamespace(ns);
});

afterAll(async () => {
  for (const object of created.reverse()) {
    await objects.delete(object).catch(() => undefined);
  }
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of createdNamespaces) await core.deleteNamespace({ name }).catch(() => undefined);
});

describe("installation", () => {
  it.each(KINDS.map((k) => [k.crdName, k] as const))(
    "%s is Established with its names and scope",
    async (_, kind) => {
      const crd = await kc
        .makeApiClient(ApiextensionsV1Api)
        .readCustomResourceDefinition({ name: kind.crdName });
      expect(crd.status?.conditions?.find((c) => c.type === "Established")?.status).toBe("True");
      expect(crd.spec.scope).toBe(kind.scope);
      expect(crd.spec.names.shortNames).toEqual([kind.shortName]);
      expect(crd.spec.names.categories).toEqual(["homelab"]);
      expect(crd.spec.versions[0]?.subresources?.status).toEqual({});
    },
  );

  it("installing again is a no-op that succeeds", async () => {
    await installCRDs(kc);
  });

  it("every kind is in API discovery when installCRDs returns", async () => {
    const list = await kc
      .makeApiClient(CustomObjectsApi)
      .getAPIResources({ group: "homelab.shdr.ch", version: "v1alpha1" });
    const served = list.resources.filter((r) => !r.name.includes("/"));
    expect(served.map((r) => r.name).sort()).toEqual(KINDS.map((k) => k.plural).sort());
    expect(served.find((r) => r.name === "homelabclusters")?.namespaced).toBe(false);
    expect(served.find((r) => r.name === "appvendings")?.namespaced).toBe(true);
  });

  it("a CRD the apiserver refuses fails with a typed error carrying its reason", async () => {
    const broken = defineKind({
      kind: "BrokenThing",
      plural: "brokenthings",
      shortName: "bt",
      scope: "Cluster",
      description: "A kind whose CEL rule does not compile.",
      spec: withRules(z.object({ a: z.number().describe("A number.") }).describe("Spec."), [
        { rule: "self.a >", message: "never compiles", check: () => true },
      ]),
      status: z.object({}).describe("Status."),
      printerColumns: [],
    });
    const error = await installCRDs(kc, { kinds: [broken] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CRDInstallError);
    expect((error as CRDInstallError).crd).toBe("brokenthings.homelab.shdr.ch");
    expect((error as Error).message).toContain("compilation failed");
  });
});

describe("every file in examples/ is accepted", () => {
  it.each(examples.map((d) => [`${d.file}: ${d.object.kind}/${d.object.metadata.name}`, d] as const))(
    "%s",
    async (_, d: ExampleDocument) => {
      const object = structuredClone(d.object) as KubernetesObject;
      const stored = await objects.create(object);
      created.push(object);
      expect(stored.metadata?.uid).toBeTruthy();
    },
  );

  it("stores the defaults the schema declares", async () => {
    const hc = (await objects.read({
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "HomelabCluster",
      metadata: { name: "k8s" },
    })) as KubernetesObject & { spec: { talos: { imageFactory: string }; deletionPolicy: string } };
    expect(hc.spec.talos.imageFactory).toBe("https://factory.talos.dev");
    expect(hc.spec.deletionPolicy).toBe("Retain");
  });
});

describe("invalid objects are rejected with messages a user understands", () => {
  it("the table has at least 20 cases", () => {
    expect(INVALID_CASES.length).toBeGreaterThanOrEqual(20);
  });

  const cases = INVALID_CASES.map((c, index) => [c.name, c, index] as const);
  it.each(cases)("%s", async (_, c, index) => {
    const broken = c.base();
    if (c.operation === "create") {
      c.mutate(broken);
      const message = await rejection(async () => {
        const stored = await objects.create(broken as KubernetesObject);
        created.push(stored);
      });
      expect(message).toContain(c.apiMessage);
      return;
    }
    // Transition rules: create a valid object, then change it.
    broken.metadata.name = `update-case-${index}`;
    if (broken.spec?.kubernetes?.clusterName !== undefined)
      broken.spec.kubernetes.clusterName = `update-case-${index}`;
    const stored = (await objects.create(broken as KubernetesObject)) as KubernetesObject &
      Record<string, unknown>;
    created.push(stored);
    const changed = structuredClone(stored);
    c.mutate(changed);
    const message = await rejection(() => objects.replace(changed));
    expect(message).toContain(c.apiMessage);
  });
});

describe("updates within the rules are accepted", () => {
  // biome-ignore lint/suspicious/noExplicitAny: the stored object is edited freely before it is sent back.
  type Loose = any;
  const updates: [string, (o: Loose) => void][] = [
    ["a Kubernetes patch upgrade", (o) => (o.spec.kubernetes.version = "v1.34.2")],
    ["a Kubernetes minor upgrade", (o) => (o.spec.kubernetes.version = "v1.35.0")],
    ["a Talos upgrade", (o) => (o.spec.talos.version = "v1.11.5")],
    [
      "adding a worker node",
      (o) =>
        o.spec.nodes.push({
          name: "talos-smith",
          vmid: 1033,
          proxmoxNode: "smith",
          role: "worker",
          cores: 4,
          memoryMiB: 8192,
          diskGiB: 100,
          ip: "10.0.3.20",
        }),
    ],
    ["resizing a node", (o) => (o.spec.nodes[0].memoryMiB = 24576)],
  ];
  it.each(updates.map(([name, mutate], index) => [name, mutate, index] as const))(
    "%s",
    async (_, mutate, index) => {
      const base: Loose = example("HomelabCluster", "k8s");
      base.metadata.name = `valid-update-${index}`;
      base.spec.kubernetes.clusterName = `valid-update-${index}`;
      const stored = await objects.create(base as KubernetesObject);
      created.push(stored);
      const changed = structuredClone(stored) as Loose;
      mutate(changed);
      await objects.replace(changed);
    },
  );
});

describe("kubectl", () => {
  it("explain homelabcluster.spec.nodes prints the field descriptions", async () => {
    const out = await eventually("kubectl explain", () => kubectl("explain", "homelabcluster.spec.nodes"));
    expect(out).toContain("The cluster's VMs, keyed by name");
    expect(out).toContain("Proxmox VM id (100 to 999999999)");
    expect(out).toContain("Static IPv4 address of the node inside network.subnet");
  });

  it("get homelab -A lists all four kinds through their category", async () => {
    const out = await kubectl("get", "homelab", "-A", "-o", "name");
    for (const prefix of ["homelabcluster", "peertenant", "appvending", "workloadmigration"]) {
      expect(out).toContain(`${prefix}.homelab.shdr.ch/`);
    }
  });

  it("explain peertenant.spec.quota teaches the quota fields", async () => {
    const out = await eventually("kubectl explain", () => kubectl("explain", "peertenant.spec.quota"));
    expect(out).toContain("ResourceQuota hard limits for each namespace");
  });

  it("get hc,pt,av,wm -A shows the printer columns and status values", async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.patchClusterCustomObjectStatus(
      {
        group: "homelab.shdr.ch",
        version: "v1alpha1",
        plural: "homelabclusters",
        name: "k8s",
        body: {
          status: {
            observedGeneration: 1,
            phase: "Ready",
            endpoint: "https://10.0.3.16:6443",
            talosVersion: "v1.11.0",
            kubernetesVersion: "v1.34.1",
            nodesReady: "3/3",
            conditions: [
              {
                type: "Ready",
                status: "True",
                observedGeneration: 1,
                lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
                reason: "ClusterHealthy",
                message: "3 of 3 nodes ready",
              },
            ],
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const out = await kubectl("get", "hc,pt,av,wm", "-A");
    const header = (line: string) => line.trim().split(/\s{2,}/);
    const lines = out.split("\n");
    const headers = lines.filter((l) => l.startsWith("NAME") || l.startsWith("NAMESPACE")).map(header);
    expect(headers).toContainEqual([
      "NAME",
      "READY",
      "PHASE",
      "ENDPOINT",
      "TALOS",
      "KUBERNETES",
      "NODES READY",
      "AGE",
    ]);
    expect(headers).toContainEqual(["NAME", "READY", "NAMESPACES", "MAX", "POD SECURITY", "AGE"]);
    expect(headers).toContainEqual(["NAMESPACE", "NAME", "READY", "URL", "AGE"]);
    expect(headers).toContainEqual(["NAMESPACE", "NAME", "PHASE", "READY", "VM", "NODE", "RAM FREED", "AGE"]);
    const hcRow = lines.find((l) => l.startsWith("homelabcluster.homelab.shdr.ch/k8s "));
    expect(hcRow && header(hcRow).slice(0, 7)).toEqual([
      "homelabcluster.homelab.shdr.ch/k8s",
      "True",
      "Ready",
      "https://10.0.3.16:6443",
      "v1.11.0",
      "v1.34.1",
      "3/3",
    ]);
    expect(out).toMatch(/infra\s+workloadmigration\.homelab\.shdr\.ch\/ups-stack\s+1010\s+niobe/);
  });
});
