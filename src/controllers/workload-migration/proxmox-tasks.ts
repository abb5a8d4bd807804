// A Proxmox task remembered in status: one poll says whether it still runs and how it ended, so a
// restarted operator waits on the task it started instead of starting another.
import { type ProxmoxClient, parseUpid, taskSucceeded } from "../../proxmox/index.ts";

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
