// Unit tests only (production code never imports this): the kubeconfig and the polling the runtime's
// unit tests share.
import { KubeConfig } from "@kubernetes/client-node";

/** A kubeconfig with one anonymous user that talks to `server` without verifying TLS. */
export function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

export const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `done` every 5 ms; throws once `timeoutMs` has passed without it turning true. */
export async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await tick(5);
  }
}
