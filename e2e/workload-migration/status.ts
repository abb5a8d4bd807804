// What the WorkloadMigration suites read back: a migration's status and conditions, polled until a
// step shows, and the Proxmox simulator's record of what it was asked to do about a guest.
import type { KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import { type MigrationEnv, NAMESPACE, WM } from "./operator.ts";

export interface Cond {
  type: string;
  status: string;
  reason: string;
  message?: string;
}
export interface Status {
  phase?: string;
  conditions?: Cond[];
  cutoverTime?: string;
  finalSyncTime?: string;
  rollbackMessage?: string;
  [k: string]: unknown;
}

/** The condition of `type`, if the status has one. */
export const cond = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);

export interface StatusOptions {
  /** How long waitStatus waits unless the call says otherwise (each suite gives its own). */
  timeoutMs?: number;
  /** How often it reads the status. */
  intervalMs?: number;
  /** The namespace of the migration of this name (NAMESPACE unless the suite gives each its own). */
  namespaceOf?: (name: string) => string;
  /** What waitFor is told it waits for; "<name>: <what>" unless given. */
  label?: (name: string, what: string) => string;
  /** The words before the last status seen in a timeout's message; "last status: " unless given. */
  lastStatus?: string;
}

/**
 * statusOf and waitStatus for the migrations of a suite whose env is made in its beforeAll (hence the
 * getter). waitStatus polls until `ok` holds and returns that status; timed out, it throws waitFor's
 * message with the last status seen, the first thing a reader of a failure needs.
 */
export function migrationStatus(env: () => Pick<MigrationEnv, "admin">, options: StatusOptions = {}) {
  const namespaceOf = options.namespaceOf ?? (() => NAMESPACE);
  const label = options.label ?? ((name: string, what: string) => `${name}: ${what}`);
  const lastStatus = options.lastStatus ?? "last status: ";
  const statusOf = async (name: string): Promise<Status> =>
    ((await env().admin.get<KubeObject>(WM, { namespace: namespaceOf(name), name })).status ?? {}) as Status;
  const waitStatus = async (
    name: string,
    what: string,
    ok: (s: Status) => boolean,
    timeoutMs = options.timeoutMs ?? 120_000,
  ): Promise<Status> => {
    let last: Status = {};
    try {
      return await waitFor(
        label(name, what),
        async () => {
          last = await statusOf(name);
          return ok(last) ? last : undefined;
        },
        timeoutMs,
        options.intervalMs ?? 200,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${lastStatus}${JSON.stringify(last)}`);
    }
  };
  return { statusOf, waitStatus };
}

/** The simulator's records about a guest: all of them, and those other than its creation and starts. */
export function simRecords(env: () => Pick<MigrationEnv, "sim">) {
  const recordsOf = (vmid: number) =>
    env()
      .sim.records()
      .filter((r) => r.vmid === vmid);
  const changesOf = (vmid: number) =>
    recordsOf(vmid).filter((r) => r.kind !== "vm-create" && r.action !== "start");
  return { recordsOf, changesOf };
}
