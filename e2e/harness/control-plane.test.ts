// Proves the harness gives a real cluster's behaviour: the admission chain, the namespace and garbage
// collection controllers, RBAC for authenticated users, independent control planes, and clean teardown.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { startControlPlane } from "./control-plane.ts";
import { adminKubeConfig, impersonating } from "./test-cluster.ts";
import { statusMessage, statusOf, waitFor } from "./wait.ts";

const core = () => adminKubeConfig().makeApiClient(CoreV1Api);

function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

describe("the shared control plane", () => {
  it("rejects a pod over quota through the real admission chain", async () => {
    const api = core();
    const ns = uniqueName("quota");
    await api.createNamespace({ body: { metadata: { name: ns } } });
    await api.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: "q" }, spec: { hard: { "requests.memory": "1Gi", pods: "5" } } },
    });
    // The quota controller must have computed usage before admission will charge against it.
    await waitFor("quota status", async () => {
      const q = await api.readNamespacedResourceQuota({ name: "q", namespace: ns });
      return q.status?.hard ? q : undefined;
    });
    await waitFor("default service account", () =>
      api.readNamespacedServiceAccount({ name: "default", namespace: ns }),
    );
    const pod = (memory: string) => ({
      metadata: { name: uniqueName("p") },
      spec: {
        containers: [{ name: "c", image: "registry.example/app:1", resources: { requests: { memory } } }],
      },
    });
    const err = await api.createNamespacedPod({ namespace: ns, body: pod("2Gi") }).catch((e: unknown) => e);
    expect(statusOf(err)).toBe(403);
    expect(statusMessage(err)).toMatch(/exceeded quota/);
    await expect(api.createNamespacedPod({ namespace: ns, body: pod("512Mi") })).resolves.toBeDefined();
  });

  it("finalizes a deleted namespace and garbage-collects owner-referenced objects", async () => {
    const api = core();
    const ns = uniqueName("gc");
    await api.createNamespace({ body: { metadata: { name: ns } } });
    const owner = await api.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "owner" }, data: { a: "1" } },
    });
    await api.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: "dependent",
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    await api.deleteNamespacedConfigMap({ name: "owner", namespace: ns });
    await waitFor("dependent ConfigMap to be garbage-collected", async () => {
      const err = await api
        .readNamespacedConfigMap({ name: "dependent", namespace: ns })
        .catch((e: unknown) => e);
      return statusOf(err) === 404 ? true : undefined;
    });

    await api.deleteNamespace({ name: ns });
    await waitFor("namespace to be finalized and removed", async () => {
      const err = await api.readNamespace({ name: ns }).catch((e: unknown) => e);
      return statusOf(err) === 404 ? true : undefined;
    });
  });

  it("forbids alice from listing secrets until a RoleBinding allows it", async () => {
    const ns = uniqueName("rbac");
    await core().createNamespace({ body: { metadata: { name: ns } } });
    const alice = (await impersonating("alice", ["peers-alice"])).makeApiClient(CoreV1Api);
    const denied = await alice.listNamespacedSecret({ namespace: ns }).catch((e: unknown) => e);
    expect(statusOf(denied)).toBe(403);
    expect(statusMessage(denied)).toMatch(/User "alice" cannot list resource "secrets"/);

    await adminKubeConfig()
      .makeApiClient(RbacAuthorizationV1Api)
      .createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: "peers-alice-view-secrets" },
          // The built-in aggregated `edit` role includes secrets: it only has rules once the
          // clusterrole-aggregation controller has run, which this also proves.
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "peers-alice" }],
        },
      });
    const list = await waitFor(
      "alice to be allowed",
      () => alice.listNamespacedSecret({ namespace: ns }),
      10_000,
    );
    expect(list.items).toEqual([]);
  });
});

describe("private control planes", () => {
  it("runs two independent control planes at once and removes each completely", async () => {
    const [management, workload] = await Promise.all([
      startControlPlane({ name: "management" }),
      startControlPlane({ name: "workload" }),
    ]);
    try {
      expect(management.server).not.toBe(workload.server);
      await management
        .kubeConfig()
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: "only-here" } } });
      const err = await workload
        .kubeConfig()
        .makeApiClient(CoreV1Api)
        .readNamespace({ name: "only-here" })
        .catch((e: unknown) => e);
      expect(statusOf(err)).toBe(404);
    } finally {
      await Promise.all([management.stop(), workload.stop()]);
    }
    expect(existsSync(management.dir)).toBe(false);
    expect(existsSync(workload.dir)).toBe(false);
  });

  it("a kept folder resumes the same cluster, and is refused to a second owner while in use", async () => {
    const dir = await mkdtemp(join(tmpdir(), "homelab-cp-kept-"));
    try {
      const first = await startControlPlane({ name: "kept", dir });
      const ca = readFileSync(first.pki.caCert, "utf8");
      try {
        await first
          .kubeConfig()
          .makeApiClient(CoreV1Api)
          .createNamespace({ body: { metadata: { name: "kept-ns" } } });
        await expect(startControlPlane({ name: "kept", dir })).rejects.toThrow(/is in use by process/);
      } finally {
        await first.stop();
      }
      expect(existsSync(join(dir, "etcd"))).toBe(true);
      const again = await startControlPlane({ name: "kept", dir });
      try {
        expect(readFileSync(again.pki.caCert, "utf8")).toBe(ca);
        const ns = await again.kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: "kept-ns" });
        expect(ns.metadata?.name).toBe("kept-ns");
      } finally {
        await again.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function startOrphan() {
    const script = fileURLToPath(new URL("./fixtures/start-and-report.ts", import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    const report = await new Promise<{ dir: string; pids: number[] }>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve(JSON.parse(line));
      });
      child.on("exit", (code) => reject(new Error(`fixture exited early with ${code}`)));
    });
    expect(report.pids).toHaveLength(3);
    return { child, report };
  }

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  for (const signal of ["SIGKILL", "SIGINT"] as const) {
    it(`leaves no process or folder behind when its owner gets ${signal}`, async () => {
      const { child, report } = await startOrphan();
      child.kill(signal);
      await waitFor(
        "the folder to be removed and etcd, apiserver and controller-manager to be gone",
        async () => (!existsSync(report.dir) && report.pids.every((p) => !alive(p)) ? true : undefined),
        15_000,
      );
    });
  }
});
