// What a leader that lost its lease can still do to the cluster, counted by the API server itself: its
// own control plane here, with an audit log of every write and each operator process under its own
// client-certificate identity (as bench/peer-tenant does), so a write is attributed by the server, not by
// the code under test.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeAuditPolicy } from "../../bench/peer-tenant/audit.ts";
import { deleteExactly, KubeClient } from "../../src/runtime/client.ts";
import { isConflict } from "../../src/runtime/errors.ts";
import { microTime } from "../../src/runtime/events.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { Manager } from "../../src/runtime/manager.ts";
import type { KubeObject } from "../../src/runtime/object.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { kubeconfigForUser } from "../harness/users.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { CONFIGMAP, eventually, freshNamespace, sleep } from "./support.ts";

const LEADER_USER = "fencing-leader";
const STANDBY_USER = "fencing-standby";
const ABORT_USER = "fencing-aborted";
const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

let cp: ControlPlane;
let auditLog: string;
let admin: KubeClient;
let dir: string;
let journal: string;
const children: ChildProcess[] = [];

interface AuditWrite {
  user: string;
  verb: string;
  resource: string;
  name: string;
  receivedMs: number;
  completedMs: number;
  code: number | undefined;
}

/** Every write the API server answered (ResponseComplete), by authenticated user. */
function auditWrites(): AuditWrite[] {
  const out: AuditWrite[] = [];
  for (const line of readFileSync(auditLog, "utf8").split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      stage?: string;
      verb?: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string; name?: string };
      requestReceivedTimestamp?: string;
      stageTimestamp?: string;
      responseStatus?: { code?: number };
    };
    if (e.stage !== "ResponseComplete" || !e.verb || !WRITE_VERBS.has(e.verb)) continue;
    const ref = e.objectRef ?? {};
    out.push({
      user: e.user?.username ?? "",
      verb: e.verb,
      resource: `${ref.resource ?? "?"}${ref.subresource ? `/${ref.subresource}` : ""}`,
      name: ref.name ?? "",
      receivedMs: Date.parse(e.requestReceivedTimestamp ?? ""),
      completedMs: Date.parse(e.stageTimestamp ?? ""),
      code: e.responseStatus?.code,
    });
  }
  return out;
}

interface Line {
  at: number;
  who: string;
  what: string;
  detail: string;
}
function readJournal(): Line[] {
  return readFileSync(journal, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [at, who, what, ...rest] = l.split(" ");
      return { at: Number(at), who: who!, what: what!, detail: rest.join(" ") };
    });
}

function candidate(id: string, ns: string, kubeconfig: string, lingerMs = 0): ChildProcess {
  const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures/fencing-candidate.ts")], {
    env: {
      ...process.env,
      CANDIDATE_ID: id,
      JOURNAL: journal,
      KUBECONFIG_PATH: kubeconfig,
      NAMESPACE: ns,
      LEASE: "fencing-leader",
      LINGER_MS: String(lingerMs),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "error",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(child);
  return child;
}

async function userKubeconfig(user: string): Promise<string> {
  // cluster-admin, so RBAC is not what stops a write here: only the code under test can.
  await admin.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: `${user}-admin` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
  });
  return kubeconfigForUser(cp.kubeConfig(), { dir: join(cp.dir, "users"), user });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fencing-test-"));
  journal = join(dir, "journal");
  writeFileSync(journal, "");
  const audit = await writeAuditPolicy(dir);
  auditLog = audit.logPath;
  cp = await startControlPlane({ name: "fencing", extraApiServerArgs: audit.args });
  admin = new KubeClient(cp.kubeConfig());
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a leader cut off from the API server, with reconciles that keep writing", () => {
  let proxy: FaultProxy | undefined;
  afterAll(() => proxy?.close());

  it("makes zero writes from the moment its lease could be taken over (audit log), while the standby takes over; its fences refuse", async () => {
    const ns = await freshNamespace(admin, "fencing");
    for (const name of ["work-a", "work-b"]) {
      await admin.create({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: ns, labels: { "fencing-test": "work" } },
      });
    }
    const leaderKc = new KubeConfig();
    leaderKc.loadFromFile(await userKubeconfig(LEADER_USER));
    proxy = await startFaultProxy(leaderKc);
    const viaProxy = join(dir, "leader-via-proxy.kubeconfig");
    writeFileSync(viaProxy, proxy.kubeConfig().exportConfig());

    // D lingers 30 s after losing the lease, long enough to be reconnected after the standby took over.
    const d = candidate("D", ns, viaProxy, 30_000);
    const dExit = new Promise<number | null>((resolve) => d.once("exit", (code) => resolve(code)));
    await eventually(
      "D to lead, write and pass its fences",
      () => {
        const j = readJournal();
        return (
          j.some((l) => l.who === "D" && l.what === "wrote") &&
          j.some((l) => l.who === "D" && l.what === "fence-ok")
        );
      },
      60_000,
    );
    candidate("E", ns, await userKubeconfig(STANDBY_USER));
    await eventually(
      "E to start as standby",
      () => readJournal().some((l) => l.who === "E" && l.what === "started"),
      60_000,
    );
    await eventually(
      "D's writes to show in the audit log",
      () => auditWrites().some((w) => w.user === LEADER_USER && w.resource === "configmaps"),
      10_000,
    );

    proxy.cut();
    const cutAt = Date.now();
    // D cannot renew any more, so the record now holds its last renewal; a renewal in flight at the cut
    // has landed or failed within this second.
    await sleep(1_000);
    const lease = await admin.get<{
      spec: { holderIdentity: string; renewTime: string; leaseDurationSeconds: number };
    }>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease" }, { namespace: ns, name: "fencing-leader" });
    expect(lease.spec.holderIdentity).toBe("D");
    const takeoverPossibleAt = Date.parse(lease.spec.renewTime) + lease.spec.leaseDurationSeconds * 1000;

    const eLeads = await eventually(
      "E to take over",
      () => readJournal().find((l) => l.who === "E" && l.what === "leading"),
      60_000,
    );
    await eventually(
      "E to write",
      () => readJournal().some((l) => l.who === "E" && l.what === "wrote"),
      10_000,
    );
    // Reconnect D while it is still running: whatever it still sends now would reach the server.
    proxy.restore();
    const restoredAt = Date.now();
    expect(await dExit).toBe(1);
    const exitedAt = Date.now();

    const j = readJournal();
    const dLost = j.find((l) => l.who === "D" && l.what === "not-leading")!;
    const writes = auditWrites();
    const byD = writes.filter((w) => w.user === LEADER_USER);
    const late = byD.filter((w) => w.receivedMs >= takeoverPossibleAt || w.completedMs >= takeoverPossibleAt);
    const afterLoss = byD.filter((w) => w.receivedMs >= dLost.at || w.completedMs >= dLost.at);
    const byEAfter = writes.filter((w) => w.user === STANDBY_USER && w.resource === "configmaps");
    const dTriesAfterRestore = j.filter(
      (l) => l.who === "D" && (l.what === "write-refused" || l.what === "wrote") && l.at >= restoredAt,
    );
    const dRefusedAfterRestore = dTriesAfterRestore.filter((l) => l.what === "write-refused");
    console.log(
      `[fencing] D: ${byD.length} writes in total (audit log), ${afterLoss.length} after it stopped leading ` +
        `(${dLost.at - cutAt} ms after the cut), ${late.length} after its lease could be taken over ` +
        `(${takeoverPossibleAt - cutAt} ms after the cut); E led ${eLeads.at - cutAt} ms after the cut and made ` +
        `${byEAfter.length} ConfigMap writes; D tried ${dTriesAfterRestore.length} writes after being ` +
        `reconnected (${exitedAt - restoredAt} ms before it exited), ${dRefusedAfterRestore.length} refused locally`,
    );
    expect(late).toEqual([]);
    expect(afterLoss).toEqual([]);
    // The test could have failed: D kept trying to write while connected again, and E did write.
    expect(dTriesAfterRestore.length).toBeGreaterThan(0);
    expect(dRefusedAfterRestore).toEqual(dTriesAfterRestore);
    expect(byEAfter.length).toBeGreaterThan(0);
    // No drain: done() rejected right when D stopped leading, though its reconciles never end.
    const dDone = j.find((l) => l.who === "D" && l.what === "lost")!;
    expect(dDone.at - dLost.at).toBeLessThan(2_000);
    // D stopped before its lease could be taken over, and E only took over after that.
    expect(dLost.at).toBeLessThan(takeoverPossibleAt);
    expect(eLeads.at).toBeGreaterThanOrEqual(takeoverPossibleAt - 1_000);
    // Fences: passed while leading, refused from the loss on, also once the API server was reachable again.
    const dFences = j.filter((l) => l.who === "D" && /fence/.test(l.what));
    expect(dFences.some((l) => l.what === "fence-ok" && l.at < cutAt)).toBe(true);
    expect(dFences.filter((l) => l.at >= dLost.at && /-ok$/.test(l.what))).toEqual([]);
    const refusedAfterRestore = dFences.filter(
      (l) => l.what === "after-loss-fence-refused" && l.at > restoredAt,
    );
    expect(refusedAfterRestore.length).toBeGreaterThan(0);
    console.log(`[fencing] a fence after the loss: ${refusedAfterRestore[0]!.detail}`);
  });
});

describe("a slow lease renewal", () => {
  let proxy: FaultProxy | undefined;
  afterAll(() => proxy?.close());

  it("cannot stretch the renew deadline past the record's expiry: the deadline runs from the renewal's start", async () => {
    const ns = await freshNamespace(admin, "slow-renew");
    const leaderKc = new KubeConfig();
    leaderKc.loadFromFile(await userKubeconfig(`${LEADER_USER}-slow`));
    proxy = await startFaultProxy(leaderKc);
    const viaProxy = join(dir, "slow-via-proxy.kubeconfig");
    writeFileSync(viaProxy, proxy.kubeConfig().exportConfig());
    const s = candidate("S", ns, viaProxy);
    const sExit = new Promise<number | null>((resolve) => s.once("exit", (code) => resolve(code)));
    await eventually(
      "S to lead",
      () => readJournal().some((l) => l.who === "S" && l.what === "leading"),
      60_000,
    );
    type LeaseObj = { spec: { holderIdentity: string; renewTime: string; leaseDurationSeconds: number } };
    const readLease = () =>
      admin.get<LeaseObj>(
        { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
        { namespace: ns, name: "fencing-leader" },
      );
    // Renewals now reach the server at once, but S hears back only 7 s later.
    proxy.delayResponses({ method: "PUT", pathPart: "/leases/", ms: 7_000 });
    const before = (await readLease()).spec.renewTime;
    const renewed = await eventually(
      "a renewal to land while its answer is held",
      async () => {
        const now = (await readLease()).spec.renewTime;
        return now !== before ? { renewTime: now, seenAt: Date.now() } : undefined;
      },
      30_000,
    );
    // Once S has its (late) answer, cut it off: no renewal after this one can land.
    await sleep(Math.max(0, renewed.seenAt + 7_500 - Date.now()));
    proxy.cut();
    const lease = await readLease();
    expect(lease.spec.renewTime).toBe(renewed.renewTime);
    const takeoverPossibleAt = Date.parse(lease.spec.renewTime) + lease.spec.leaseDurationSeconds * 1000;
    expect(await sExit).toBe(1);
    const stopped = readJournal().find((l) => l.who === "S" && l.what === "not-leading")!;
    console.log(
      `[fencing] slow renewal: S stopped ${stopped.at - Date.parse(lease.spec.renewTime)} ms after the renewTime it wrote; its lease could be taken over after ${lease.spec.leaseDurationSeconds * 1000} ms`,
    );
    // Counted from when the answer arrived (7 s late), S would have led until ~17 s after renewTime.
    expect(stopped.at).toBeLessThan(takeoverPossibleAt);
  });
});

describe("an aborted reconcile's client", () => {
  it("refuses a write issued after the abort locally: it never reaches the API server (audit log)", async () => {
    const ns = await freshNamespace(admin, "aborted");
    await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "target", namespace: ns } });
    const kc = new KubeConfig();
    kc.loadFromFile(await userKubeconfig(ABORT_USER));
    const manager = new Manager({
      kubeConfig: kc,
      namespace: ns,
      logger: createLogger({ level: "error" }),
      gracefulShutdownTimeoutMs: 10_000,
    });
    let outcome: { before: string; after: unknown } | undefined;
    let inReconcile!: () => void;
    const reconciling = new Promise<void>((r) => {
      inReconcile = r;
    });
    manager.addController({
      name: "aborted-writer",
      for: CONFIGMAP,
      async reconcile(req, ctx) {
        if (outcome || req.name !== "target") return;
        const key = { namespace: ns, name: req.name };
        const written = await ctx.client.patch<{ metadata: { resourceVersion: string } }>(
          CONFIGMAP,
          key,
          { data: { phase: "before-abort" } },
          "merge",
        );
        inReconcile();
        // Waits past the abort without giving up, as a reconciler that ignores its signal would.
        await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
        const after = await ctx.client
          .patch(CONFIGMAP, key, { data: { phase: "after-abort" } }, "merge")
          .then(
            () => "written",
            (err: unknown) => err,
          );
        outcome = { before: written.metadata.resourceVersion, after };
      },
    });
    await manager.start();
    await reconciling;
    const stopping = manager.stop(); // aborts in-flight reconciles after its 1 s grace
    await eventually("the reconcile to try its write after the abort", () => outcome, 15_000);
    await stopping;
    expect(outcome!.after).toBeInstanceOf(Error);
    expect(String(outcome!.after)).toMatch(/stopping/);
    const cm = await admin.get<{ data?: Record<string, string> }>(CONFIGMAP, {
      namespace: ns,
      name: "target",
    });
    expect(cm.data).toEqual({ phase: "before-abort" });
    // The audit log holds the write before the abort and nothing after it: the refused one never left.
    await sleep(1_000);
    const mine = auditWrites().filter((w) => w.user === ABORT_USER);
    expect(mine.map((w) => `${w.verb} ${w.resource} ${w.name} ${w.code}`)).toEqual([
      "patch configmaps target 200",
    ]);
  });
});

describe("ctx.fence on a real Lease", () => {
  it("passes while leading; refuses once another holder is recorded or the record's own leaseDurationSeconds has passed", async () => {
    const ns = await freshNamespace(admin, "fence");
    await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe", namespace: ns } });
    const LEASE = { apiVersion: "coordination.k8s.io/v1", kind: "Lease" } as const;
    type LeaseObj = { metadata: { resourceVersion: string }; spec: Record<string, unknown> };
    const manager = new Manager({
      kubeConfig: cp.kubeConfig(),
      namespace: ns,
      logger: createLogger({ level: "error" }),
      leaderElection: { name: "fence-lease", namespace: ns, identity: "me" },
    });
    const results: string[] = [];
    manager.addController({
      name: "fence-probe",
      for: CONFIGMAP,
      async reconcile(_req, ctx) {
        await ctx.fence("probe").then(
          () => results.push("ok"),
          (err: unknown) => results.push(String(err)),
        );
      },
    });
    await manager.start();
    await eventually("a fenced reconcile while leading", () => results.includes("ok"), 30_000);
    await manager.fence("direct call while leading");

    // The elector renews every 2 s: rewrite the record on a fresh read, again if it renewed in between.
    const rewrite = async (change: (spec: Record<string, unknown>) => Record<string, unknown>) => {
      for (;;) {
        const current = await admin.get<LeaseObj>(LEASE, { namespace: ns, name: "fence-lease" });
        try {
          return await admin.replace({ ...current, spec: change(current.spec) } as never);
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
    };
    // The record's duration, not the local 15 s: a renewTime 3 s old on a 1 s lease has expired. Should
    // the elector renew between the rewrite and the fence (it does every 2 s), the fence rightly passes:
    // try again then.
    let expiredRefusal: unknown;
    for (let attempt = 0; attempt < 5 && !expiredRefusal; attempt++) {
      await rewrite((spec) => ({
        ...spec,
        leaseDurationSeconds: 1,
        renewTime: microTime(new Date(Date.now() - 3_000)),
      }));
      expiredRefusal = await manager.fence("delete VM").then(
        async () => {
          const now = await admin.get<LeaseObj>(LEASE, { namespace: ns, name: "fence-lease" });
          expect(now.spec["leaseDurationSeconds"]).toBe(15); // passed only because it was renewed meanwhile
          return undefined;
        },
        (err: unknown) => err,
      );
    }
    expect(String(expiredRefusal)).toMatch(/fence before delete VM refused: the lease expires at/);

    // Another holder (a standby that took over, as this process would learn only at its next renewal).
    await rewrite((spec) => ({
      ...spec,
      holderIdentity: "intruder",
      renewTime: microTime(new Date()),
      leaseDurationSeconds: 15,
    }));
    expect(manager.isLeader()).toBe(true); // the elector has not noticed yet: only the live read does
    await expect(manager.fence("bootstrap")).rejects.toThrow(/the lease is held by "intruder"/);
    results.length = 0;
    await admin.patch(CONFIGMAP, { namespace: ns, name: "probe" }, { data: { again: "1" } }, "merge");
    await eventually("the reconcile's fence to answer", () => results.length > 0 && results, 10_000);
    expect(results[0]).toMatch(/FencingError: fence before probe refused/);
    await manager.stop();
  });
});

describe("deleteExactly on a real API server", () => {
  it("refuses (409) to delete a same-named successor or a changed object; deletes the very object read", async () => {
    const ns = await freshNamespace(admin, "exact");
    const key = { namespace: ns, name: "victim" };
    const cm = (): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { ...key } });
    const first = await admin.create(cm());
    // Another actor deletes and recreates it: same name, new uid.
    await admin.delete(CONFIGMAP, key);
    const successor = await admin.create(cm());
    await expect(deleteExactly(admin, first)).rejects.toMatchObject({ code: 409 });
    // Changed since it was read: same uid, newer resourceVersion.
    await admin.patch(CONFIGMAP, key, { data: { changed: "yes" } }, "merge");
    await expect(deleteExactly(admin, successor)).rejects.toMatchObject({ code: 409 });
    expect((await admin.get(CONFIGMAP, key)).metadata?.uid).toBe(successor.metadata?.uid);
    await deleteExactly(admin, await admin.get(CONFIGMAP, key));
    expect(await admin.getOrUndefined(CONFIGMAP, key)).toBeUndefined();
  });
});
