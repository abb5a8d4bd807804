// The simulator's state on disk, so a local homelab resumes after its process stops or is killed: VMs,
// storage volumes, HA resources and rules, tasks and the records tests count. One JSON file, written
// to a temporary name and renamed, so a kill mid-write leaves the previous state intact.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SimCluster, SimRecord, Vm, Volume } from "./cluster.ts";
import type { HaResource, HaRule } from "./ha.ts";
import type { SimTask, TaskRunner } from "./tasks.ts";

const FILE = "proxmox-simulator.json";
const FORMAT = 1;

interface SavedState {
  format: number;
  nodes: string[];
  vms: Vm[];
  volumes: [string, Volume[]][];
  ha: { resources: HaResource[]; rules: HaRule[]; order: number };
  tasks: { tasks: SimTask[]; nextPid: number };
  records: SimRecord[];
}

export function saveState(dir: string, cluster: SimCluster, tasks: TaskRunner): void {
  const state: SavedState = {
    format: FORMAT,
    nodes: cluster.nodes,
    vms: [...cluster.vms.values()],
    volumes: [...cluster.volumes.entries()],
    ha: cluster.ha.snapshot(),
    tasks: tasks.snapshot(),
    records: cluster.records,
  };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(state));
  renameSync(`${file}.tmp`, file);
}

/**
 * Loads a saved state into a fresh cluster; false when the folder holds none. Work that was cut off
 * with the process is settled the way Proxmox's own error paths leave it: a VM whose create task never
 * finished is removed with the disks it got, and the locks of other interrupted tasks are released.
 */
export function loadState(dir: string, cluster: SimCluster, tasks: TaskRunner): boolean {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  const state = JSON.parse(text) as SavedState;
  if (state.format !== FORMAT) throw new Error(`unknown simulator state format ${state.format} in ${dir}`);
  const missing = state.nodes.filter((n) => !cluster.nodes.includes(n));
  if (missing.length)
    throw new Error(`saved simulator state has nodes this simulator lacks: ${missing.join(", ")}`);
  cluster.vms.clear();
  for (const vm of state.vms) cluster.vms.set(vm.vmid, vm);
  cluster.volumes.clear();
  for (const [key, list] of state.volumes) cluster.volumes.set(key, list);
  cluster.ha.restore(state.ha);
  cluster.records.splice(0, cluster.records.length, ...state.records);
  for (const task of tasks.restore(state.tasks)) {
    const vmid = Number(task.id);
    const vm = cluster.vms.get(vmid);
    if (!vm?.lock) continue;
    if ((task.type === "qmcreate" || task.type === "vzcreate") && vm.lock === "create")
      cluster.discardVm(vmid);
    else delete vm.lock;
  }
  return true;
}
