export {
  type CloudInitNetwork,
  cloudInitConfig,
  formatTags,
  type HaRuleInput,
  ProxmoxClient,
  type ProxmoxClientOptions,
  type TaskResult,
  type VmConfigInput,
  type WaitOptions,
} from "./client.ts";
export * from "./errors.ts";
export type * from "./schemas.ts";
export { normalizeFingerprint, type RequestInfo, type TlsTrust } from "./transport.ts";
export { parseUpid, taskSucceeded, type Upid } from "./upid.ts";
