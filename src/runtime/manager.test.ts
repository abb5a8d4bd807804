import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { Manager } from "./manager.ts";

// No API server: addController only wires metrics and queues, nothing is dialled.
function manager(maxConcurrentReconciles?: number): Manager {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return new Manager({ kubeConfig: kc, ...(maxConcurrentReconciles ? { maxConcurrentReconciles } : {}) });
}

const spec = (name: string, own?: number) => ({
  name,
  for: { apiVersion: "v1", kind: "ConfigMap" },
  ...(own ? { maxConcurrentReconciles: own } : {}),
  reconcile: async () => undefined,
});

describe("maxConcurrentReconciles", () => {
  it("MAX_CONCURRENT_RECONCILES is parsed (default 8) and rejected when not a positive integer", () => {
    expect(loadConfig({ KUBECONFIG: "/nonexistent" }).maxConcurrentReconciles).toBe(8);
    expect(
      loadConfig({ KUBECONFIG: "/nonexistent", MAX_CONCURRENT_RECONCILES: "3" }).maxConcurrentReconciles,
    ).toBe(3);
    expect(() => loadConfig({ KUBECONFIG: "/nonexistent", MAX_CONCURRENT_RECONCILES: "0" })).toThrow();
  });

  it("the manager's value is the workers of a controller that sets none; a controller's own value wins", async () => {
    const m = manager(5);
    m.addController(spec("defaulted"));
    m.addController(spec("own", 2));
    const text = await m.metrics.registry.metrics();
    expect(text).toMatch(/controller_runtime_max_concurrent_reconciles\{controller="defaulted"\} 5\b/);
    expect(text).toMatch(/controller_runtime_max_concurrent_reconciles\{controller="own"\} 2\b/);
    const plain = manager();
    plain.addController(spec("one"));
    expect(await plain.metrics.registry.metrics()).toMatch(
      /controller_runtime_max_concurrent_reconciles\{controller="one"\} 1\b/,
    );
  });

  it("without leader election, fence passes (one replica)", async () => {
    await expect(manager().fence("anything")).resolves.toBeUndefined();
  });
});
