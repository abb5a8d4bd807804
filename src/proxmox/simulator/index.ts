export type { FaultSettings, Faults } from "./faults.ts";
export { ALL_PRIVILEGES, type TokenAcl } from "./permissions.ts";
export {
  type ProxmoxSimulator,
  type ProxmoxSimulatorOptions,
  type RecordedRequest,
  type SimulatorToken,
  startProxmoxSimulator,
} from "./server.ts";
