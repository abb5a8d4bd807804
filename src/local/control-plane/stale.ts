// Each owner of a control-plane folder records the processes it started in `pids-<owner pid>`. An owner
// killed with SIGKILL leaves that file (and, until its reaper notices, the processes) behind; the next
// owner of a kept folder must stop them before it starts etcd on the same data.
import { readFileSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export function pidFileName(ownerPid: number): string {
  return `pids-${ownerPid}`;
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
    // A live owner (this process included: a second start on the same folder) still uses the data.
    if (isAlive(Number(owner))) {
      throw new Error(`${dir} is in use by process ${owner}; stop it first (or remove ${join(dir, file)})`);
    }
    const path = join(dir, file);
    for (const pid of parsePids(await readFile(path, "utf8").catch(() => ""))) {
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
