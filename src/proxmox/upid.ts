// Proxmox task ids (pve-common src/PVE/UPID.pm):
//   UPID:$node:$pid:$pstart:$starttime:$type:$id:$user:
// pid and starttime are 8 uppercase hex digits, pstart 8 or 9. A task runs on the node its UPID names,
// so its status must be polled there.

export interface Upid {
  /** The UPID text exactly as Proxmox returned it. */
  readonly raw: string;
  readonly node: string;
  readonly pid: number;
  readonly pstart: number;
  /** Start time, seconds since the epoch. */
  readonly starttime: number;
  /** Task type, e.g. qmcreate, qmstart, download, vzdump. */
  readonly type: string;
  /** What the task acts on, e.g. the VM id; may be empty. */
  readonly id: string;
  readonly user: string;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export function parseUpid(raw: string): Upid {
  const m = UPID_RE.exec(raw);
  if (!m) throw new Error(`not a Proxmox task id (UPID): ${JSON.stringify(raw.slice(0, 200))}`);
  return {
    raw,
    node: m[1]!,
    pid: Number.parseInt(m[3]!, 16),
    pstart: Number.parseInt(m[4]!, 16),
    starttime: Number.parseInt(m[5]!, 16),
    type: m[6]!,
    id: m[7]!,
    user: m[8]!,
  };
}

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, "0");

export function formatUpid(task: Omit<Upid, "raw">): string {
  return `UPID:${task.node}:${hex(task.pid, 8)}:${hex(task.pstart, 8)}:${hex(task.starttime, 8)}:${task.type}:${task.id}:${task.user}:`;
}

/** pve-common UPID.pm: a task succeeded when its exit status is "OK" or "WARNINGS: <n>". */
export function taskSucceeded(exitstatus: string): boolean {
  return exitstatus === "OK" || /^WARNINGS: \d+$/.test(exitstatus);
}
