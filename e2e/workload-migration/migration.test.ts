// WorkloadMigration on the real control plane and the Proxmox simulator: the UPS stack from start to
// retired, judged from the simulator's own records (what Proxmox was asked to do, and when), plus the
// ways a migration must stop short: failed checks, rollback, and VMs it must never touch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import {
  CLUSTER,
  createSourceVm,
  DEPLOYMENT,
  type MigrationEnv,
  NAMESPACE,
  provideVolume,
  ROUTE,
  startMigrationEnv,
  upsMigration,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, simRecords } from "./status.ts";

let env: MigrationEnv;
beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig());
}, 120_000);
afterAll(async () => {
  await env?.stop();
});

const { statusOf, waitStatus } = migrationStatus(() => env, {
  timeoutMs: Number(process.env.WM_WAIT_MS ?? 90_000),
  intervalMs: 200,
});
const { recordsOf } = simRecords(() => env);
const routeOf = (name: string) => env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name });
const vmOf = (vmid: number) => env.proxmox.locateVm(vmid);

describe("WorkloadMigration", () => {
  it("moves the UPS stack: stops the VM only after verification and cutover, deletes it only after a verified backup and the approval", async () => {
    const vm = { vmid: 1010, name: "ups-stack", node: "niobe", memoryMiB: 1024, diskGiB: 8, ha: true };
    await createSourceVm(env.proxmox, vm);
    await env.admin.create(upsMigration("ups-stack", vm, env));

    // Before the approval it goes as far as a verified backup and stops there; the VM still exists.
    const waiting = await waitStatus(
      "ups-stack",
      "backed up and waiting for the approval",
      (s) => cond(s, "Retired")?.reason === "AwaitingApproval",
    );
    expect(waiting.phase).toBe("BackedUp");
    expect(cond(waiting, "Verified")?.status).toBe("True");
    expect(cond(waiting, "BackedUp")?.status).toBe("True");
    expect(String(waiting["backupVolumeID"])).toMatch(/^pbs:backup\/vzdump-qemu-1010-/);
    const stopped = await vmOf(1010);
    expect(stopped?.status).toBe("stopped");
    expect(stopped?.hastate).toBe("stopped"); // HA will not start it again
    const route = await routeOf("ups-stack-peanut");
    expect((route?.spec as { hostnames?: string[] })?.hostnames).toEqual(["ups-stack.apps.home.shdr.ch"]);
    const backups = await env.proxmox.storageContent("niobe", "pbs", { content: "backup", vmid: 1010 });
    expect(backups.map((b) => b.volid)).toEqual([waiting["backupVolumeID"]]);
    expect(recordsOf(1010).filter((r) => r.kind === "vm-delete")).toEqual([]);

    // The approval, set by a named field manager (as `kubectl annotate --field-manager` would).
    const approvedAt = Date.now();
    await env.admin.apply(
      {
        ...WM,
        metadata: {
          name: "ups-stack",
          namespace: NAMESPACE,
          annotations: { "homelab.shdr.ch/approve-retirement": "true" },
        },
      },
      { fieldManager: "alice-approver", force: false },
    );
    const retired = await waitStatus("ups-stack", "retired", (s) => s.phase === "Decommissioned");
    expect(cond(retired, "Retired")?.status).toBe("True");
    expect(cond(retired, "Ready")?.status).toBe("True");
    expect(String(retired["approvedBy"])).toContain("alice-approver");
    expect(retired["ramFreedMiB"]).toBe(1024);
    expect(retired["diskFreedGiB"]).toBe(8);
    expect(await vmOf(1010)).toBeUndefined();
    expect((await env.proxmox.listHaResources()).map((r) => r.sid)).not.toContain("vm:1010");

    // The simulator's record, in order: one stop after verification and cutover, one backup after the
    // stop, one delete after the backup succeeded and after the approval.
    const records = recordsOf(1010).filter(
      (r) => r.kind !== "vm-create" && !(r.kind === "power" && r.action === "start"),
    );
    expect(records.map((r) => `${r.kind}${r.action ? `:${r.action}` : ""}:${r.exitstatus}`)).toEqual([
      "power:shutdown:OK",
      "backup:OK",
      "vm-delete:OK",
    ]);
    const [stop, backup, del] = records as [(typeof records)[0], (typeof records)[0], (typeof records)[0]];
    expect(stop.at).toBeGreaterThanOrEqual(Date.parse(String(retired["verifiedTime"])));
    expect(stop.at).toBeGreaterThanOrEqual(Date.parse(String(retired["cutoverTime"])));
    expect(backup.at).toBeGreaterThan(stop.at);
    expect(del.at).toBeGreaterThan(backup.at);
    expect(del.at).toBeGreaterThanOrEqual(approvedAt);
  }, 180_000);

  it("stops at a failed verification: no route, and the VM keeps running, untouched", async () => {
    const vm = { vmid: 1011, name: "ups-failing", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    const wm = upsMigration("ups-failing", vm, env);
    const spec = wm.spec as { verify: { timeout: string; checks: { http: { url: string } }[] } };
    spec.verify.timeout = "3s";
    spec.verify.checks[0]!.http.url = `${env.checksUrl}/broken`;
    await env.admin.create(wm);
    const failed = await waitStatus("ups-failing", "failed", (s) => s.phase === "Failed");
    expect(cond(failed, "Verified")).toMatchObject({ status: "False", reason: "DeadlineExceeded" });
    expect(cond(failed, "Verified")?.message).toContain("answered 500");
    // Still so a while later: a failed migration does not retry on its own.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await statusOf("ups-failing")).phase).toBe("Failed");
    expect(cond(await statusOf("ups-failing"), "CutOver")).toBeUndefined();
    expect((await vmOf(1011))?.status).toBe("running");
    expect(await routeOf("ups-failing-peanut")).toBeUndefined();
    expect(recordsOf(1011).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
  }, 120_000);

  it("creates nothing when the API server refuses one target (dry run first): phase Failed, VM untouched", async () => {
    const vm = { vmid: 1016, name: "ups-refused", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    const wm = upsMigration("ups-refused", vm, env);
    // Valid for the CRD, refused by the API server's Deployment validation: a request above its limit.
    const targets = (wm.spec as { targets: { template: Record<string, unknown> }[] }).targets;
    targets[1]!.template["resources"] = { requests: { cpu: "2" }, limits: { cpu: "1" } };
    await env.admin.create(wm);
    const failed = await waitStatus("ups-refused", "refused", (s) => s.phase === "Failed");
    expect(cond(failed, "Deployed")).toMatchObject({ status: "False", reason: "TargetRefused" });
    expect(cond(failed, "Deployed")?.message).toContain("must be less than or equal to cpu limit");
    // The valid first target was not created either.
    for (const name of ["ups-refused-nut", "ups-refused-peanut"])
      expect(await env.workload.getOrUndefined(DEPLOYMENT, { namespace: NAMESPACE, name })).toBeUndefined();
    expect((await vmOf(1016))?.status).toBe("running");
    expect(recordsOf(1016).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
    // Rolled back from there: nothing to scale down, and nothing created by the rollback either.
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ups-refused" },
      { spec: { rollback: true } },
      "merge",
    );
    await waitStatus("ups-refused", "rolled back", (s) => s.phase === "RolledBack");
    for (const name of ["ups-refused-nut", "ups-refused-peanut"])
      expect(await env.workload.getOrUndefined(DEPLOYMENT, { namespace: NAMESPACE, name })).toBeUndefined();
  }, 120_000);

  it("rolls back after the VM was stopped: VM running again, no route, targets at zero replicas", async () => {
    const vm = { vmid: 1012, name: "ups-rollback", node: "trinity", memoryMiB: 2048, diskGiB: 8, ha: true };
    await createSourceVm(env.proxmox, vm);
    // No backup and no deletion: the migration stops once the VM is stopped.
    await env.admin.create(
      upsMigration("ups-rollback", vm, env, {
        spec: { decommission: { stopVM: true, requireApproval: true } },
      }),
    );
    await waitStatus("ups-rollback", "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    expect((await vmOf(1012))?.status).toBe("stopped");
    expect(await routeOf("ups-rollback-peanut")).toBeDefined();

    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ups-rollback" },
      { spec: { rollback: true } },
      "merge",
    );
    const rolledBack = await waitStatus("ups-rollback", "rolled back", (s) => s.phase === "RolledBack");
    expect(cond(rolledBack, "RolledBack")?.status).toBe("True");
    const live = await vmOf(1012);
    expect(live?.status).toBe("running");
    expect(live?.hastate).toBe("started");
    expect(await routeOf("ups-rollback-peanut")).toBeUndefined();
    for (const name of ["ups-rollback-nut", "ups-rollback-peanut"]) {
      const d = await env.workload.get<KubeObject>(DEPLOYMENT, { namespace: NAMESPACE, name });
      expect((d.spec as { replicas: number }).replicas).toBe(0);
    }
    expect(String(rolledBack["rollbackMessage"])).toContain("VM 1012 running");
    expect(recordsOf(1012).filter((r) => r.kind === "vm-delete" || r.kind === "backup")).toEqual([]);
  }, 120_000);

  it("says plainly that a stateful target's writes after cutover stay in the cluster", async () => {
    const vm = { vmid: 1015, name: "stateful", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    const wm = upsMigration("stateful", vm, env, {
      spec: { decommission: { stopVM: true, requireApproval: true } },
    });
    const targets = (wm.spec as { targets: { template: Record<string, unknown> }[] }).targets;
    targets[1]!.template["volumes"] = [{ name: "data", mountPath: "/data", size: "1Gi" }];
    await provideVolume(env.workload, "stateful-peanut-data");
    await env.admin.create(wm);
    await waitStatus("stateful", "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "stateful" },
      { spec: { rollback: true } },
      "merge",
    );
    const s = await waitStatus("stateful", "rolled back", (x) => x.phase === "RolledBack");
    expect(String(s["rollbackMessage"])).toMatch(/stateful-peanut are stateful .* NOT on the VM/);
  }, 120_000);

  it("runs a new workload without a VM (the Nuclei CronJob): no Proxmox connection needed", async () => {
    await env.admin.create({
      ...WM,
      metadata: { name: "nuclei", namespace: NAMESPACE },
      spec: {
        clusterRef: { name: CLUSTER },
        targets: [
          {
            name: "nuclei",
            kind: "CronJob",
            template: { image: "projectdiscovery/nuclei:v3.4.10", schedule: "0 3 * * 1" },
          },
        ],
        cutover: { mode: "Automatic" },
      },
    });
    const s = await waitStatus("nuclei", "live", (x) => cond(x, "Ready")?.status === "True");
    expect(s.phase).toBe("CutOver");
    const cron = await env.workload.get<KubeObject>(
      { apiVersion: "batch/v1", kind: "CronJob" },
      { namespace: NAMESPACE, name: "nuclei" },
    );
    expect((cron.spec as { schedule: string; suspend: boolean }).schedule).toBe("0 3 * * 1");
    expect(cond(s, "SourceVerified")).toBeUndefined();
  }, 60_000);

  it("refuses a HomelabCluster's own VM and a VM whose name does not match, touching neither", async () => {
    await createSourceVm(env.proxmox, {
      vmid: 1013,
      name: "talos-niobe",
      node: "niobe",
      memoryMiB: 4096,
      diskGiB: 10,
      tags: ["homelab-operator", "homelab-cluster.k8s", "homelab-node.talos-niobe"],
    });
    await createSourceVm(env.proxmox, {
      vmid: 1014,
      name: "gitlab",
      node: "trinity",
      memoryMiB: 8192,
      diskGiB: 10,
    });
    await env.admin.create(upsMigration("cluster-vm", { vmid: 1013, name: "talos-niobe" }, env));
    await env.admin.create(upsMigration("wrong-name", { vmid: 1014, name: "ups-stack-2" }, env));
    const a = await waitStatus("cluster-vm", "refused", (s) => s.phase === "Failed");
    const b = await waitStatus("wrong-name", "refused", (s) => s.phase === "Failed");
    expect(cond(a, "SourceVerified")).toMatchObject({ status: "False", reason: "BelongsToCluster" });
    expect(cond(b, "SourceVerified")).toMatchObject({ status: "False", reason: "NameMismatch" });
    for (const vmid of [1013, 1014]) {
      expect((await vmOf(vmid))?.status).toBe("running");
      expect(recordsOf(vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
    }
    // Refused before anything was deployed.
    for (const name of ["cluster-vm-nut", "wrong-name-nut"])
      expect(await env.workload.getOrUndefined(DEPLOYMENT, { namespace: NAMESPACE, name })).toBeUndefined();
  }, 120_000);
});
