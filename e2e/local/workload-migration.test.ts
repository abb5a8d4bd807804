import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import {
  applySeedExamples,
  type LocalProcess,
  managementCluster,
  prepareChartedLocal,
  removeLocal,
  startLocal,
} from "./local-process.ts";
import { seedProxmox } from "./seed-proxmox.ts";

const CHARTS = "/work/shared/reference/charts";
const WM = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "WorkloadMigration" };
type Condition = { type: string; status: string; reason?: string; message?: string };
// biome-ignore lint/suspicious/noExplicitAny: the assertions read status fields as JSON
type Wm = KubeObject & { status?: Record<string, any> & { conditions?: Condition[] } };

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;
let proxmox: ProxmoxClient | undefined;

const cond = (wm: Wm | undefined, type: string) => wm?.status?.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  ({ dataHome, stateDir } = await prepareChartedLocal("homelab-local-wm-"));
}, 1_200_000);

afterAll(async () => {
  proxmox?.close();
  await removeLocal(local, stateDir, dataHome);
});

describe.skipIf(!existsSync(CHARTS))(
  "local mode: the UPS-stack and Smallweb migrations from kubectl apply -f examples/",
  () => {
    it("runs on the seed VM to the cutover approval, then to the retirement approval, then retires it", async () => {
      process.env.HOMELAB_LOCAL_CHARTS = CHARTS;
      local = await startLocal(dataHome);
      const { kube, run } = await managementCluster(local);
      await applySeedExamples(kube, run);
      proxmox = await seedProxmox(kube);
      const before = await proxmox.locateVm(1010);
      expect(before).toMatchObject({ name: "ups-stack", node: "niobe", status: "running" });

      const get = () => kube.getOrUndefined<Wm>(WM, { namespace: "infra", name: "ups-stack" });
      const until = (what: string, ok: (wm: Wm) => boolean, timeout: number) =>
        waitFor(
          `wm/ups-stack ${what}`,
          async () => {
            const wm = await get();
            return wm && ok(wm) ? wm : undefined;
          },
          timeout,
          2_000,
        ).catch(async (err: unknown) => {
          throw new Error(
            `${(err as Error).message}\nstatus: ${JSON.stringify((await get())?.status)}\n--- npm start ---\n${local?.output().slice(-4000)}`,
          );
        });

      // The example cuts over by hand: it stops at that approval with its targets verified, the VM running.
      const atCutover = await until(
        "verified and waiting for the cutover approval",
        (wm) => cond(wm, "CutOver")?.reason === "AwaitingApproval",
        1_200_000,
      );
      expect(cond(atCutover, "Deployed")?.status).toBe("True");
      expect(cond(atCutover, "Verified")?.status).toBe("True");
      expect((await proxmox.locateVm(1010))?.status).toBe("running");
      // The NUT server's manifest pins it to talos-niobe: the local workload cluster has that Node, and
      // its scheduler put the pod there with the host's USB bus mounted.
      const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
        { apiVersion: "v1", kind: "Secret" },
        { namespace: "homelab-system", name: "k8s-kubeconfig" },
      );
      const kc = new KubeConfig();
      kc.loadFromString(Buffer.from(secret.data?.value ?? "", "base64").toString("utf8"));
      type Pod = KubeObject & { spec: { nodeName?: string; volumes?: { hostPath?: { path: string } }[] } };
      const nut = await new KubeClient(kc).list<Pod>(
        { apiVersion: "v1", kind: "Pod" },
        { namespace: "infra", labelSelector: "app.kubernetes.io/name=nut-server" },
      );
      expect(nut.items.map((p) => p.spec.nodeName)).toEqual(["talos-niobe"]);
      expect(nut.items[0]?.spec.volumes?.map((v) => v.hostPath?.path)).toContain("/dev/bus/usb");
      const stops = (await proxmox.listTasks("niobe", { source: "all", vmid: 1010 })).filter((t) =>
        ["hastop", "qmshutdown", "qmstop"].includes(t.type),
      );
      expect(stops).toEqual([]);

      // The example keeps the VM a week after cutover (deleteAfter: 168h); this user shortens that before
      // approving, since the grace period is counted from the cutover.
      await run(
        "patch",
        "wm",
        "ups-stack",
        "-n",
        "infra",
        "--type=merge",
        "-p",
        '{"spec":{"decommission":{"deleteAfter":"5s"}}}',
      );
      // The chart's approval policy holds in local mode too: a user who may patch migrations but is in
      // none of migrationApprovers.groups is refused by admission, and nothing is approved.
      await run(
        "create",
        "clusterrole",
        "e2e-wm-editor",
        "--verb=get,patch,update",
        "--resource=workloadmigrations.homelab.shdr.ch",
      );
      await run(
        "create",
        "clusterrolebinding",
        "e2e-wm-editor",
        "--clusterrole=e2e-wm-editor",
        "--user=mallory",
      );
      const asMallory = ["--as=mallory", "--as-group=peers-alice"];
      const refused = await run(
        "annotate",
        "wm",
        "ups-stack",
        "-n",
        "infra",
        "homelab.shdr.ch/approve-cutover=true",
        ...asMallory,
      ).then(
        () => "accepted",
        (err: { stderr?: string }) => String(err.stderr),
      );
      expect(refused).toContain("only members of the groups");
      expect(refused).toContain("mallory");
      // The same user may still patch what is not an approval (RBAC, not the policy, decides that).
      await run("label", "wm", "ups-stack", "-n", "infra", "e2e/edited-by=mallory", ...asMallory);
      expect((await get())?.metadata?.annotations?.["homelab.shdr.ch/approve-cutover"]).toBeUndefined();
      await run("annotate", "wm", "ups-stack", "-n", "infra", "homelab.shdr.ch/approve-cutover=true");

      const atRetirement = await until(
        "backed up and waiting for the retirement approval",
        (wm) => cond(wm, "Retired")?.reason === "AwaitingApproval",
        600_000,
      );
      expect(cond(atRetirement, "VMStopped")?.status).toBe("True");
      expect(cond(atRetirement, "BackedUp")?.status).toBe("True");
      expect((await proxmox.locateVm(1010))?.status).toBe("stopped");
      expect(
        await proxmox.listTasks("niobe", { source: "all", vmid: 1010, typefilter: "qmdestroy" }),
      ).toEqual([]);

      const approvedAt = Math.floor(Date.now() / 1000);
      await run("annotate", "wm", "ups-stack", "-n", "infra", "homelab.shdr.ch/approve-retirement=true");
      const retired = await until("retired", (wm) => wm.status?.phase === "Decommissioned", 300_000);
      expect(cond(retired, "Retired")?.status).toBe("True");
      expect(String(retired.status?.approvedBy)).toContain("kubectl-annotate");
      expect(retired.status?.ramFreedMiB).toBe(1024);
      expect(await proxmox.locateVm(1010)).toBeUndefined();

      // The simulator's task list for the VM, oldest first (pids grow): HA stop, vzdump, destroy, each OK.
      type Task = { upid: string; type: string; status?: string; starttime?: number; pid?: number };
      const all = (await proxmox.listTasks("niobe", { source: "all", vmid: 1010 })) as Task[];
      const tasks = all
        .filter((t) => ["hastop", "qmshutdown", "qmstop", "vzdump", "qmdestroy"].includes(t.type))
        .sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0));
      // The seed VM is HA-managed, so Proxmox runs its shutdown as an HA stop (hastop), as for `qm shutdown`.
      expect(
        tasks.map((t) => `${t.type}:${t.status}`),
        JSON.stringify(all),
      ).toEqual(["hastop:OK", "vzdump:OK", "qmdestroy:OK"]);
      const [stop, , destroy] = tasks as [Task, Task, Task];
      const seconds = (iso: unknown) => Math.floor(Date.parse(String(iso)) / 1000);
      expect(stop.starttime).toBeGreaterThanOrEqual(seconds(retired.status?.verifiedTime));
      expect(destroy.starttime).toBeGreaterThanOrEqual(approvedAt);
    }, 2_400_000);

    it("decommissions Smallweb, the seed's LXC container: stopped and backed up, kept for its grace period", async () => {
      const { kube } = await managementCluster(local!);
      const get = () => kube.getOrUndefined<Wm>(WM, { namespace: "infra", name: "smallweb" });
      const until = (what: string, ok: (wm: Wm) => boolean, timeout: number) =>
        waitFor(
          `wm/smallweb ${what}`,
          async () => {
            const wm = await get();
            return wm && ok(wm) ? wm : undefined;
          },
          timeout,
          500,
        ).catch(async (err: unknown) => {
          throw new Error(`${(err as Error).message}\nstatus: ${JSON.stringify((await get())?.status)}`);
        });
      // The example keeps the container a week (deleteAfter: 168h): stopped and backed up, then waiting.
      const waiting = await until(
        "backed up, in its grace period",
        (wm) => cond(wm, "Retired")?.reason === "GracePeriod",
        300_000,
      );
      expect(cond(waiting, "SourceVerified")).toMatchObject({
        status: "True",
        message: "CT 1100 (smallweb) on trinity",
      });
      expect(String(waiting.status?.backupVolumeID)).toMatch(/^pbs:backup\/vzdump-lxc-1100-/);
      expect(await proxmox!.locateVm(1100)).toMatchObject({
        type: "lxc",
        status: "stopped",
        hastate: "stopped",
      });
      const archives = await proxmox!.storageContent("trinity", "pbs", { content: "backup", vmid: 1100 });
      expect(archives.map((a) => a.volid)).toEqual([waiting.status?.backupVolumeID]);

      // Stopped through HA (the seed's container is HA-managed), backed up, and nothing deleted: the
      // grace period counts from the cutover, which a decommission without targets reaches at once.
      type Task = { type: string; status?: string; pid?: number };
      const tasks = ((await proxmox!.listTasks("trinity", { source: "all", vmid: 1100 })) as Task[])
        .filter((t) => ["hastop", "vzshutdown", "vzstop", "vzdump", "vzdestroy"].includes(t.type))
        .sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0));
      expect(tasks.map((t) => `${t.type}:${t.status}`)).toEqual(["hastop:OK", "vzdump:OK"]);
    }, 600_000);
  },
);
