// Data sync as Jobs in the workload cluster, and the refusals that keep data safe. KWOK runs no
// containers, so what rsync would copy is never claimed here: what is checked is the Job the operator
// writes (its script, key, volumes), that the real job controller's verdict gates the migration, and
// the order the records show — targets at zero until the final sync succeeded, cutover after it, the VM
// stopped after cutover; a failed sync Job stops the migration with the VM serving, a failed backup
// stops it before any delete, and rollback after the final sync starts the VM's services again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SyncPhase, syncJobName } from "../../src/controllers/workload-migration/sync-jobs.ts";
import type { WorkloadMigration } from "../../src/crds/workload-migration.ts";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import {
  createSourceVm,
  DEPLOYMENT,
  JOB,
  type MigrationEnv,
  NAMESPACE,
  provideVolume,
  ROUTE,
  startMigrationEnv,
  upsMigration,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, simRecords } from "./status.ts";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";

interface Job extends KubeObject {
  spec: {
    activeDeadlineSeconds?: number;
    template: {
      spec: {
        containers: { image: string; command: string[]; env?: { name: string; value: string }[] }[];
        volumes: { secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string } }[];
      };
    };
  };
  status?: { completionTime?: string; conditions?: { type: string; status: string }[] };
}

let env: MigrationEnv;
beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig());
  await env.admin.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "vm-ssh", namespace: NAMESPACE },
    type: "kubernetes.io/ssh-auth",
    stringData: { "ssh-privatekey": KEY },
  });
}, 180_000);
afterAll(async () => {
  await env?.stop();
});

// "last status" without a colon in a timeout's message, as this suite has always written it.
const { statusOf, waitStatus } = migrationStatus(() => env, {
  timeoutMs: 120_000,
  intervalMs: 200,
  lastStatus: "last status ",
});
/** The migration's sync Job of `phase`, by the name the controller derives (it carries the uid's hash). */
const jobOf = async (migration: string, phase: SyncPhase) => {
  const wm = await env.admin.get<KubeObject>(WM, { namespace: NAMESPACE, name: migration });
  const name = syncJobName(wm as unknown as WorkloadMigration, phase);
  return env.workload.getOrUndefined<Job>(JOB, { namespace: NAMESPACE, name });
};
const complete = (j: Job | undefined) =>
  j?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True") ?? false;
const replicasOf = async (name: string) =>
  (await env.workload.getOrUndefined<KubeObject>(DEPLOYMENT, { namespace: NAMESPACE, name }))?.spec as
    | { replicas?: number }
    | undefined;
/** What Proxmox was asked about the VM beyond its creation and starts. */
const { changesOf: recordsOf } = simRecords(() => env);

/** A host key line as ssh-keyscan prints it (an ed25519 key made for this test, nothing else). */
const HOST_KEY = "10.0.2.20 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK5PuJdYCd7kCt2WyIm5u9mbwLNcB/ABTt3UorGnkbDy";

describe("WorkloadMigration data sync", () => {
  it("Rsync: a first and a final Job, targets at zero until the final one succeeded, cutover after it; rollback starts the VM's services again", async () => {
    const vm = { vmid: 1401, name: "ds-rsync", node: "neo", memoryMiB: 1024, diskGiB: 8, ha: true };
    await createSourceVm(env.proxmox, vm);
    await provideVolume(env.workload, "ds-rsync-peanut-data");
    const wm = upsMigration("ds-rsync", vm, env, { spec: { decommission: { stopVM: true } } });
    const spec = wm.spec as Record<string, unknown> & { targets: { template: Record<string, unknown> }[] };
    spec.targets[1]!.template["volumes"] = [{ name: "data", mountPath: "/data", size: "1Gi" }];
    spec["dataSync"] = {
      method: "Rsync",
      ssh: {
        host: "10.0.2.20",
        privateKeySecretRef: { name: "vm-ssh" },
        stopCommand: "systemctl stop peanut",
        startCommand: "systemctl start peanut",
        knownHosts: HOST_KEY,
      },
      paths: [{ from: "/srv/peanut", target: "ds-rsync-peanut", volume: "data" }],
    };
    await env.admin.create(wm);

    // Sampled all along: never a replica while the final Job has not succeeded.
    const samples: { replicas: number; finalDone: boolean }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [d, final] = await Promise.all([replicasOf("ds-rsync-peanut"), jobOf("ds-rsync", "final")]);
        if (d) samples.push({ replicas: d.replicas ?? 1, finalDone: complete(final) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const initial = await waitFor("the initial sync Job", () => jobOf("ds-rsync", "initial"), 60_000, 100);
    const script = initial.spec.template.spec.containers[0]!.command.join(" ");
    expect(initial.spec.template.spec.containers[0]!.image).toBe("instrumentisto/rsync-ssh:latest");
    expect(script).toContain(
      `rsync -aHAX --numeric-ids --delete -e "$SSH" 'root@10.0.2.20:/srv/peanut/' '/sync/ds-rsync-peanut/data/'`,
    );
    expect(script).not.toContain("systemctl stop peanut"); // the VM keeps serving during the first copy
    // The VM's pinned key, through the API server's validation into the Job: no other key is accepted.
    expect(script).toContain(`printf '%s\\n' '${HOST_KEY}' > /tmp/known_hosts`);
    expect(script).toContain("StrictHostKeyChecking=yes");
    expect(script).not.toContain("accept-new");
    const volumes = initial.spec.template.spec.volumes;
    expect(volumes.map((v) => v.persistentVolumeClaim?.claimName).filter(Boolean)).toEqual([
      "ds-rsync-peanut-data",
    ]);
    // The key reaches the workload cluster as a copy of the user's Secret, never in the Job's spec.
    const keySecret = volumes.find((v) => v.secret)!.secret!.secretName;
    const copy = await env.workload.get<KubeObject & { data: Record<string, string> }>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: NAMESPACE, name: keySecret },
    );
    expect(Buffer.from(copy.data["ssh-privatekey"]!, "base64").toString()).toBe(KEY);
    expect(JSON.stringify(initial)).not.toContain("not-a-real-key");

    const cut = await waitStatus("ds-rsync", "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    sampling = false;
    await sampler;
    const final = (await jobOf("ds-rsync", "final"))!;
    const finalScript = final.spec.template.spec.containers[0]!.command.join(" ");
    expect(finalScript.indexOf("'systemctl stop peanut'")).toBeGreaterThan(-1);
    expect(finalScript.indexOf("'systemctl stop peanut'")).toBeLessThan(finalScript.indexOf("rsync -aHAX "));
    expect(finalScript).toContain("--checksum --itemize-changes");
    expect(complete(final)).toBe(true);
    expect(samples.length).toBeGreaterThan(5);
    expect(samples.filter((x) => x.replicas > 0 && !x.finalDone)).toEqual([]);
    expect(samples.some((x) => x.replicas === 0)).toBe(true);
    expect((await replicasOf("ds-rsync-peanut"))?.replicas).toBe(1);
    const finalAt = Date.parse(String(cut["finalSyncTime"]));
    expect(Date.parse(String(cut["initialSyncTime"]))).toBeLessThanOrEqual(finalAt);
    expect(Date.parse(final.status!.completionTime!)).toBeLessThanOrEqual(
      Date.parse(String(cut["cutoverTime"])),
    );
    expect(finalAt).toBeLessThanOrEqual(Date.parse(String(cut["cutoverTime"])));
    const [shutdown] = recordsOf(1401);
    expect(shutdown?.action).toBe("shutdown");
    expect(shutdown!.at).toBeGreaterThanOrEqual(Date.parse(String(cut["cutoverTime"])));

    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ds-rsync" },
      { spec: { rollback: true } },
      "merge",
    );
    const back = await waitStatus("ds-rsync", "rolled back", (s) => s.phase === "RolledBack");
    expect((await env.proxmox.locateVm(1401))?.status).toBe("running");
    const resume = (await jobOf("ds-rsync", "resume"))!;
    expect(resume.spec.template.spec.containers[0]!.command.join(" ")).toContain("'systemctl start peanut'");
    expect(complete(resume)).toBe(true);
    // The copies are forgotten: a migration taken up again syncs anew.
    expect(await jobOf("ds-rsync", "initial")).toBeUndefined();
    expect(await jobOf("ds-rsync", "final")).toBeUndefined();
    expect(back["finalSyncTime"]).toBeUndefined();
    expect(String(back["rollbackMessage"])).toContain("services were started again");
  }, 200_000);

  it("a failed sync Job refuses cutover and leaves the VM serving; after the spec is fixed a new Job runs and it goes on", async () => {
    const vm = { vmid: 1402, name: "ds-fail", node: "trinity", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    const wm = upsMigration("ds-fail", vm, env, { spec: { decommission: { stopVM: true } } });
    // The user's dump Job, pinned to a node that does not exist: the real job controller fails it at
    // its deadline, as it would a dump that hangs.
    (wm.spec as Record<string, unknown>)["dataSync"] = {
      method: "Job",
      job: {
        backoffLimit: 0,
        activeDeadlineSeconds: 3,
        template: {
          spec: {
            restartPolicy: "Never",
            nodeSelector: { "kubernetes.io/hostname": "no-such-node" },
            containers: [{ name: "dump", image: "postgres:17", command: ["sh", "-c", "pg_dump ..."] }],
          },
        },
      },
    };
    await env.admin.create(wm);
    const failed = await waitStatus("ds-fail", "failed", (s) => s.phase === "Failed");
    expect(cond(failed, "DataSynced")).toMatchObject({ status: "False", reason: "SyncFailed" });
    expect(cond(failed, "DataSynced")?.message).toContain("DeadlineExceeded");
    expect(cond(failed, "DataSynced")?.message).toContain("VM keeps serving");
    const job = (await jobOf("ds-fail", "initial"))!;
    expect(job.spec.template.spec.containers[0]!.env).toContainEqual({
      name: "SYNC_PHASE",
      value: "initial",
    });
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await statusOf("ds-fail");
    expect(still.phase).toBe("Failed");
    expect(cond(still, "CutOver")).toBeUndefined();
    expect(
      await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: "ds-fail-peanut" }),
    ).toBeUndefined();
    expect((await replicasOf("ds-fail-peanut"))?.replicas).toBe(0);
    expect((await env.proxmox.locateVm(1402))?.status).toBe("running");
    expect(recordsOf(1402)).toEqual([]);

    // Fixed (no pin): the failed Job of the old spec is replaced, both syncs run, and it cuts over.
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ds-fail" },
      [{ op: "remove", path: "/spec/dataSync/job/template/spec/nodeSelector" }],
      "json",
    );
    const on = await waitStatus("ds-fail", "cut over", (s) => cond(s, "CutOver")?.status === "True");
    expect(cond(on, "DataSynced")?.status).toBe("True");
    const final = (await jobOf("ds-fail", "final"))!;
    expect(final.spec.template.spec.containers[0]!.env).toContainEqual({
      name: "SYNC_PHASE",
      value: "final",
    });
  }, 200_000);

  it("a failed final Rsync starts the VM's services again before it stops as Failed; a spec change tries anew", async () => {
    const vm = { vmid: 1405, name: "ds-final", node: "niobe", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    await provideVolume(env.workload, "ds-final-peanut-data");
    // The final copy's pods are refused by admission in the workload cluster (as a full node or a broken
    // image would keep them from running): the real job controller fails the Job at its deadline.
    // Only the final Job's pods: the first copy and the resume Job run.
    const refuseFinal = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: "e2e-refuse-final-sync" },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] },
          ],
        },
        validations: [
          {
            expression:
              "!has(object.metadata.labels) || !('job-name' in object.metadata.labels) || !object.metadata.labels['job-name'].startsWith('ds-final-') || !object.metadata.labels['job-name'].endsWith('-sync-final')",
            message: "e2e: the final sync's pods are refused",
          },
        ],
      },
    };
    const binding = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: "e2e-refuse-final-sync" },
      spec: {
        policyName: "e2e-refuse-final-sync",
        validationActions: ["Deny"],
        matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACE } } },
      },
    };
    await env.workload.apply(refuseFinal);
    await env.workload.apply(binding);
    const BINDING = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
    };
    try {
      const wm = upsMigration("ds-final", vm, env, { spec: { decommission: { stopVM: true } } });
      const spec = wm.spec as Record<string, unknown> & { targets: { template: Record<string, unknown> }[] };
      spec.targets[1]!.template["volumes"] = [{ name: "data", mountPath: "/data", size: "1Gi" }];
      spec["dataSync"] = {
        method: "Rsync",
        timeout: "8s",
        ssh: {
          host: "10.0.2.20",
          privateKeySecretRef: { name: "vm-ssh" },
          stopCommand: "systemctl stop peanut",
          startCommand: "systemctl start peanut",
        },
        paths: [{ from: "/srv/peanut", target: "ds-final-peanut", volume: "data" }],
      };
      await env.admin.create(wm);
      const failed = await waitStatus("ds-final", "failed", (s) => s.phase === "Failed", 150_000);
      const synced = cond(failed, "DataSynced");
      expect(synced).toMatchObject({ status: "False", reason: "SyncFailed" });
      expect(synced?.message).toContain("DeadlineExceeded");
      expect(synced?.message).toContain("The VM's services were started again");
      // The resume Job ran the start command and is done before the migration reports Failed.
      const resume = (await jobOf("ds-final", "resume"))!;
      expect(resume.spec.template.spec.containers[0]!.command.join(" ")).toContain(
        "'systemctl start peanut'",
      );
      expect(complete(resume)).toBe(true);
      expect(complete(await jobOf("ds-final", "initial"))).toBe(true);
      // Nothing moved: the VM serves, the targets stay at zero, no route, no Proxmox request.
      expect((await env.proxmox.locateVm(1405))?.status).toBe("running");
      expect((await replicasOf("ds-final-peanut"))?.replicas).toBe(0);
      expect(
        await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: "ds-final-peanut" }),
      ).toBeUndefined();
      expect(recordsOf(1405)).toEqual([]);

      // The cause removed and the spec changed: the failed final Job is replaced (the resume Job of the
      // failed attempt goes first), the copy succeeds and it cuts over.
      await env.workload.delete(BINDING, { name: "e2e-refuse-final-sync" });
      await env.admin.patch(
        WM,
        { namespace: NAMESPACE, name: "ds-final" },
        { spec: { dataSync: { timeout: "2m" } } },
        "merge",
      );
      const on = await waitStatus(
        "ds-final",
        "cut over",
        (s) => cond(s, "CutOver")?.status === "True",
        150_000,
      );
      expect(cond(on, "DataSynced")?.status).toBe("True");
      expect(complete(await jobOf("ds-final", "final"))).toBe(true);
      expect(await jobOf("ds-final", "resume")).toBeUndefined();
    } finally {
      await env.workload.delete(BINDING, { name: "e2e-refuse-final-sync" }, { ignoreNotFound: true });
      await env.workload.delete(
        { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy" },
        { name: "e2e-refuse-final-sync" },
        { ignoreNotFound: true },
      );
    }
  }, 360_000);

  it("rollback after cutover copies the writes back by dataSync.reverseJob, only once the targets stopped and the VM runs; a failed copy holds the rollback", async () => {
    const vm = { vmid: 1406, name: "ds-reverse", node: "neo", memoryMiB: 1024, diskGiB: 8, ha: true };
    await createSourceVm(env.proxmox, vm);
    await provideVolume(env.workload, "ds-reverse-peanut-data");
    const wm = upsMigration("ds-reverse", vm, env, { spec: { decommission: { stopVM: true } } });
    const spec = wm.spec as Record<string, unknown> & { targets: { template: Record<string, unknown> }[] };
    spec.targets[1]!.template["volumes"] = [{ name: "data", mountPath: "/data", size: "1Gi" }];
    const copyBack = (extra: Record<string, unknown>) => ({
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: "Never",
          ...extra,
          containers: [
            {
              name: "copy-back",
              image: "postgres:17",
              command: ["sh", "-c", "pg_dump ... | psql -h 10.0.2.20"],
            },
          ],
        },
      },
    });
    spec["dataSync"] = {
      method: "Job",
      job: {
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "dump", image: "postgres:17", command: ["true"] }],
          },
        },
      },
      // First a copy that cannot run (pinned to no node): the real job controller fails it at 3 s.
      reverseJob: {
        ...copyBack({ nodeSelector: { "kubernetes.io/hostname": "no-such-node" } }),
        activeDeadlineSeconds: 3,
      },
    };
    await env.admin.create(wm);
    await waitStatus("ds-reverse", "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    expect(await jobOf("ds-reverse", "reverse")).toBeUndefined();

    // Sampled all along the rollback: the reverse Job never exists while a target pod may write or the
    // VM is not running.
    const samples: { reverse: boolean; replicas: number; vm: string }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const d = await env.workload.getOrUndefined<KubeObject>(DEPLOYMENT, {
          namespace: NAMESPACE,
          name: "ds-reverse-peanut",
        });
        const [reverse, where] = await Promise.all([
          jobOf("ds-reverse", "reverse"),
          env.proxmox.locateVm(1406),
        ]);
        samples.push({
          reverse: reverse !== undefined,
          replicas: (d?.status as { replicas?: number } | undefined)?.replicas ?? 0,
          vm: where?.status ?? "gone",
        });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ds-reverse" },
      { spec: { rollback: true } },
      "merge",
    );
    const held = await waitStatus(
      "ds-reverse",
      "rollback held",
      (s) => cond(s, "RolledBack")?.reason === "ReverseSyncFailed",
    );
    expect(held.phase).toBe("Failed");
    expect(cond(held, "RolledBack")?.message).toContain("stays in the cluster's volumes (kept)");
    expect(cond(held, "RolledBack")?.message).toContain("DeadlineExceeded");
    expect((await env.proxmox.locateVm(1406))?.status).toBe("running");
    expect((await replicasOf("ds-reverse-peanut"))?.replicas).toBe(0);
    expect(
      await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: "ds-reverse-peanut" }),
    ).toBeUndefined();

    // Fixed (pin and deadline removed): the failed Job of the old spec is replaced and the rollback
    // completes, saying so.
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ds-reverse" },
      {
        spec: {
          dataSync: {
            reverseJob: { activeDeadlineSeconds: null, template: { spec: { nodeSelector: null } } },
          },
        },
      },
      "merge",
    );
    const back = await waitStatus("ds-reverse", "rolled back", (s) => s.phase === "RolledBack").finally(
      () => {
        sampling = false;
      },
    );
    await sampler;
    const reverse = (await jobOf("ds-reverse", "reverse"))!;
    expect(complete(reverse)).toBe(true);
    expect(reverse.spec.template.spec.containers[0]!.env).toContainEqual({
      name: "SYNC_PHASE",
      value: "reverse",
    });
    expect(String(back["rollbackMessage"])).toContain(
      `copied back to the VM by Job ${reverse.metadata!.name}`,
    );
    const withJob = samples.filter((x) => x.reverse);
    expect(withJob.length).toBeGreaterThan(0);
    expect(withJob.filter((x) => x.replicas > 0 || x.vm !== "running")).toEqual([]);
    expect(samples.some((x) => !x.reverse && x.vm !== "running")).toBe(true);
  }, 240_000);

  it("a Job of the sync Job's name that this migration did not make is left alone: SyncJobNameTaken, nothing deleted", async () => {
    const vm = { vmid: 1404, name: "ds-taken", node: "neo", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    const wm = upsMigration("ds-taken", vm, env, { spec: { decommission: { stopVM: true } } });
    (wm.spec as Record<string, unknown>)["dataSync"] = {
      method: "Job",
      job: {
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "dump", image: "postgres:17", command: ["true"] }],
          },
        },
      },
    };
    // Paused until someone else's Job holds the name the controller derives from the uid.
    wm.metadata!.annotations = { "homelab.shdr.ch/paused": "true" };
    const created = await env.admin.create<KubeObject>(wm);
    const name = syncJobName(created as unknown as WorkloadMigration, "initial");
    // The namespace exists in the workload cluster once any migration deployed there; made here so this
    // test holds when run alone.
    await env.workload.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
    const theirs = await env.workload.create<KubeObject>({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: NAMESPACE, labels: { "homelab.shdr.ch/migration": "ds-taken" } },
      spec: {
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "mine", image: "busybox:1.37", command: ["true"] }],
          },
        },
      },
    });
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "ds-taken" },
      { metadata: { annotations: { "homelab.shdr.ch/paused": null } } },
      "merge",
    );
    const failed = await waitStatus("ds-taken", "refused", (s) => s.phase === "Failed");
    expect(cond(failed, "DataSynced")).toMatchObject({ status: "False", reason: "SyncJobNameTaken" });
    expect(cond(failed, "DataSynced")?.message).toContain(name);
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await env.workload.get<KubeObject>(JOB, { namespace: NAMESPACE, name });
    expect(still.metadata?.uid).toBe(theirs.metadata?.uid);
    expect(still.metadata?.deletionTimestamp).toBeUndefined();
    expect((await statusOf("ds-taken")).phase).toBe("Failed");
    expect((await replicasOf("ds-taken-peanut"))?.replicas).toBe(0);
    expect(recordsOf(1404)).toEqual([]);
  }, 120_000);

  it("a failed backup refuses retirement: approved and past its grace period, the VM is not deleted", async () => {
    const vm = { vmid: 1403, name: "ds-nobackup", node: "niobe", memoryMiB: 1024, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    env.sim.faults.set({ failTasks: [{ type: "vzdump", id: "1403", message: "pbs: datastore full" }] });
    const wm = upsMigration("ds-nobackup", vm, env, {
      spec: {
        decommission: { stopVM: true, backup: { storage: "pbs" }, deleteAfter: "1s", requireApproval: true },
      },
    });
    wm.metadata!.annotations = { "homelab.shdr.ch/approve-retirement": "true" };
    await env.admin.create(wm);
    const s = await waitStatus(
      "ds-nobackup",
      "backup failed",
      (x) => cond(x, "BackedUp")?.reason === "BackupFailed",
    );
    expect(cond(s, "BackedUp")?.status).toBe("False");
    await new Promise((r) => setTimeout(r, 4_000));
    const later = await statusOf("ds-nobackup");
    expect(cond(later, "Retired")).toBeUndefined();
    expect(later["backupVolumeID"]).toBeUndefined();
    expect((await env.proxmox.locateVm(1403))?.status).toBe("stopped");
    // One vzdump, failed (the next waits a minute), and no delete.
    expect(recordsOf(1403).map((r) => `${r.kind}:${r.exitstatus}`)).toEqual([
      "power:OK",
      "backup:pbs: datastore full",
    ]);
  }, 120_000);
});
