// kill -9 the operator at 20 random moments while it provisions the seed's cluster, restarting it each
// time; at the end the simulators' own records must show exactly 3 VMs, one image download and one etcd
// bootstrap, and the cluster Ready.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PHASE_CONDITIONS } from "../../src/controllers/homelab-cluster/controller.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import type { KubeClient } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { type Homelab, startHomelab } from "./homelab.ts";
import {
  conditionOf,
  HC,
  type OperatorProcess,
  prepareCluster,
  removeCluster,
  removeCredentials,
  seedCluster,
  startOperator,
  waitCondition,
} from "./operator.ts";

let homelab: Homelab;
let client: KubeClient;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  // Slow enough that provisioning spans the 20 runs (each ~3–5 s: process start, cache sync, up to
  // 1.5 s of work): a 30 s image download and a 25 s install reboot, as on a small real homelab.
  homelab = await startHomelab({
    taskDurationMs: { default: 2_000, qmcreate: 8_000, download: 30_000, resize: 3_000 },
    rebootDelayMs: 25_000,
  });
  client = await prepareCluster(adminKubeConfig(), homelab);
}, 600_000);

afterAll(async () => {
  if (client && operator) await removeCluster(client).catch(() => {});
  await operator?.kill();
  if (client) await removeCredentials(client);
  await homelab?.stop();
});

/** Index in PHASE_CONDITIONS of the first phase not yet True (its length once all are). */
async function phaseIndex(): Promise<number> {
  const hc = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(HC, {
    name: "k8s",
  });
  const conds = hc.status?.conditions ?? [];
  const i = PHASE_CONDITIONS.findIndex((t) => conds.find((c) => c.type === t)?.status !== "True");
  return i === -1 ? PHASE_CONDITIONS.length : i;
}

describe("HomelabCluster crash safety", () => {
  it("converges with no duplicate VM, download or bootstrap after 20 kill -9s", async () => {
    await client.create(seedCluster(homelab));
    const phases: string[] = [];
    for (let i = 0; i < 20; i++) {
      const healthPort = await freePort();
      operator = startOperator(homelab, { HEALTH_PORT: String(healthPort) });
      // From the moment it reconciles (caches synced), kill somewhere in the next 1.5 s.
      await waitFor(
        "the operator to be ready",
        async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok,
        60_000,
        50,
      );
      // Kills walk through the slow phases (Validated … TalosConfigured): the i-th waits (up to 10 s)
      // until provisioning has reached phase i·5/20, then lands within 0.5 s. Spread by progress, not by
      // wall time, so a slow machine still kills in several phases instead of 20 times in the first one.
      const target = Math.floor((i * 5) / 20);
      await waitFor(
        "provisioning to reach the next phase to kill in",
        async () => (await phaseIndex()) >= target,
        10_000,
        50,
      ).catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.random() * 500));
      await operator.kill("SIGKILL");
      // Where it was: the first phase condition not yet True.
      phases.push(PHASE_CONDITIONS[await phaseIndex()] ?? "Ready");
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
    expect(killedBeforeReady, phases.join(",")).toBeGreaterThanOrEqual(15);
    expect(new Set(phases).size, phases.join(",")).toBeGreaterThanOrEqual(3);
    console.log(`kill -9 landed in phases: ${phases.join(", ")}`);
  }, 400_000);
});
