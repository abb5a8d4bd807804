// What the two adoption tests (a VM's tasks, a container's) share: the decommission they run, a run of
// one step against the simulator as a restarted operator sees it (the guest read live, nothing saved),
// and what the simulator was asked about the guest.
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { SimulatorWithClient } from "../../proxmox/simulator/test-support.ts";
import type { MigrationFields, MigrationRun } from "./step.ts";

/** A decommission of guest `vmid` with a backup to pbs, deleted a second after cutover, no approval. */
export function decommissionOf(vmid: number, name: string, type?: "lxc"): WorkloadMigration {
  return {
    metadata: { name, namespace: "infra" },
    spec: {
      source: { vmid, name, ...(type ? { type } : {}) },
      decommission: {
        stopVM: true,
        backup: { storage: "pbs", mode: "stop" },
        deleteAfter: "1s",
        requireApproval: false,
      },
    },
  } as unknown as WorkloadMigration;
}

/** One step's run for `wm` with `fields`, the guest as the simulator has it now. */
export async function runOf(
  s: SimulatorWithClient,
  wm: WorkloadMigration,
  fields: MigrationFields,
): Promise<MigrationRun> {
  const vm = await s.client.locateVm(wm.spec.source!.vmid);
  return {
    wm,
    obj: { metadata: { name: wm.metadata.name } },
    fields,
    ctx: { fence: async () => {} } as unknown as MigrationRun["ctx"],
    target: undefined as unknown as MigrationRun["target"],
    local: true,
    proxmox: s.client,
    vm: vm!,
    now: new Date(),
    save: async () => {},
  };
}

/** The simulator's records about guest `vmid` of `kind` (and `action`). */
export const askedAbout = (s: SimulatorWithClient, vmid: number, kind: string, action?: string) =>
  s.sim.records().filter((r) => r.vmid === vmid && r.kind === kind && (!action || r.action === action));
