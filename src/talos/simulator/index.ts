export type { NodeMode } from "./node.ts";
export * from "./simulator.ts";
