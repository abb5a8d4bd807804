// Runs `npm start`'s process (node src/main.ts) in local mode against a state folder of the test's own
// (XDG_DATA_HOME), and reads what it prints.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { ensureControlPlaneBinaries, ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { parsePids } from "../../src/local/control-plane/stale.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import { helmBinary } from "../components/workload.ts";
import { waitFor } from "../harness/wait.ts";

export interface LocalProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
  /** The management cluster's kubeconfig path the process printed. */
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
}

/**
 * What a local homelab with the chart mirror needs before `npm start`: KWOK and the pinned Helm in the
 * peer cache (where local mode looks for them), and a data folder of the suite's own.
 */
export async function prepareChartedLocal(prefix: string): Promise<{ dataHome: string; stateDir: string }> {
  await ensureKwokBinary();
  await helmBinary();
  const dataHome = await mkdtemp(join(tmpdir(), prefix));
  return { dataHome, stateDir: join(dataHome, "homelab-operator", "local") };
}

export async function startLocal(dataHome: string, args: string[] = []): Promise<LocalProcess> {
  const healthPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOMELAB_LOCAL: "true",
    XDG_DATA_HOME: dataHome,
    HEALTH_PORT: String(healthPort),
    LOG_LEVEL: "info",
    KUBECONFIG: "",
  };
  delete env.HOMELAB_LOCAL_RESET;
  const child = spawn(process.execPath, ["src/main.ts", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const exitedEarly = exited.then((code) => {
    throw new Error(`npm start exited with ${code} before it was ready`);
  });
  // Only the race below reads it; a later exit (the test stopping it) must not be an unhandled rejection.
  exitedEarly.catch(() => {});
  await Promise.race([
    waitFor(
      "the local operator's /readyz to answer 200",
      // Its own "running" line first: the port alone could be answered by another process meanwhile.
      async () =>
        out.includes("homelab-operator is running") &&
        (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok
          ? true
          : undefined,
      600_000,
      250,
    ),
    exitedEarly,
  ]).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw new Error(`${(err as Error).message}\n--- output ---\n${out.slice(-4000)}`);
  });
  const kubeconfigPath = /export KUBECONFIG=([^\s"]+)/.exec(out)?.[1];
  if (!kubeconfigPath) throw new Error(`no kubeconfig printed:\n${out}`);
  return {
    child,
    pid: child.pid ?? 0,
    output: () => out,
    exited,
    kubeconfigPath,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
  };
}

/**
 * The processes the local homelab started (both control planes and kwok), from their pid files. Parsed
 * as the reaper parses them: the first line is the owner's start time, not a pid.
 */
export function recordedPids(stateDir: string): number[] {
  const pids: number[] = [];
  for (const cluster of ["management", "workload"]) {
    const dir = join(stateDir, cluster);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((f) => f.startsWith("pids-")))
      pids.push(...parsePids(readFileSync(join(dir, f), "utf8")));
  }
  return pids;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills a suite's `npm start`, waits for its reapers to stop what it left, and removes its data folder. */
export async function removeLocal(
  local: LocalProcess | undefined,
  stateDir: string,
  dataHome: string | undefined,
) {
  local?.child.kill("SIGKILL");
  if (local) await local.exited;
  await waitFor(
    "the local homelab's processes to be gone",
    () => (existsSync(stateDir) ? recordedPids(stateDir).every((p) => !alive(p)) : true),
    30_000,
  ).catch(() => {});
  if (dataHome) await rm(dataHome, { recursive: true, force: true });
}

type Run = (...args: string[]) => Promise<{ stdout: string; stderr: string }>;

/** A client of the local management cluster, and kubectl pointed at it (as a user's shell would be). */
export async function managementCluster(local: LocalProcess): Promise<{ kube: KubeClient; run: Run }> {
  const { kubectl } = await ensureControlPlaneBinaries();
  const env = { ...process.env, KUBECONFIG: local.kubeconfigPath };
  return {
    kube: new KubeClient(local.kubeConfig()),
    run: (...args: string[]) => promisify(execFile)(kubectl, args, { env }),
  };
}

/**
 * The README's steps after `npm start`: the migrations' namespace, then `kubectl apply -f examples/`
 * (twice, see applyExamples) until the namespace `namespace` a PeerTenant makes exists.
 */
export async function applySeedExamples(
  kube: KubeClient,
  run: Run,
  namespace = "peers-alice",
): Promise<string[]> {
  await run("create", "namespace", "infra");
  return applyExamples(run, () =>
    kube.getOrUndefined({ apiVersion: "v1", kind: "Namespace" }, { name: namespace }),
  );
}

/**
 * The README's `kubectl apply -f examples/`, twice: the first apply cannot create the AppVending (its
 * namespace peers-alice is made by the alice PeerTenant); the second can once that namespace exists and
 * kube-controller-manager has counted the tenant's AppVending quota — until then quota admission refuses
 * with "status unknown for quota", which a user meets too and answers by applying again.
 * Returns the first apply's error lines so a test can check they are only the expected ones.
 */
export async function applyExamples(run: Run, namespaceExists: () => Promise<unknown>): Promise<string[]> {
  const stderrOf = (err: unknown) => (err as { stderr?: string }).stderr ?? String(err);
  const first = await run("apply", "-f", "examples/").then(() => "", stderrOf);
  await waitFor("the peers-alice namespace of the alice PeerTenant", namespaceExists, 120_000, 500);
  const second = await waitFor(
    "the second kubectl apply -f examples/ to get past the uncounted AppVending quota",
    async () => {
      const out = await run("apply", "-f", "examples/").then(() => "", stderrOf);
      return /status unknown for quota: tenant-vending-quota/.test(out) ? undefined : out;
    },
    180_000,
    2_000,
  );
  if (second !== "") throw new Error(`the second kubectl apply -f examples/ failed:\n${second}`);
  return first.split("\n").filter((l) => l.startsWith("Error"));
}
