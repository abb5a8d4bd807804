export type { SimRecord, StorageSpec } from "./cluster.ts";
export type { FaultSettings, Faults } from "./faults.ts";
export { SEED_HOMELAB_INVENTORY, type SimulatorInventory } from "./inventory.ts";
export { ALL_PRIVILEGES, type TokenAcl } from "./permissions.ts";
export {
  type ProxmoxSimulator,
  type ProxmoxSimulatorOptions,
  type RecordedRequest,
  type RemoteFile,
  type SimRecordWithOutcome,
  type SimulatorToken,
  simulatedDownload,
  startProxmoxSimulator,
} from "./server.ts";
