// Each owner of a control-plane folder records the processes it started in `pids-<owner pid>`. An owner
// killed with SIGKILL leaves that file (and, until its reaper notices, the processes) behind; the next
// owner of a kept folder must stop them before it starts etcd on the same data.
// The file's first line records the owner's start time (`owner-start <ticks>`, /proc/<pid>/stat field 22):
// a pid alone cannot tell the owner from a process that got its pid after a reboot or pid reuse, and
// would refuse the folder forever ("in use by process N", `--reset` included).
import { readFileSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export function pidFileName(ownerPid: number): string {
  return `pids-${ownerPid}`;
}

const OWNER_START = "owner-start";

/** The first line of an owner's pid file: who it is, beyond its pid. */
export function ownerLine(pid: number = process.pid): string {
  const start = processStartTime(pid);
  if (start === undefined) throw new Error(`cannot read the start time of process ${pid}`);
  return `${OWNER_START} ${start}\n`;
}

/** The owner's start time recorded in a pid file's text; undefined for a file without one. */
export function recordedStartTime(text: string): string | undefined {
  const first = text.split("\n", 1)[0] ?? "";
  const [tag, value] = first.split(" ");
  return tag === OWNER_START && value ? value : undefined;
}

/** Field 22 of /proc/<pid>/stat: clock ticks after boot at which the process started; undefined if gone. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may hold spaces or ')': the fields after it follow the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[22 - 3];
}

/**
 * Whether the owner recorded in a pid file still runs: its pid is alive and started when recorded. A file
 * without a start time (written before it was recorded) falls back to the pid alone.
 */
export function ownerAlive(pid: number, recordedStart: string | undefined): boolean {
  if (!isAlive(pid)) return false;
  if (recordedStart === undefined) return true;
  const start = processStartTime(pid);
  // Unreadable while kill(pid, 0) succeeds: no /proc (not Linux) or hidden; trust the pid then.
  return start === undefined || start === recordedStart;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when `pid` runs with `dir` on its command line: a recycled pid of an unrelated process is not. */
function runsOn(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
  } catch {
    return false;
  }
}

export function parsePids(text: string): number[] {
  return text
    .split("\n")
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0);
}

/** Kills the recorded processes of every dead owner of `dir` and waits until they are gone. */
export async function killStaleProcesses(dir: string, timeoutMs = 15_000): Promise<number[]> {
  const killed: number[] = [];
  for (const file of await readdir(dir)) {
    const owner = /^pids-(\d+)$/.exec(file)?.[1];
    if (!owner) continue;
    const path = join(dir, file);
    const text = await readFile(path, "utf8").catch(() => "");
    // A live owner (this process included: a second start on the same folder) still uses the data; a
    // process that merely has its pid now (other start time) does not.
    if (ownerAlive(Number(owner), recordedStartTime(text))) {
      throw new Error(`${dir} is in use by process ${owner}; stop it first (or remove ${path})`);
    }
    for (const pid of parsePids(text)) {
      if (!isAlive(pid) || !runsOn(pid, dir)) continue;
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    }
    await rm(path, { force: true });
  }
  const deadline = Date.now() + timeoutMs;
  while (killed.some(isAlive)) {
    if (Date.now() > deadline) throw new Error(`stale processes ${killed.join(", ")} of ${dir} did not exit`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return killed;
}
