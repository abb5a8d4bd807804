// A Talos machine answers only while its VM runs, as a real one does: a seed machine of the Talos
// simulator is powered on while the Proxmox simulator has a running VM of its name, and off otherwise
// (no VM yet, stopped, or purged). Without this the machines would answer at the seed's addresses
// before any VM exists, and the HomelabCluster's Validate rightly refuses addresses already in use.
import type { SimCluster } from "../proxmox/simulator/cluster.ts";
import type { TalosSimulator } from "../talos/simulator/simulator.ts";

/** Which machines should be powered on: those whose VM (found by name) is running. */
export function poweredMachines(
  vms: Iterable<{ status: string; config: Record<string, unknown> }>,
  machines: readonly string[],
): Map<string, boolean> {
  const running = new Set<string>();
  for (const vm of vms) if (vm.status === "running") running.add(String(vm.config["name"] ?? ""));
  return new Map(machines.map((m) => [m, running.has(m)]));
}

/**
 * Keeps each machine's power matching its VM, checked every `intervalMs`, until stopped. With
 * `wipeDisks`, a machine whose VM is destroyed also loses its disk (`wipeDisk`): a VM created again
 * under that name boots from the image, as a recreated VM does.
 */
export function followVmPower(
  proxmox: { cluster: SimCluster },
  talos: Pick<TalosSimulator, "faults"> & Partial<Pick<TalosSimulator, "wipeDisk">>,
  machines: readonly string[],
  onError: (err: unknown) => void,
  intervalMs = 200,
  options: { wipeDisks?: boolean } = {},
): { ready: Promise<void>; stop(): Promise<void> } {
  const powered = new Map<string, boolean>();
  /** The VM behind each machine (vmid and vmgenid, which Proxmox generates anew for every VM). */
  const identity = new Map<string, string>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const setPower = async (machine: string, on: boolean) => {
    if (powered.get(machine) === on) return;
    await talos.faults.nodeDown(machine, !on);
    powered.set(machine, on);
  };
  const pass = async () => {
    const vms = [...proxmox.cluster.vms.values()];
    for (const [machine, on] of poweredMachines(vms, machines)) {
      if (options.wipeDisks) {
        const named = vms.filter((v) => String(v.config["name"] ?? "") === machine);
        const vm = named.find((v) => v.status === "running") ?? named[0];
        const id = vm ? `${vm.vmid}/${String(vm.config["vmgenid"] ?? "")}` : undefined;
        const before = identity.get(machine);
        // Destroyed, or another VM under its name already: the disk the machine had is gone.
        if (before !== undefined && before !== id) {
          await setPower(machine, false);
          talos.wipeDisk?.(machine);
        }
        if (id) identity.set(machine, id);
        else identity.delete(machine);
      }
      await setPower(machine, on);
    }
  };

  let running = pass();
  const tick = () => {
    running = pass()
      .catch((err: unknown) => {
        if (!stopped) onError(err);
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  const ready = running.finally(() => {
    if (!stopped) timer = setTimeout(tick, intervalMs);
  });
  return {
    ready,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => {});
    },
  };
}
