// kill -9 the operator at 20 random moments while it provisions the seed's cluster, restarting it each
// time; at the end the simulators' own records must show exactly 3 VMs, one image download and one etcd
// bootstrap, and the cluster Ready.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { type Homelab, startHomelab } from "./homelab.ts";
import {
  conditionOf,
  HC,
  type OperatorProcess,
  prepareCluster,
  removeCluster,
  seedCluster,
  startOperator,
  waitCondition,
} from "./operator.ts";

let homelab: Homelab;
let client: KubeClient;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  // Slow enough that provisioning spans the 20 runs: tasks take as long as small real ones.
  homelab = await startHomelab(adminKubeConfig(), {
    taskDurationMs: { default: 400, qmcreate: 1_500, download: 3_000 },
    rebootDelayMs: 1_500,
  });
  client = await prepareCluster(adminKubeConfig(), homelab);
});

afterAll(async () => {
  if (client && operator) await removeCluster(client).catch(() => {});
  await operator?.kill();
  await homelab?.stop();
});

describe("HomelabCluster crash safety", () => {
  it("converges with no duplicate VM, download or bootstrap after 20 kill -9s", async () => {
    await client.create(seedCluster(homelab));
    const phases: string[] = [];
    for (let i = 0; i < 20; i++) {
      operator = startOperator(homelab);
      // Process start and cache sync take about a second; kill somewhere in the second after that.
      await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 1_200));
      await operator.kill("SIGKILL");
      const hc = await client.get<{ status?: { phase?: string } }>(HC, { name: "k8s" });
      phases.push(hc.status?.phase ?? "-");
    }
    const killedBeforeReady = phases.filter((p) => p !== "Ready").length;
    operator = startOperator(homelab);
    await waitCondition(client, "k8s", "Ready", (c) => c.status === "True", 150_000).catch(
      async (err: unknown) => {
        const hc = await client.get<{ status?: unknown }>(HC, { name: "k8s" });
        throw new Error(
          `${(err as Error).message}\n${JSON.stringify(hc.status, null, 1)}\n${operator?.output().slice(-3000)}`,
        );
      },
    );

    expect(homelab.proxmox.cluster.vms.size).toBe(3);
    expect(homelab.vmCreates()).toBe(3);
    expect(homelab.downloads()).toBe(1);
    expect(homelab.bootstrapCalls()).toBe(1);
    expect((await conditionOf(client, "k8s", "KubernetesHealthy"))?.status).toBe("True");
    // Most kills must have landed during provisioning, or the test proves little.
    expect(killedBeforeReady, phases.join(",")).toBeGreaterThanOrEqual(12);
    console.log(`kill -9 landed in phases: ${phases.join(", ")}`);
  }, 400_000);
});
