// Asynchronous Proxmox tasks: a worker gets a real UPID at once, writes log lines, and ends after a
// while with "TASK OK" or "TASK ERROR: <reason>" (pve-common src/PVE/RESTEnvironment.pm fork_worker).
import { formatUpid, type Upid } from "../upid.ts";
import type { Faults } from "./faults.ts";

export interface SimTask {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  pid: number;
  pstart: number;
  starttime: number;
  status: "running" | "stopped";
  exitstatus?: string;
  endtime?: number;
  log: string[];
}

export interface TaskWork {
  /** Runs when the task starts; may log. Throwing fails the task at once. */
  start?: (log: (line: string) => void) => void;
  /** Runs when the task's time is up; throwing fails it with the error's message. */
  finish: (log: (line: string) => void) => void | Promise<void>;
  /** Always runs after finish or failure (e.g. to release a VM lock). */
  cleanup?: () => void;
}

export class TaskRunner {
  readonly tasks = new Map<string, SimTask>();
  /** Called after a task ended (the simulator saves its state then). */
  onEnd: (() => void) | undefined;
  private nextPid = 0x1000;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly held = new Map<string, () => void>();
  private readonly faults: Faults;
  private readonly durationMs: (type: string) => number;

  constructor(faults: Faults, durationMs: (type: string) => number) {
    this.faults = faults;
    this.durationMs = durationMs;
  }

  start(node: string, type: string, id: string, user: string, work: TaskWork): string {
    const starttime = Math.floor(Date.now() / 1000);
    const pid = this.nextPid++;
    const fields: Omit<Upid, "raw"> = { node, pid, pstart: 0x100000 + pid, starttime, type, id, user };
    const upid = formatUpid(fields);
    const task: SimTask = { ...fields, upid, status: "running", log: [] };
    this.tasks.set(upid, task);
    const log = (line: string) => task.log.push(line);
    const end = (error?: string) => {
      if (task.status === "stopped") return;
      if (error === undefined) log("TASK OK");
      else log(`TASK ERROR: ${error}`);
      task.exitstatus = error ?? "OK";
      task.status = "stopped";
      task.endtime = Math.floor(Date.now() / 1000);
      work.cleanup?.();
      this.onEnd?.();
    };
    try {
      work.start?.(log);
    } catch (err) {
      end((err as Error).message.trimEnd());
      return upid;
    }
    const complete = async () => {
      if (this.faults.taskHangs(type, id) || this.faults.nodeDown(node)) {
        this.held.set(upid, () => void complete());
        return;
      }
      const injected = this.faults.taskFailure(type, id);
      if (injected !== undefined) return end(injected);
      try {
        await work.finish(log);
        end();
      } catch (err) {
        end((err as Error).message.trimEnd());
      }
    };
    this.schedule(this.durationMs(type), () => void complete());
    return upid;
  }

  /** Every task and the next worker pid, for saving the simulator's state. */
  snapshot(): { tasks: SimTask[]; nextPid: number } {
    return { tasks: [...this.tasks.values()].map((t) => ({ ...t, log: [...t.log] })), nextPid: this.nextPid };
  }

  /**
   * Loads saved tasks. A task that was still running when the state was saved lost its worker with the
   * process: it ends as Proxmox shows such tasks, "unexpected status".
   */
  restore(state: { tasks: SimTask[]; nextPid: number }): SimTask[] {
    this.tasks.clear();
    const interrupted: SimTask[] = [];
    for (const t of state.tasks) {
      const task = { ...t, log: [...t.log] };
      if (task.status === "running") {
        task.status = "stopped";
        task.exitstatus = "unexpected status";
        task.endtime = Math.floor(Date.now() / 1000);
        interrupted.push(task);
      }
      this.tasks.set(task.upid, task);
    }
    this.nextPid = Math.max(this.nextPid, state.nextPid);
    return interrupted;
  }

  /** Re-checks held tasks after faults changed. */
  release(): void {
    const held = [...this.held.values()];
    this.held.clear();
    for (const resume of held) this.schedule(0, resume);
  }

  /** Runs fn after ms unless the simulator stops first. */
  schedule(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held.clear();
  }
}
