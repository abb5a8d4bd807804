import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PHASE_CONDITIONS } from "../../src/controllers/homelab-cluster/controller.ts";
import { ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { SEED_VMS } from "../../src/local/seed-vms.ts";
import type { SimRecord } from "../../src/proxmox/simulator/cluster.ts";
import type { SimTask } from "../../src/proxmox/simulator/tasks.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import type { SimulatorState as TalosState } from "../../src/talos/simulator/simulator.ts";
import { waitFor } from "../harness/wait.ts";
import { type LocalProcess, managementCluster, removeLocal, startLocal } from "./local-process.ts";
import { seedProxmox } from "./seed-proxmox.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Hc extends KubeObject {
  status?: {
    phase?: string;
    nodesReady?: string;
    conditions?: Condition[];
    nodes?: { name: string; ready?: boolean; talosMode?: string; kubeletVersion?: string }[];
  };
}

const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };
const TIMEOUT = 600_000;

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;

const condition = (hc: Hc | undefined, type: string) => hc?.status?.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  await ensureKwokBinary();
  dataHome = await mkdtemp(join(tmpdir(), "homelab-local-hc-kill-e2e-"));
  stateDir = join(dataHome, "homelab-operator", "local");
}, 1_200_000);

afterAll(async () => {
  await removeLocal(local, stateDir, dataHome);
});

/** Index in PHASE_CONDITIONS of the first phase not yet True (its length once all are). */
async function phaseIndex(kube: KubeClient): Promise<number> {
  const conds = (await kube.getOrUndefined<Hc>(HC, { name: "k8s" }))?.status?.conditions ?? [];
  const i = PHASE_CONDITIONS.findIndex((t) => conds.find((c) => c.type === t)?.status !== "True");
  return i === -1 ? PHASE_CONDITIONS.length : i;
}

/** The Proxmox simulator's records of `kind` whose task ended OK, from its state file. */
function succeeded(kind: SimRecord["kind"]): SimRecord[] {
  const saved = JSON.parse(
    readFileSync(join(stateDir, "simulators", "proxmox", "proxmox-simulator.json"), "utf8"),
  ) as { records: SimRecord[]; tasks: { tasks: SimTask[] } };
  const exit = new Map(saved.tasks.tasks.map((t) => [t.upid, t.exitstatus]));
  return saved.records.filter((r) => r.kind === kind && exit.get(r.upid) === "OK");
}

describe("local mode: npm start killed while the seed's HomelabCluster provisions", () => {
  it("SIGKILL in every phase provisioning reaches, started again each time: 3 VMs, 1 image, 1 bootstrap", async () => {
    local = await startLocal(dataHome);
    const { run } = await managementCluster(local);
    await run("create", "namespace", "infra");
    await run("apply", "-f", "examples/").catch(() => {});

    // The phase each kill found the cluster in (read just before the kill: the management cluster
    // goes down with the process). The first waits for Validated; each later one for progress past the
    // previous kill's phase, then kills at once, so the kills walk through provisioning phase by phase.
    const kills: string[] = [];
    const started = Date.now();
    const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
    let last = 0;
    for (;;) {
      const kube = new KubeClient(local.kubeConfig());
      const at = await waitFor(
        `provisioning past ${PHASE_CONDITIONS[last]}`,
        async () => {
          const i = await phaseIndex(kube);
          return i > last ? i : undefined;
        },
        TIMEOUT,
        100,
      );
      if (at >= PHASE_CONDITIONS.length) break;
      local.child.kill("SIGKILL");
      await local.exited;
      kills.push(`${PHASE_CONDITIONS[at]} (${elapsed()})`);
      last = at;
      local = await startLocal(dataHome);
    }
    const kube = new KubeClient(local.kubeConfig());
    const healthy = await waitFor(
      "hc/k8s KubernetesHealthy after the restarts",
      async () => {
        const hc = await kube.getOrUndefined<Hc>(HC, { name: "k8s" });
        return condition(hc, "KubernetesHealthy")?.status === "True" ? hc : undefined;
      },
      TIMEOUT,
      1_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${kills.join("\n")}\n${local?.output().slice(-6000)}`);
    });
    expect(condition(healthy, "Ready")?.status).toBe("True");
    console.log(`npm start SIGKILLed in: ${kills.join(", ")}; healthy after ${elapsed()}`);
    // Killed in the image, VM, Talos and bootstrap stretches at least, or the test proves little.
    expect(kills.length, kills.join(",")).toBeGreaterThanOrEqual(4);

    // Counted by the simulators themselves, from the records they keep with the local state.
    // The seed's VMs that local mode's Proxmox starts with (seed-vms.ts) are not the cluster's.
    const seedIds = new Set(SEED_VMS.map((v) => v.vmid));
    const creates = succeeded("vm-create").filter((r) => r.vmid === undefined || !seedIds.has(r.vmid));
    expect(creates.map((r) => r.vmid).sort()).toEqual([...new Set(creates.map((r) => r.vmid))].sort());
    expect(creates).toHaveLength(3);
    expect(succeeded("vm-delete")).toEqual([]);
    // The seed's container template (seed-vms.ts) is downloaded once with the fresh state, not by the cluster.
    const downloads = succeeded("download").filter((d) => !d.volid?.includes(":vztmpl/"));
    expect(downloads).toHaveLength(1);
    expect(downloads[0]?.volid).toContain("talos-v1.11.0");
    const talos = JSON.parse(readFileSync(join(stateDir, "simulators", "talos.json"), "utf8")) as TalosState;
    const bootstraps = Object.values(talos.etcd).flatMap((e) => e.bootstraps ?? []);
    expect(bootstraps.map((b) => [b.nodeName, b.accepted])).toEqual([["talos-trinity", true]]);

    // And as Proxmox answers through the seed's address.
    const proxmox = await seedProxmox(kube);
    try {
      const vms = await proxmox.listVms();
      // The cluster's three, beside the seed's VMs that local mode's Proxmox starts with (seed-vms.ts).
      expect(vms.map((v) => v.name).sort()).toEqual(
        ["talos-neo", "talos-niobe", "talos-trinity", ...SEED_VMS.map((v) => v.name)].sort(),
      );
      const images = await proxmox.storageContent("trinity", "cephfs", { content: "import" });
      expect(images.filter((v) => v.volid.includes("talos-v1.11.0"))).toHaveLength(1);
    } finally {
      await proxmox.close();
    }
  }, 1_800_000);
});
