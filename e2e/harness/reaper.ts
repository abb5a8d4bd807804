// Watchdog for one control plane, started detached by control-plane.ts: if the process that started the
// control plane dies without tearing it down (SIGKILL, a crashed test runner, Ctrl-C mid-setup), this kills
// the recorded child processes and removes the temp folder, so nothing is left behind.
// Usage: node reaper.ts <parentPid> <controlPlaneDir>
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const [parentArg, dir] = process.argv.slice(2);
const parentPid = Number(parentArg);
if (!Number.isInteger(parentPid) || !dir) {
  console.error("usage: reaper.ts <parentPid> <dir>");
  process.exit(2);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function reap(): void {
  const pidFile = join(dir as string, "pids");
  const pids = existsSync(pidFile)
    ? readFileSync(pidFile, "utf8")
        .split("\n")
        .map(Number)
        .filter((p) => Number.isInteger(p) && p > 0)
    : [];
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(dir as string, { recursive: true, force: true });
}

const timer = setInterval(() => {
  if (!existsSync(dir)) {
    clearInterval(timer);
    return; // torn down normally
  }
  if (!isAlive(parentPid)) {
    clearInterval(timer);
    reap();
  }
}, 500);
