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

/** Keeps each machine's power matching its VM, checked every `intervalMs`, until stopped. */
export function followVmPower(
  proxmox: { cluster: SimCluster },
  talos: Pick<TalosSimulator, "faults">,
  machines: readonly string[],
  onError: (err: unknown) => void,
  intervalMs = 200,
): { ready: Promise<void>; stop(): Promise<void> } {
  const powered = new Map<string, boolean>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    for (const [machine, on] of poweredMachines(proxmox.cluster.vms.values(), machines)) {
      if (powered.get(machine) === on) continue;
      await talos.faults.nodeDown(machine, !on);
      powered.set(machine, on);
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
