// A Proxmox task remembered in status: one poll says whether it still runs and how it ended, so a
// restarted operator waits on the task it started instead of starting another.
import { type ProxmoxClient, parseUpid, taskSucceeded } from "../../proxmox/index.ts";
import type { GuestTaskType } from "./guest.ts";

export type TaskState = { running: true } | { running: false; ok: boolean; exitstatus: string };

export async function pollTask(proxmox: ProxmoxClient, raw: string): Promise<TaskState> {
  const s = await proxmox.taskStatus(parseUpid(raw));
  if (s.status === "running") return { running: true };
  const exitstatus = s.exitstatus ?? "unexpected status";
  return { running: false, ok: taskSucceeded(exitstatus), exitstatus };
}

/** The HA resource of a VM, or undefined when HA does not manage it. */
export async function haResourceOf(proxmox: ProxmoxClient, sid: string) {
  return (await proxmox.listHaResources()).find((r) => r.sid === sid);
}

/**
 * The newest task of `type` about `vmid` on `node`: running ones only, or finished ones too. The
 * operator can die between asking Proxmox for a task and saving its id in status; a restart finds the
 * task it started here and waits on it, instead of asking a second time.
 */
export async function taskAbout(
  proxmox: ProxmoxClient,
  node: string,
  /** qmshutdown/vzshutdown, qmstart/vzstart, qmdestroy/vzdestroy or vzdump (guest.ts TASK_TYPES). */
  type: GuestTaskType,
  vmid: number,
  source: "active" | "all",
  /** Only a task run as this Proxmox user (`user@realm!tokenid`, the UPID's user). */
  user?: string,
): Promise<{ upid: string; status?: string } | undefined> {
  const tasks = await proxmox.listTasks(node, { source, typefilter: type, vmid });
  return tasks.find(
    (t) =>
      t.type === type && t.id === String(vmid) && (user === undefined || parseUpid(t.upid).user === user),
  );
}
