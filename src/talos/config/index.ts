export { DEFAULT_TALOS_VERSION } from "./defaults.ts";
export { exampleClusterInput } from "./example-input.ts";
export * from "./input.ts";
export * from "./machine-config.ts";
export { applyJson6902, applyPatches, ConfigPatchError, strategicMerge } from "./patches.ts";
export * from "./secrets.ts";
export * from "./talosconfig.ts";
export { atLeastMinor, parseVersion } from "./version.ts";
