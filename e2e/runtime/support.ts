import { KubeClient } from "../../src/runtime/client.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";

export const CONFIGMAP = { apiVersion: "v1", kind: "ConfigMap" } as const;

export function adminClient(): KubeClient {
  return new KubeClient(adminKubeConfig());
}

/** A fresh namespace per test file, so suites never see each other's objects. */
export async function freshNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  return name;
}

/** Polls until the probe gives a value; the harness's waitFor, polling every 50 ms by default. */
export function eventually<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  return waitFor(what, probe, timeoutMs, intervalMs);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
