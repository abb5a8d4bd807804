// WorkloadMigration of an LXC source on the real control plane and the Proxmox simulator: the seed's
// Smallweb container decommissioned from start to Decommissioned, judged from the simulator's own task
// list and records; a migration naming the wrong guest type touches nothing; a rollback starts the
// container again; a kill -9 between the shutdown request and its id reaching status does not shut
// it down twice. The operator runs as its own process (a kill -9 must hit a real one).
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { parseUpid } from "../../src/proxmox/index.ts";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import {
  CLUSTER,
  createSourceVm,
  type MigrationEnv,
  NAMESPACE,
  proxmoxRef,
  startMigrationEnv,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, simRecords } from "./status.ts";

const NODE = "trinity";
const TEMPLATE = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst";
/** Long enough that a restarted operator still finds a container's shutdown running. */
const SHUTDOWN_MS = 8_000;

type Task = { upid: string; type: string; status?: string; starttime: number; endtime?: number; pid: number };

let env: MigrationEnv;
let operator: { child: ChildProcess; exited: Promise<unknown> } | undefined;

async function startOperator(): Promise<void> {
  const port = await freePort();
  const child = spawn(process.execPath, ["e2e/workload-migration/operator-main.ts"], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath(),
      HEALTH_PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  operator = { child, exited: new Promise((r) => child.once("exit", r)) };
  await waitFor(
    "the operator to be ready",
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true,
    60_000,
    50,
  );
}
async function killOperator(): Promise<void> {
  if (!operator || operator.child.exitCode !== null || operator.child.signalCode !== null) return;
  operator.child.kill("SIGKILL");
  await operator.exited;
}

beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig(), {
    inProcess: false,
    taskDurationMs: { default: 100, vzshutdown: SHUTDOWN_MS },
  });
  await env.proxmox.waitForTask(
    await env.proxmox.downloadUrl(NODE, "local", {
      url: "http://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst",
      content: "vztmpl",
      filename: "debian-12-standard_12.12-1_amd64.tar.zst",
    }),
  );
  await startOperator();
}, 180_000);
afterAll(async () => {
  await killOperator();
  await env?.stop();
});

/** A running container as the seed has Smallweb (created and started through the API). */
async function createContainer(vmid: number, name: string, memoryMiB: number, diskGiB: number, ha = false) {
  await env.proxmox.waitForTask(
    await env.proxmox.createContainer(NODE, vmid, {
      ostemplate: TEMPLATE,
      hostname: name,
      memory: memoryMiB,
      rootfs: `ceph-vm-disks:${diskGiB}`,
      net0: "name=eth0,bridge=vmbr0,ip=dhcp",
      unprivileged: 1,
    }),
  );
  await env.proxmox.waitForTask(await env.proxmox.startContainer(NODE, vmid));
  if (ha) await env.proxmox.addHaResource({ sid: `ct:${vmid}`, state: "started" });
}

/** A decommission without targets, the shape of examples/workload-migration-smallweb.yaml. */
function decommission(
  name: string,
  source: { vmid: number; name: string; type?: "qemu" | "lxc" },
  over: { deleteAfter?: string; annotations?: Record<string, string> } = {},
): KubeObject {
  return {
    ...WM,
    metadata: { name, namespace: NAMESPACE, ...(over.annotations ? { annotations: over.annotations } : {}) },
    spec: {
      clusterRef: { name: CLUSTER },
      proxmox: proxmoxRef(env),
      source,
      targets: [],
      cutover: { mode: "Automatic" },
      decommission: {
        stopVM: true,
        backup: { storage: "pbs" },
        deleteAfter: over.deleteAfter ?? "2s",
        requireApproval: true,
      },
    },
  };
}

const { statusOf, waitStatus } = migrationStatus(() => env, { timeoutMs: 120_000, intervalMs: 100 });
const { recordsOf } = simRecords(() => env);
/** The node's tasks about a guest, oldest first (pids grow). */
const tasksOf = async (vmid: number) =>
  ((await env.proxmox.listTasks(NODE, { source: "all", vmid })) as Task[]).sort((a, b) => a.pid - b.pid);
const approve = (name: string) =>
  env.admin.apply(
    {
      ...WM,
      metadata: { name, namespace: NAMESPACE, annotations: { "homelab.shdr.ch/approve-retirement": "true" } },
    },
    { fieldManager: "alice-approver", force: false },
  );

describe("WorkloadMigration of an LXC container", () => {
  it("decommissions Smallweb: vzdump only after the shutdown, destroy only after the archive is listed and the approval", async () => {
    await createContainer(1100, "smallweb", 1024, 8, true);
    await env.admin.create(decommission("lxc-smallweb", { vmid: 1100, name: "smallweb", type: "lxc" }));

    const waiting = await waitStatus(
      "lxc-smallweb",
      "backed up and waiting for the approval",
      (s) => cond(s, "Retired")?.reason === "AwaitingApproval",
    );
    expect(waiting.phase).toBe("BackedUp");
    expect(cond(waiting, "SourceVerified")).toMatchObject({
      status: "True",
      reason: "IdAndNameMatch",
      message: "CT 1100 (smallweb) on trinity",
    });
    expect(String(waiting["backupVolumeID"])).toMatch(/^pbs:backup\/vzdump-lxc-1100-.*\.tar\.zst$/);
    const stopped = await env.proxmox.locateVm(1100);
    expect(stopped).toMatchObject({ type: "lxc", status: "stopped", hastate: "stopped" });
    const listed = await env.proxmox.storageContent(NODE, "pbs", { content: "backup", vmid: 1100 });
    expect(listed.map((v) => v.volid)).toEqual([waiting["backupVolumeID"]]);
    expect(recordsOf(1100).filter((r) => r.kind === "vm-delete")).toEqual([]);

    const approvedAt = Math.floor(Date.now() / 1000);
    await approve("lxc-smallweb");
    const retired = await waitStatus("lxc-smallweb", "decommissioned", (s) => s.phase === "Decommissioned");
    expect(cond(retired, "Retired")?.status).toBe("True");
    expect(String(retired["approvedBy"])).toContain("alice-approver");
    expect(retired["ramFreedMiB"]).toBe(1024);
    expect(retired["diskFreedGiB"]).toBe(8);
    expect(await env.proxmox.locateVm(1100)).toBeUndefined();
    expect((await env.proxmox.listHaResources()).map((r) => r.sid)).not.toContain("ct:1100");
    expect(await env.proxmox.storageContent(NODE, "ceph-vm-disks", { vmid: 1100 })).toEqual([]);

    // From the simulator's task list: one HA stop (an HA-managed container's shutdown, as pct's),
    // one vzdump started after it ended, one vzdestroy started after the vzdump ended and the approval.
    const all = await tasksOf(1100);
    const steps = all.filter((t) =>
      ["hastop", "vzshutdown", "vzstop", "qmshutdown", "vzdump", "vzdestroy", "qmdestroy"].includes(t.type),
    );
    expect(
      steps.map((t) => `${t.type}:${t.status}`),
      JSON.stringify(all),
    ).toEqual(["hastop:OK", "vzdump:OK", "vzdestroy:OK"]);
    const [stop, dump, destroy] = steps as [Task, Task, Task];
    expect(dump.starttime).toBeGreaterThanOrEqual(stop.endtime!);
    expect(destroy.starttime).toBeGreaterThanOrEqual(dump.endtime!);
    expect(destroy.starttime).toBeGreaterThanOrEqual(approvedAt);
    expect(parseUpid(destroy.upid).user).toBe(env.sim.tokenId);
    const kinds = recordsOf(1100).map((r) => `${r.kind}${r.action ? `:${r.action}` : ""}:${r.exitstatus}`);
    expect(kinds).toEqual([
      "vm-create:OK",
      "power:start:OK",
      "power:shutdown:OK",
      "backup:OK",
      "vm-delete:OK",
    ]);
  }, 180_000);

  it("refuses a migration naming type qemu for a container, and type lxc for a VM; both guests untouched", async () => {
    await createContainer(1101, "ct-decoy", 512, 4, true);
    await createSourceVm(env.proxmox, {
      vmid: 1102,
      name: "vm-decoy",
      node: NODE,
      memoryMiB: 512,
      diskGiB: 4,
    });
    // type unset is qemu (the CRD default), as an explicit qemu would be.
    await env.admin.create(decommission("lxc-says-qemu", { vmid: 1101, name: "ct-decoy" }));
    await env.admin.create(decommission("lxc-for-a-vm", { vmid: 1102, name: "vm-decoy", type: "lxc" }));
    const a = await waitStatus("lxc-says-qemu", "refused", (s) => s.phase === "Failed");
    const b = await waitStatus("lxc-for-a-vm", "refused", (s) => s.phase === "Failed");
    expect(cond(a, "SourceVerified")).toMatchObject({ status: "False", reason: "TypeMismatch" });
    expect(cond(b, "SourceVerified")).toMatchObject({ status: "False", reason: "TypeMismatch" });
    const stored = await env.admin.get<KubeObject>(WM, { namespace: NAMESPACE, name: "lxc-says-qemu" });
    expect((stored.spec as { source: { type: string } }).source.type).toBe("qemu");
    // Given time to act wrongly, then checked: nothing asked of either guest beyond create and start.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await env.proxmox.locateVm(1101)).toMatchObject({ status: "running", hastate: "started" });
    expect(await env.proxmox.locateVm(1102)).toMatchObject({ status: "running" });
    for (const vmid of [1101, 1102])
      expect(recordsOf(vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start")).toEqual([]);
    expect((await tasksOf(1101)).map((t) => t.type)).toEqual(["vzcreate", "vzstart"]);
    expect((await env.proxmox.getHaResource("ct:1101")).state).toBe("started");
  }, 120_000);

  it("a rollback before retirement starts the container again (vzstart) and deletes nothing", async () => {
    await createContainer(1103, "ct-rollback", 512, 4);
    await env.admin.create(
      decommission("lxc-rollback", { vmid: 1103, name: "ct-rollback", type: "lxc" }, { deleteAfter: "1h" }),
    );
    await waitStatus("lxc-rollback", "backed up", (s) => cond(s, "BackedUp")?.status === "True");
    expect((await env.proxmox.locateVm(1103))?.status).toBe("stopped");
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name: "lxc-rollback" },
      { spec: { rollback: true } },
      "merge",
    );
    const rolled = await waitStatus("lxc-rollback", "rolled back", (s) => s.phase === "RolledBack");
    expect(String(rolled["rollbackMessage"])).toContain("CT 1103 running");
    expect((await env.proxmox.locateVm(1103))?.status).toBe("running");
    const types = (await tasksOf(1103)).map((t) => `${t.type}:${t.status}`);
    expect(types).toEqual(["vzcreate:OK", "vzstart:OK", "vzshutdown:OK", "vzdump:OK", "vzstart:OK"]);
    expect(recordsOf(1103).filter((r) => r.kind === "vm-delete")).toEqual([]);
  }, 120_000);

  it("a kill -9 after Proxmox accepted the shutdown and before its id reached status: adopted, not sent twice", async () => {
    await createContainer(1104, "ct-crash", 512, 4);
    // Proxmox takes the shutdown at once but its answer (the task id) is held back: the operator is
    // killed inside that window, having asked and saved nothing.
    env.sim.faults.set({
      slowAnswers: [
        { method: "POST", path: `/nodes/${NODE}/lxc/1104/status/shutdown$`, delayMs: 20_000, count: 1 },
      ],
      // And the shutdown keeps running until the restarted operator was seen waiting on it (a container's
      // shutdown is otherwise over before a loaded machine's poll could see the adoption).
      hangTasks: [{ type: "vzshutdown", id: "1104" }],
    });
    await env.admin.create(
      decommission(
        "lxc-crash",
        { vmid: 1104, name: "ct-crash", type: "lxc" },
        { deleteAfter: "1s", annotations: { "homelab.shdr.ch/approve-retirement": "true" } },
      ),
    );
    const asked = await waitFor(
      "the shutdown to reach Proxmox",
      async () => recordsOf(1104).find((r) => r.kind === "power" && r.action === "shutdown"),
      120_000,
      20,
    );
    await killOperator();
    const before = await statusOf("lxc-crash");
    expect(before["stopTask"]).toBeUndefined();
    expect((await tasksOf(1104)).find((t) => t.upid === asked.upid)?.status).toBeUndefined(); // still running

    await startOperator();
    // The restarted operator finds the running vzshutdown in the node's task list and waits on it.
    const adopted = await waitStatus(
      "lxc-crash",
      "the running shutdown adopted",
      (s) => s["stopTask"] === asked.upid,
    );
    expect(cond(adopted, "VMStopped")?.reason).toBe("ShuttingDown");
    env.sim.faults.reset();
    const done = await waitStatus(
      "lxc-crash",
      "decommissioned",
      (s) => s.phase === "Decommissioned",
      150_000,
    );
    expect(done["ramFreedMiB"]).toBe(512);
    const kinds = recordsOf(1104)
      .filter((r) => r.kind !== "vm-create" && !(r.kind === "power" && r.action === "start"))
      .map((r) => `${r.kind}${r.action ? `:${r.action}` : ""}:${r.exitstatus}`);
    expect(kinds).toEqual(["power:shutdown:OK", "backup:OK", "vm-delete:OK"]);
    expect((await tasksOf(1104)).filter((t) => t.type === "vzshutdown")).toHaveLength(1);
  }, 240_000);
});
