// The ClusterCache against a second real control plane: a management-cluster controller watches objects
// of a workload cluster reached through a kubeconfig Secret; the connection is torn down when the
// Secret changes, when the cluster stops answering, and when the Secret is deleted.
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/runtime/client.ts";
import { ClusterNotConnectedError } from "../../src/runtime/cluster-cache.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { Manager } from "../../src/runtime/manager.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { adminClient, CONFIGMAP, eventually, freshNamespace } from "./support.ts";

const SECRET = { apiVersion: "v1", kind: "Secret" } as const;
const b64 = (s: string) => Buffer.from(s).toString("base64");

let workload: ControlPlane;
let proxy: FaultProxy;
let admin: KubeClient;
let remote: KubeClient;
let ns: string;
const REMOTE_NS = "apps";

beforeAll(async () => {
  admin = adminClient();
  workload = await startControlPlane({ name: "workload", controllers: ["namespace-controller"] });
  remote = new KubeClient(workload.kubeConfig());
  await remote.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: REMOTE_NS } });
  proxy = await startFaultProxy(workload.kubeConfig());
  ns = await freshNamespace(admin, "clustercache");
});
afterAll(async () => {
  await proxy?.close();
  await workload?.stop();
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: ns }, { ignoreNotFound: true });
});

const remoteCm = (name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: REMOTE_NS, labels: { app: "demo" } },
});

describe("ClusterCache", () => {
  it("connects from a kubeconfig Secret, maps remote events to the owner's key, and tears down on change, health failure and deletion", async () => {
    // The "cluster" object in the management cluster is a ConfigMap named wl; its kubeconfig Secret is
    // wl-kubeconfig (Cluster API's naming), first with the workload's own TLS kubeconfig under `value`.
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "wl-kubeconfig", namespace: ns },
      data: { value: b64(await readFile(workload.kubeconfigPath, "utf8")) },
    });
    const teardowns: { cluster: string; reason: string }[] = [];
    const reconciles: { key: string; remote: string[] }[] = [];
    const failures: string[] = [];
    const manager = new Manager({
      kubeConfig: admin.kubeConfig,
      namespace: ns,
      logger: createLogger({ level: "error" }),
      watchBackoff: { initialMs: 100, maxMs: 500 },
      clusterCache: {
        healthCheckIntervalMs: 300,
        healthCheckTimeoutMs: 1_000,
        failureThreshold: 3,
        onTeardown: (cluster, reason) => teardowns.push({ cluster, reason }),
      },
    });
    manager.addController({
      name: "remote-apps",
      for: CONFIGMAP,
      backoff: { baseMs: 100, maxMs: 1_000 },
      reconcile: async (req, ctx) => {
        if (req.name !== "wl") return;
        try {
          await ctx.clusters.watch(
            { namespace: ns, name: "wl" },
            {
              name: "apps",
              gvk: CONFIGMAP,
              namespace: REMOTE_NS,
              labelSelector: "app=demo",
              map: () => [req.key],
              owners: [req.key],
            },
            ctx.signal,
          );
        } catch (err) {
          failures.push(err instanceof ClusterNotConnectedError ? "not connected" : String(err));
          throw err;
        }
        const access = await ctx.clusters.get({ namespace: ns, name: "wl" });
        const names = access.cache
          .list(CONFIGMAP, REMOTE_NS)
          .map((o) => o.metadata!.name!)
          .sort();
        reconciles.push({ key: req.key, remote: names });
      },
    });
    await manager.start();
    const lastRemote = () => reconciles.at(-1)?.remote ?? [];
    try {
      await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "wl", namespace: ns } });
      await eventually("the first connection", () => manager.clusters.connected().includes(`${ns}/wl`));

      // A remote create wakes the management-cluster owner, whose reconcile reads it from the remote cache.
      await remote.create(remoteCm("one"));
      await eventually("the owner to see the remote object", () => lastRemote().includes("one"));
      expect(new Set(reconciles.map((r) => r.key))).toEqual(new Set([`${ns}/wl`]));
      // Objects outside the watch's selector are not cached.
      await remote.create({ ...remoteCm("other"), metadata: { name: "other", namespace: REMOTE_NS } });
      await remote.create(remoteCm("two"));
      await eventually("the second remote object", () => lastRemote().includes("two"));
      expect(lastRemote()).toEqual(["one", "two"]);

      // New content (now through the fault proxy, under the `kubeconfig` key): torn down, then rebuilt
      // by the owner's reconcile, which the teardown woke.
      await admin.replace({
        ...(await admin.get(SECRET, { namespace: ns, name: "wl-kubeconfig" })),
        data: { kubeconfig: b64(proxy.kubeConfig().exportConfig()) },
      });
      await eventually("a teardown for the changed Secret", () =>
        teardowns.some((t) => t.reason === "kubeconfig Secret changed"),
      );
      await eventually("a connection through the proxy", () =>
        proxy.watchRequests.some((w) => w.path === `/api/v1/namespaces/${REMOTE_NS}/configmaps`),
      );
      await eventually("connected again", () => manager.clusters.connected().includes(`${ns}/wl`));

      // The workload API becomes unreachable: after 3 failed probes the connection is torn down.
      const before = teardowns.length;
      proxy.cut();
      await eventually(
        "a teardown for failed health checks",
        () => teardowns.slice(before).some((t) => t.reason.startsWith("unhealthy")),
        20_000,
      );
      expect(manager.clusters.connected()).toEqual([]);
      await eventually("the owner to fail to reconnect while it is down", () =>
        failures.includes("not connected"),
      );
      proxy.restore();
      await eventually("reconnected after the cluster came back", () =>
        manager.clusters.connected().includes(`${ns}/wl`),
      );
      await remote.create(remoteCm("three"));
      await eventually("remote events flow again", () => lastRemote().includes("three"));

      // The Secret goes away: torn down, and not rebuilt.
      await admin.delete(SECRET, { namespace: ns, name: "wl-kubeconfig" });
      await eventually("a teardown for the deleted Secret", () =>
        teardowns.some((t) => t.reason === "kubeconfig Secret deleted"),
      );
      const failed = failures.length;
      await eventually("the owner's reconcile to fail without a Secret", () => failures.length > failed);
      expect(manager.clusters.connected()).toEqual([]);
      expect(teardowns.every((t) => t.cluster === `${ns}/wl`)).toBe(true);
    } finally {
      await manager.stop();
    }
  });
});
