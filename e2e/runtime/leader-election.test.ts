import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/control-plane/ports.ts";
import type { KubeClient } from "../../src/runtime/client.ts";
import { vendingGuardrailsCleanup } from "../app-vending/guardrails.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { startFaultProxy } from "./fault-proxy.ts";
import { adminClient, CONFIGMAP, eventually, freshNamespace, sleep } from "./support.ts";

// Production timings (controller-runtime's defaults): 15 s lease, 10 s renew deadline, 2 s retry.
const LEASE_MS = 15_000;
const RETRY_MS = 2_000;

let admin: KubeClient;
let ns: string;
let dir: string;
let journal: string;
const children: ChildProcess[] = [];
let ticker: NodeJS.Timeout | undefined;
/** Run after the processes are killed: what a test left on the shared control plane. */
const cleanups: (() => Promise<void>)[] = [];

interface Line {
  at: number;
  who: string;
  what: string;
  key?: string;
}
function readJournal(): Line[] {
  return readFileSync(journal, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [at, who, what, key] = l.split(" ");
      return { at: Number(at), who: who!, what: what!, ...(key ? { key } : {}) };
    });
}

function candidate(id: string, opts: { lease?: string; kubeconfig?: string } = {}): ChildProcess {
  const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures/leader-candidate.ts")], {
    env: {
      ...process.env,
      CANDIDATE_ID: id,
      JOURNAL: journal,
      KUBECONFIG_PATH: opts.kubeconfig ?? kubeconfigPath(),
      NAMESPACE: ns,
      LEASE: opts.lease ?? "operator-leader",
      LOG_LEVEL: process.env.LOG_LEVEL ?? "error",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(child);
  return child;
}

/** Reconcile intervals per process; a reconcile cut by SIGKILL ends at the kill. */
function intervals(lines: Line[], who: string, killedAt?: number): [number, number][] {
  const open = new Map<string, number[]>();
  const out: [number, number][] = [];
  for (const l of lines.filter((x) => x.who === who)) {
    if (l.what === "start") open.set(l.key!, [...(open.get(l.key!) ?? []), l.at]);
    if (l.what === "end") {
      const starts = open.get(l.key!)!;
      out.push([starts.shift()!, l.at]);
    }
  }
  for (const starts of open.values())
    for (const s of starts) out.push([s, killedAt ?? Number.POSITIVE_INFINITY]);
  return out;
}

function overlaps(a: [number, number][], b: [number, number][]): boolean {
  return a.some(([s1, e1]) => b.some(([s2, e2]) => s1 <= e2 && s2 <= e1));
}

beforeAll(async () => {
  admin = adminClient();
  ns = await freshNamespace(admin, "leader");
  dir = mkdtempSync(join(tmpdir(), "leader-test-"));
  journal = join(dir, "journal");
  writeFileSync(journal, "");
  for (let i = 0; i < 4; i++)
    await admin.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i}`, namespace: ns } });
  // A steady trickle of changes, so whoever leads keeps reconciling.
  let n = 0;
  ticker = setInterval(() => {
    n++;
    void admin
      .patch(CONFIGMAP, { namespace: ns, name: `cm-${n % 4}` }, { data: { n: String(n) } }, "merge")
      .catch(() => {});
  }, 250);
});

afterAll(async () => {
  clearInterval(ticker);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const cleanup of cleanups) await cleanup();
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: ns }, { ignoreNotFound: true });
  rmSync(dir, { recursive: true, force: true });
});

describe("leader election between two operator processes on one Lease", () => {
  it("only the leader reconciles; after SIGKILL the standby takes over once the 15 s lease expires (plus at most two 2 s polls), never overlapping", async () => {
    const a = candidate("A");
    await eventually(
      "A to lead and reconcile",
      () => readJournal().some((l) => l.who === "A" && l.what === "start"),
      60_000,
    );
    candidate("B");
    await eventually(
      "B to start as standby",
      () => readJournal().some((l) => l.who === "B" && l.what === "started"),
      60_000,
    );
    await sleep(5_000);
    expect(readJournal().filter((l) => l.who === "B" && l.what === "start")).toEqual([]);

    a.kill("SIGKILL");
    const killedAt = Date.now();
    const firstB = await eventually(
      "B to take over",
      () => readJournal().find((l) => l.who === "B" && l.what === "start"),
      LEASE_MS + 4 * RETRY_MS + 10_000,
    );
    const takeoverMs = firstB.at - killedAt;
    console.log(`[leader-election] takeover after SIGKILL: ${takeoverMs} ms`);
    // The standby may only act once the lease expired by its own clock (15 s after it last saw a renewal,
    // which is at most one retry period before the kill), and must do so within one more retry period.
    expect(takeoverMs).toBeGreaterThan(LEASE_MS - RETRY_MS - 1_000);
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + 2 * RETRY_MS * 1.2 + 1_000);

    const lines = readJournal();
    expect(overlaps(intervals(lines, "A", killedAt), intervals(lines, "B"))).toBe(false);
    const lease = await admin.get<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
      { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
      { namespace: ns, name: "operator-leader" },
    );
    expect(lease.spec.holderIdentity).toBe("B");
    expect(lease.spec.leaseTransitions).toBe(1);
  });

  it("on SIGTERM the leader drains, releases the lease, and a standby takes over at once", async () => {
    const c = candidate("C");
    await eventually(
      "C to start as standby",
      () => readJournal().some((l) => l.who === "C" && l.what === "started"),
      60_000,
    );
    const b = children.find((x) => x !== c && x.exitCode === null && x.signalCode === null)!;
    const exited = new Promise<number | null>((resolve) => b.once("exit", (code) => resolve(code)));
    // Signal B while a reconcile is in flight, to see it drained rather than cut.
    await eventually(
      "B to be mid-reconcile",
      () => intervals(readJournal(), "B").some(([, end]) => !Number.isFinite(end)),
      10_000,
      10,
    );
    b.kill("SIGTERM");
    const termAt = Date.now();
    expect(await exited).toBe(0);
    const firstC = await eventually(
      "C to take over",
      () => readJournal().find((l) => l.who === "C" && l.what === "start"),
      30_000,
    );
    const takeoverMs = firstC.at - termAt;
    console.log(`[leader-election] takeover after SIGTERM: ${takeoverMs} ms`);
    // Released, not expired: C needs at most one retry period, far less than the 15 s lease.
    expect(takeoverMs).toBeLessThan(RETRY_MS * 1.2 + 2_000);
    const lines = readJournal();
    // B finished every reconcile it had started before exiting (drained), and none overlaps C's.
    const bIntervals = intervals(lines, "B");
    expect(bIntervals.every(([, end]) => Number.isFinite(end))).toBe(true);
    const bExit = lines.find((l) => l.who === "B" && l.what === "exit")!;
    expect(Math.max(...bIntervals.map(([, end]) => end))).toBeLessThanOrEqual(bExit.at);
    expect(overlaps(bIntervals, intervals(lines, "C"))).toBe(false);
  });

  it("a leader cut off from the API server stops reconciling before its lease can be taken", async () => {
    const proxy = await startFaultProxy(adminKubeConfig());
    try {
      const viaProxy = join(dir, "via-proxy.kubeconfig");
      writeFileSync(viaProxy, proxy.kubeConfig().exportConfig());
      const d = candidate("D", { lease: "partition-leader", kubeconfig: viaProxy });
      await eventually(
        "D to lead and reconcile",
        () => readJournal().some((l) => l.who === "D" && l.what === "start"),
        60_000,
      );
      candidate("E", { lease: "partition-leader" });
      await eventually(
        "E to start as standby",
        () => readJournal().some((l) => l.who === "E" && l.what === "started"),
        60_000,
      );
      const dExit = new Promise<number | null>((resolve) => d.once("exit", (code) => resolve(code)));

      proxy.cut(); // D can no longer renew; its process keeps running
      const cutAt = Date.now();
      const firstE = await eventually(
        "E to take over",
        () => readJournal().find((l) => l.who === "E" && l.what === "start"),
        40_000,
      );
      const lines = readJournal();
      const dStopped = lines.find((l) => l.who === "D" && l.what === "not-leading")!;
      console.log(
        `[leader-election] partitioned leader stopped after ${dStopped.at - cutAt} ms, standby took over after ${firstE.at - cutAt} ms`,
      );
      // D gives up within the renew deadline (10 s after its last renewal), E acts only after the 15 s lease.
      expect(dStopped.at - cutAt).toBeLessThanOrEqual(10_000 + 1_500);
      expect(dStopped.at).toBeLessThan(firstE.at);
      expect(overlaps(intervals(lines, "D"), intervals(lines, "E"))).toBe(false);
      expect(await dExit).toBe(1);
    } finally {
      await proxy.close();
    }
  });
  it("the operator process (src/main.ts) exits non-zero within the renew deadline once cut off", async () => {
    const proxy = await startFaultProxy(adminKubeConfig());
    try {
      const viaProxy = join(dir, "main-via-proxy.kubeconfig");
      writeFileSync(viaProxy, proxy.kubeConfig().exportConfig());
      const operatorNs = await freshNamespace(admin, "main-lease");
      // main.ts runs every controller; the AppVending one leaves cluster-wide admission policies behind.
      cleanups.push(await vendingGuardrailsCleanup(admin));
      cleanups.push(() =>
        admin.delete({ apiVersion: "v1", kind: "Namespace" }, { name: operatorNs }, { ignoreNotFound: true }),
      );
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        KUBECONFIG: viaProxy,
        HOMELAB_OPERATOR_NAMESPACE: operatorNs,
        HEALTH_PORT: String(await freePort()),
        LEADER_ELECT: "true",
        INSTALL_CRDS: "true",
        LOG_LEVEL: "info",
      };
      const main = spawn(process.execPath, ["src/main.ts"], { env, stdio: ["ignore", "ignore", "inherit"] });
      children.push(main);
      const exited = new Promise<number | null>((resolve) => main.once("exit", (code) => resolve(code)));
      const lease = await eventually(
        "main.ts to hold the lease",
        async () => {
          const l = await admin.getOrUndefined<{ spec?: { holderIdentity?: string; renewTime?: string } }>(
            { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
            { namespace: operatorNs, name: "homelab-operator" },
          );
          return l?.spec?.holderIdentity ? l : undefined;
        },
        90_000,
        200,
      );
      expect(lease.spec?.holderIdentity).toBeTruthy();
      proxy.cut();
      const cutAt = Date.now();
      expect(await exited).toBe(1);
      const exitMs = Date.now() - cutAt;
      console.log(`[leader-election] src/main.ts exited 1 ${exitMs} ms after being cut off`);
      // Gives up at the 10 s renew deadline (counted from its last renewal, at most 2 s before the cut),
      // well before a 30 s graceful drain would have ended.
      expect(exitMs).toBeLessThanOrEqual(10_000 + 3_000);
    } finally {
      await proxy.close();
    }
  });
});
