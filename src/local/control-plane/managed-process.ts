// A child process of the control plane: output to a log file (so a failed start can be explained),
// a readiness probe, and a stop that escalates from SIGTERM to SIGKILL.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
  tailLog(lines?: number): Promise<string>;
}

export function startProcess(name: string, binary: string, args: string[], logFile: string): ManagedProcess {
  // Appended: a kept control-plane folder keeps the logs of earlier runs.
  const log = createWriteStream(logFile, { flags: "a" });
  const child: ChildProcess = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (child.pid === undefined) throw new Error(`${name} could not be started (${binary})`);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  let alive = true;
  void exited.then(() => {
    alive = false;
  });
  const tailLog = async (lines = 30) => {
    const text = await readFile(logFile, "utf8").catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  };
  return {
    name,
    pid: child.pid,
    logFile,
    exited,
    tailLog,
    async stop(graceMs = 5_000) {
      if (!alive) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** Polls `probe` until it resolves true, the process exits, or the deadline passes. */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`${proc.name} exited during start-up; last log lines:\n${await proc.tailLog()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms; last log lines:\n${await proc.tailLog()}`);
}
