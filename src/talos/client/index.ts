export * from "./errors.ts";
export * from "./talos-client.ts";
