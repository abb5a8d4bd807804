// kill -9 the operator at 14 random moments while it moves the UPS stack from start to retired,
// restarting it each time. Proxmox tasks are slow enough (shutdown 4 s, vzdump 5 s, destroy 4 s) that
// kills land while they run, and the kills are spread by the migration's progress. At the end the
// simulator's own record must show exactly one shutdown, one vzdump and one delete, in that order, one
// backup archive, and the migration Decommissioned with what it freed.
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/control-plane/ports.ts";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import {
  createSourceVm,
  type MigrationEnv,
  NAMESPACE,
  ROUTE,
  startMigrationEnv,
  upsMigration,
} from "./operator.ts";
import { migrationStatus, type Status } from "./status.ts";

/** The step conditions in order; progress is the index of the first not yet True. */
const STEPS = ["Deployed", "DataSynced", "Verified", "CutOver", "VMStopped", "BackedUp", "Retired"];
const KILLS = 14;
const VM = { vmid: 1301, name: "ups-crash", node: "niobe", memoryMiB: 1024, diskGiB: 8, ha: true };

let env: MigrationEnv;
let operator: { child: ChildProcess; exited: Promise<unknown> } | undefined;

function startOperator(healthPort: number) {
  const child = spawn(process.execPath, ["e2e/workload-migration/operator-main.ts"], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath(),
      HEALTH_PORT: String(healthPort),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return { child, exited: new Promise((r) => child.once("exit", r)) };
}

async function kill(): Promise<void> {
  if (!operator || operator.child.exitCode !== null || operator.child.signalCode !== null) return;
  operator.child.kill("SIGKILL");
  await operator.exited;
}

beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig(), {
    inProcess: false,
    taskDurationMs: { default: 300, qmshutdown: 4_000, vzdump: 5_000, qmdestroy: 4_000 },
  });
}, 180_000);
afterAll(async () => {
  await kill();
  await env?.stop();
});

const migration = migrationStatus(() => env);
const statusOf = (): Promise<Status> => migration.statusOf(VM.name);
const progress = (s: Status) => {
  const i = STEPS.findIndex((t) => s.conditions?.find((c) => c.type === t)?.status !== "True");
  return s.phase === "Decommissioned" ? STEPS.length : i === -1 ? STEPS.length : i;
};

describe("WorkloadMigration crash safety", () => {
  it(`retires the VM once, after one shutdown and one backup, through ${KILLS} kill -9s`, async () => {
    await createSourceVm(env.proxmox, VM);
    const wm = upsMigration(VM.name, VM, env, {
      spec: {
        decommission: { stopVM: true, backup: { storage: "pbs" }, deleteAfter: "3s", requireApproval: true },
      },
    });
    // Approved up front: retirement still waits for the verified backup and the grace period.
    wm.metadata!.annotations = { "homelab.shdr.ch/approve-retirement": "true" };
    (wm.spec as { verify: { successThreshold: number } }).verify.successThreshold = 3;
    await env.admin.create(wm);

    const killedAt: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const port = await freePort();
      operator = startOperator(port);
      await waitFor(
        "the operator to be ready",
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
        60_000,
        50,
      );
      // The i-th kill waits (up to 25 s: verification needs three passes after a restart on a loaded
      // machine) for the migration to reach step i/2, then lands within 1.5 s.
      const target = Math.floor((i * STEPS.length) / KILLS);
      await waitFor(
        "the next step to kill in",
        async () => progress(await statusOf()) >= target,
        25_000,
        50,
      ).catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.random() * 1_500));
      await kill();
      const s = await statusOf();
      killedAt.push(STEPS[progress(s)] ?? "Decommissioned");
    }

    const port = await freePort();
    operator = startOperator(port);
    let last: Status = {};
    await waitFor(
      "retired after the kills",
      async () => {
        last = await statusOf();
        return last.phase === "Decommissioned";
      },
      150_000,
      250,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; killed at ${killedAt.join(", ")}; last status ${JSON.stringify(last)}`,
      );
    });
    // Killed in several steps, not all in one (the record of where is the failure's first clue).
    expect(new Set(killedAt).size, killedAt.join(", ")).toBeGreaterThanOrEqual(3);

    const records = env.sim
      .records()
      .filter(
        (r) => r.vmid === VM.vmid && r.kind !== "vm-create" && !(r.kind === "power" && r.action === "start"),
      );
    expect(records.map((r) => `${r.kind}${r.action ? `:${r.action}` : ""}:${r.exitstatus}`)).toEqual([
      "power:shutdown:OK",
      "backup:OK",
      "vm-delete:OK",
    ]);
    const [stop, backup, del] = records as [(typeof records)[0], (typeof records)[0], (typeof records)[0]];
    expect(stop.at).toBeGreaterThanOrEqual(Date.parse(String(last["verifiedTime"])));
    expect(backup.at).toBeGreaterThan(stop.at);
    expect(del.at).toBeGreaterThan(backup.at);
    const archives = await env.proxmox.storageContent("niobe", "pbs", { content: "backup", vmid: VM.vmid });
    expect(archives.map((a) => a.volid)).toEqual([last["backupVolumeID"]]);
    expect(await env.proxmox.locateVm(VM.vmid)).toBeUndefined();
    expect((await env.proxmox.listHaResources()).map((r) => r.sid)).not.toContain(`vm:${VM.vmid}`);
    expect(last["ramFreedMiB"]).toBe(1024);
    expect(last["diskFreedGiB"]).toBe(8);
    const routes = await env.workload.list<KubeObject>(ROUTE, { namespace: NAMESPACE });
    expect(routes.items.map((r) => r.metadata?.name)).toEqual([`${VM.name}-peanut`]);
  }, 600_000);
});
