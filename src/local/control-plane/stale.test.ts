import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { killStaleProcesses, ownerLine, pidFileName, processStartTime, recordedStartTime } from "./stale.ts";

const dirs: string[] = [];
async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stale-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("killStaleProcesses: who owns a kept folder", () => {
  it("treats a recorded owner whose pid now belongs to another process (other start time) as gone", async () => {
    const dir = await folder();
    // This test process stands in for whatever got the dead owner's pid after a reboot or pid reuse:
    // alive to kill(pid, 0), but started at another time than the one recorded.
    const mine = processStartTime(process.pid)!;
    const other = String(Number(mine) + 12_345);
    await writeFile(join(dir, pidFileName(process.pid)), `owner-start ${other}\n`);
    await expect(killStaleProcesses(dir)).resolves.toEqual([]);
    expect(await readdir(dir)).toEqual([]); // the stale record is gone, the folder usable again
  });

  it("refuses a folder whose recorded owner still runs (same pid, same start time)", async () => {
    const dir = await folder();
    const file = join(dir, pidFileName(process.pid));
    await writeFile(file, ownerLine());
    await expect(killStaleProcesses(dir)).rejects.toThrow(`in use by process ${process.pid}`);
    expect(existsSync(file)).toBe(true);
  });

  it("removes the record of an owner whose pid is not running at all", async () => {
    const dir = await folder();
    // Beyond the default pid_max (4194304 at most), so no process can have it.
    await writeFile(join(dir, pidFileName(4_194_305)), "owner-start 1\n");
    await expect(killStaleProcesses(dir)).resolves.toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("owner start time", () => {
  it("reads field 22 of /proc/<pid>/stat and round-trips through the pid file's first line", () => {
    const start = processStartTime(process.pid);
    expect(start).toMatch(/^\d+$/);
    expect(recordedStartTime(`${ownerLine()}123\n456\n`)).toBe(start);
    expect(recordedStartTime("123\n456\n")).toBeUndefined();
    expect(processStartTime(4_194_305)).toBeUndefined();
  });
});
