// Watchdog for one control plane, started detached by control-plane.ts: if the process that started the
// control plane dies without tearing it down (SIGKILL, a crashed test runner, Ctrl-C mid-setup), this kills
// the recorded child processes and removes the folder (or, for a kept folder, only the pid file), so
// nothing is left running.
// Usage: node reaper.ts <parentPid> <controlPlaneDir> <keep|remove>
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ownerAlive, parsePids, pidFileName, recordedStartTime } from "./stale.ts";

const [parentArg, dir, disposition] = process.argv.slice(2);
const parentPid = Number(parentArg);
if (!Number.isInteger(parentPid) || !dir || (disposition !== "keep" && disposition !== "remove")) {
  console.error("usage: reaper.ts <parentPid> <dir> <keep|remove>");
  process.exit(2);
}
const pidFile = join(dir, pidFileName(parentPid));

/** The pid file's text; empty once removed (a normal teardown may remove it between two checks). */
function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function reap(): void {
  const pids = existsSync(pidFile) ? parsePids(readFileSync(pidFile, "utf8")) : [];
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (disposition === "remove") rmSync(dir as string, { recursive: true, force: true });
  else rmSync(pidFile, { force: true });
}

const timer = setInterval(() => {
  if (!existsSync(pidFile)) {
    clearInterval(timer);
    return; // torn down normally (or a later owner of the kept folder already stopped the processes)
  }
  // The start time tells the parent from a process that took its pid after it died.
  if (!ownerAlive(parentPid, recordedStartTime(readOrEmpty(pidFile)))) {
    clearInterval(timer);
    reap();
  }
}, 500);
