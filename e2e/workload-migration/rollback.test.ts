// Rollback from every step before retirement: seven migrations of the UPS stack's shape are each held at
// one step (by the real scheduler, a failing check, a missing approval, or what the spec leaves out),
// rolled back there, and must end with the VM running under HA "started", no route, every target at
// zero replicas, and nothing deleted. Judged from the Proxmox simulator and the workload cluster.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import {
  CLUSTER,
  createSourceVm,
  DEPLOYMENT,
  type MigrationEnv,
  NAMESPACE,
  OPERATOR_NAMESPACE,
  ROUTE,
  startMigrationEnv,
  upsMigration,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, type Status, type StatusOptions } from "./status.ts";

let env: MigrationEnv;
beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig());
}, 180_000);
afterAll(async () => {
  await env?.stop();
});

/** This suite's waits: "<name> <what>", and "last status" without a colon in a timeout's message. */
const WAITS: StatusOptions = {
  timeoutMs: 120_000,
  intervalMs: 250,
  label: (name, what) => `${name} ${what}`,
  lastStatus: "last status ",
};
const { statusOf, waitStatus } = migrationStatus(() => env, WAITS);

type Spec = Record<string, unknown> & {
  targets: { template: Record<string, unknown> }[];
  verify: { timeout: string; checks: { http: { url: string } }[] };
  cutover: { mode: string };
  decommission: Record<string, unknown>;
};

/** Each case: how the spec holds the migration at a step, and how the status shows it is held there. */
const CASES: {
  step: string;
  vmid: number;
  hold: (spec: Spec, checksUrl: string) => void;
  held: (s: Status) => boolean;
  cutOver: boolean;
}[] = [
  {
    step: "deploying (a target no node can fit)",
    vmid: 1201,
    hold: (spec) => {
      spec.targets[0]!.template["resources"] = { requests: { cpu: "64" } };
    },
    held: (s) => cond(s, "Deployed")?.reason === "TargetsNotReady",
    cutOver: false,
  },
  {
    step: "verifying (a check keeps failing)",
    vmid: 1202,
    hold: (spec, checksUrl) => {
      spec.verify.timeout = "10m";
      spec.verify.checks[0]!.http.url = `${checksUrl}/broken`;
    },
    held: (s) => cond(s, "Verified")?.reason === "ChecksFailing",
    cutOver: false,
  },
  {
    step: "a failed verification (phase Failed)",
    vmid: 1207,
    hold: (spec, checksUrl) => {
      spec.verify.timeout = "2s";
      spec.verify.checks[0]!.http.url = `${checksUrl}/broken`;
    },
    held: (s) => s.phase === "Failed" && cond(s, "Verified")?.reason === "DeadlineExceeded",
    cutOver: false,
  },
  {
    step: "awaiting the cutover approval",
    vmid: 1203,
    hold: (spec) => {
      spec.cutover.mode = "Manual";
    },
    held: (s) => cond(s, "CutOver")?.reason === "AwaitingApproval",
    cutOver: false,
  },
  {
    step: "cut over, VM still running",
    vmid: 1204,
    hold: (spec) => {
      spec.decommission = { stopVM: false, requireApproval: true };
    },
    held: (s) => cond(s, "VMStopped")?.reason === "NotRequested",
    cutOver: true,
  },
  {
    step: "VM stopped",
    vmid: 1205,
    hold: (spec) => {
      spec.decommission = { stopVM: true, requireApproval: true };
    },
    held: (s) => cond(s, "VMStopped")?.status === "True" && cond(s, "BackedUp")?.reason === "NotRequested",
    cutOver: true,
  },
  {
    step: "backed up, awaiting the retirement approval",
    vmid: 1206,
    hold: () => {},
    held: (s) => cond(s, "Retired")?.reason === "AwaitingApproval",
    cutOver: true,
  },
];

describe("WorkloadMigration rollback", () => {
  it.concurrent.each(CASES.map((c) => [c.step, c] as const))(
    "from %s: VM running (HA started), no route, targets at zero, nothing deleted",
    async (_, c) => {
      const name = `rb-${c.vmid}`;
      await createSourceVm(env.proxmox, {
        vmid: c.vmid,
        name,
        node: "niobe",
        memoryMiB: 1024,
        diskGiB: 8,
        ha: true,
      });
      const wm = upsMigration(name, { vmid: c.vmid, name }, env);
      c.hold(wm.spec as Spec, env.checksUrl);
      await env.admin.create(wm);
      await waitStatus(name, `held ${c.step}`, c.held);
      // Held there, not just passing through: a second look a moment later finds the same.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(c.held(await statusOf(name))).toBe(true);
      expect(Boolean((await statusOf(name)).cutoverTime)).toBe(c.cutOver);

      await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
      const done = await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack");
      expect(cond(done, "RolledBack")?.status).toBe("True");
      const vm = await env.proxmox.locateVm(c.vmid);
      expect(vm?.status).toBe("running");
      expect(vm?.hastate).toBe("started");
      for (const t of ["nut", "peanut"]) {
        const d = await env.workload.get<KubeObject>(DEPLOYMENT, {
          namespace: NAMESPACE,
          name: `${name}-${t}`,
        });
        expect((d.spec as { replicas: number }).replicas).toBe(0);
      }
      expect(
        await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: `${name}-peanut` }),
      ).toBeUndefined();
      expect(done.rollbackMessage).toContain(`VM ${c.vmid} running`);
      const records = env.sim.records().filter((r) => r.vmid === c.vmid);
      expect(records.filter((r) => r.kind === "vm-delete")).toEqual([]);
      // A VM that was never stopped is not started again: one start (the test's own) in the record.
      const starts = records.filter((r) => r.kind === "power" && r.action === "start");
      const shutdowns = records.filter((r) => r.kind === "power" && r.action === "shutdown");
      expect(starts).toHaveLength(1 + shutdowns.length);
    },
    200_000,
  );
});

describe("WorkloadMigration taken up again after a rollback", () => {
  const CUTOVER = "homelab.shdr.ch/approve-cutover";
  const RETIRE = "homelab.shdr.ch/approve-retirement";
  const annotate = (name: string, annotations: Record<string, string | null>) =>
    env.admin.patch(WM, { namespace: NAMESPACE, name }, { metadata: { annotations } }, "merge");
  const { waitStatus } = migrationStatus(() => env, { ...WAITS, timeoutMs: 150_000 });

  it("after a rollback that followed the backup: verifies again, wants fresh approvals, backs up again before deleting", async () => {
    const vmid = 1208;
    const name = "rb-resume";
    await createSourceVm(env.proxmox, { vmid, name, node: "niobe", memoryMiB: 1024, diskGiB: 8, ha: true });
    const wm = upsMigration(name, { vmid, name }, env);
    const spec = wm.spec as Spec;
    spec.cutover.mode = "Manual";
    // Long enough to roll back inside the grace period, with the retirement approval already given.
    spec.decommission["deleteAfter"] = "40s";
    wm.metadata!.annotations = { [CUTOVER]: "true", [RETIRE]: "true" };
    await env.admin.create(wm);
    const first = await waitStatus(name, "backed up", (s) => cond(s, "BackedUp")?.status === "True");
    expect(cond(first, "Retired")?.reason).toBe("GracePeriod");
    const firstBackup = String(first["backupVolumeID"]);

    await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
    const rolled = await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack");
    expect((await env.proxmox.locateVm(vmid))?.status).toBe("running");
    for (const gone of [
      "verifiedTime",
      "cutoverTime",
      "deleteAfterTime",
      "stoppedTime",
      "backupVolumeID",
      "verifyPasses",
      "approvedBy",
    ])
      expect(rolled[gone], gone).toBeUndefined();
    const rolledBackTime = Date.parse(String(rolled["rolledBackTime"]));
    expect(rolled["staleApprovals"]).toEqual([CUTOVER, RETIRE]);
    // The stateful-writes note is kept on later passes, not lost with the cutover time.
    expect(rolled.rollbackMessage).toContain(`VM ${vmid} running`);

    // Taken up again, the annotations left as they were: the old cutover approval does not count.
    await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: null } }, "merge");
    const held = await waitStatus(name, "awaiting a fresh cutover approval", (s) =>
      Boolean(cond(s, "CutOver")?.reason === "AwaitingApproval" && s["verifiedTime"]),
    );
    expect(Date.parse(String(held["verifiedTime"]))).toBeGreaterThan(rolledBackTime);
    expect(cond(held, "CutOver")?.status).toBe("False");
    expect(held.cutoverTime).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(
      await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: `${name}-peanut` }),
    ).toBeUndefined();
    expect((await env.proxmox.locateVm(vmid))?.status).toBe("running");
    // Dependents see a rolled-back migration as not cut over.
    expect((await statusOf(name)).cutoverTime).toBeUndefined();

    // Removed, seen removed, set again: now it counts.
    await annotate(name, { [CUTOVER]: null });
    await waitStatus(
      name,
      "cutover approval forgotten",
      (s) => !(s["staleApprovals"] as string[] | undefined)?.includes(CUTOVER),
    );
    await annotate(name, { [CUTOVER]: "true" });
    const second = await waitStatus(name, "backed up again", (s) => cond(s, "BackedUp")?.status === "True");
    expect(Date.parse(String(second.cutoverTime))).toBeGreaterThan(rolledBackTime);
    expect(second["backupVolumeID"]).not.toBe(firstBackup);
    const backups = env.sim.records().filter((r) => r.vmid === vmid && r.kind === "backup");
    expect(backups).toHaveLength(2);
    expect(backups[1]!.at).toBeGreaterThan(rolledBackTime);

    // Past the new grace period the old retirement approval still does not count: nothing deleted.
    const awaiting = await waitStatus(
      name,
      "awaiting a fresh retirement approval",
      (s) => cond(s, "Retired")?.reason === "AwaitingApproval",
    );
    expect(cond(awaiting, "Retired")?.message).toContain("no longer counts");
    await new Promise((r) => setTimeout(r, 1_500));
    expect(env.sim.records().filter((r) => r.vmid === vmid && r.kind === "vm-delete")).toEqual([]);
    expect(await env.proxmox.locateVm(vmid)).toBeDefined();

    await annotate(name, { [RETIRE]: null });
    await waitStatus(name, "retirement approval forgotten", (s) => !s["staleApprovals"]);
    await annotate(name, { [RETIRE]: "true" });
    const retired = await waitStatus(name, "retired", (s) => s.phase === "Decommissioned");
    expect(cond(retired, "Retired")?.status).toBe("True");
    expect(await env.proxmox.locateVm(vmid)).toBeUndefined();
  }, 300_000);
});

describe("WorkloadMigration rollback while the target cluster cannot be reached", () => {
  it("says so (TargetsNotWithdrawn) and leaves the VM stopped until the routes and targets are withdrawn", async () => {
    const name = "rb-unreachable";
    const vmid = 1208;
    await createSourceVm(env.proxmox, { vmid, name, node: "niobe", memoryMiB: 1024, diskGiB: 8, ha: true });
    const wm = upsMigration(name, { vmid, name }, env);
    (wm.spec as Spec).decommission = { stopVM: true, requireApproval: true };
    await env.admin.create(wm);
    await waitStatus(name, "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    const starts = () =>
      env.sim.records().filter((r) => r.vmid === vmid && r.kind === "power" && r.action === "start").length;
    const startsBefore = starts();
    const SECRET = { apiVersion: "v1", kind: "Secret" } as const;
    const key = { namespace: OPERATOR_NAMESPACE, name: `${CLUSTER}-kubeconfig` };
    const real = await env.admin.get<KubeObject & { data: Record<string, string> }>(SECRET, key);
    const kubeconfig = Buffer.from(real.data["value"]!, "base64").toString();
    // The workload cluster's address swapped for a port nothing listens on (as when that cluster is down).
    const dead = kubeconfig.replace(/server: \S+/g, "server: https://127.0.0.1:9");
    expect(dead).not.toBe(kubeconfig);
    await env.admin.apply({ ...SECRET, metadata: key, type: "Opaque", stringData: { value: dead } });
    try {
      await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
      const held = await waitStatus(
        name,
        "held",
        (s) => cond(s, "RolledBack")?.reason === "TargetsNotWithdrawn",
      );
      expect(cond(held, "RolledBack")?.status).toBe("False");
      expect(cond(held, "RolledBack")?.message).toContain("the VM is left as it is");
      await new Promise((r) => setTimeout(r, 3_000));
      // Still stopped, and never asked to start: the route may still be live in that cluster.
      expect((await env.proxmox.locateVm(vmid))?.status).toBe("stopped");
      expect(starts()).toBe(startsBefore);
    } finally {
      await env.admin.apply({ ...SECRET, metadata: key, type: "Opaque", stringData: { value: kubeconfig } });
    }
    // The cluster back: routes withdrawn, targets at zero, then the VM started.
    await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack", 180_000);
    expect((await env.proxmox.locateVm(vmid))?.status).toBe("running");
    expect(
      await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: `${name}-peanut` }),
    ).toBeUndefined();
    const d = await env.workload.get<KubeObject>(DEPLOYMENT, {
      namespace: NAMESPACE,
      name: `${name}-peanut`,
    });
    expect((d.spec as { replicas: number }).replicas).toBe(0);
  }, 300_000);
});
