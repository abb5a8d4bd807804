// Local mode's Proxmox credentials, stored as a user stores real ones (named as in
// examples/secrets-homelab-system.yaml, so the example HomelabCluster finds them). `kubectl apply -f
// examples/` also applies that file's placeholders over them; the simulator's credentials are the only
// ones that work here, so local mode puts them back whenever the Secrets differ from them.
import type { KubeClient, KubeObject, Logger } from "../runtime/index.ts";
import type { LocalSimulators } from "./simulators.ts";

const LABELS = {
  "app.kubernetes.io/managed-by": "homelab-operator",
  "homelab.shdr.ch/component": "local-simulators",
};

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

function desiredSecrets(namespace: string, sims: LocalSimulators) {
  return [
    {
      name: "proxmox-token",
      data: { tokenID: sims.proxmox.tokenId, secret: sims.proxmox.tokenSecret },
    },
    { name: "proxmox-ca", data: { "ca.crt": sims.proxmox.caPem } },
  ].map((s) => ({ ...s, namespace }));
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Applies what differs; returns the names it had to write. */
export async function assertLocalCredentials(
  client: KubeClient,
  namespace: string,
  sims: LocalSimulators,
): Promise<string[]> {
  const written: string[] = [];
  for (const s of desiredSecrets(namespace, sims)) {
    const current = await client.getOrUndefined<Secret>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace, name: s.name },
    );
    // Only our keys are compared (and applied): keys someone else added are theirs to keep.
    const same = Object.entries(s.data).every(([k, v]) => current?.data?.[k] === b64(v));
    if (same) continue;
    await client.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: s.name, namespace, labels: LABELS },
      type: "Opaque",
      data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, b64(v)])),
    });
    written.push(s.name);
  }
  await client.apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "local-simulators", namespace, labels: LABELS },
    data: {
      "proxmox.url": sims.proxmox.url,
      "proxmox.fingerprint": sims.proxmox.fingerprint,
      "talos.endpoints": JSON.stringify(sims.talosEndpoints),
    },
  });
  return written;
}

/** Asserts the credentials now and every `intervalMs`. */
export function watchLocalCredentials(
  client: KubeClient,
  namespace: string,
  sims: LocalSimulators,
  logger: Logger,
  intervalMs = 1_000,
): { ready: Promise<void>; stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let first = true;
  let running: Promise<void>;
  const tick = (): Promise<void> =>
    assertLocalCredentials(client, namespace, sims).then(
      (written) => {
        if (!first && written.length > 0)
          logger.info(
            { secrets: written, namespace },
            "Put the local simulators' credentials back (something replaced them, e.g. the example Secrets)",
          );
        first = false;
      },
      (err: unknown) => {
        if (first) throw err;
        if (!stopped) logger.warn({ err }, "Could not check the local credentials");
      },
    );
  const loop = () => {
    timer = setTimeout(() => {
      running = tick().finally(() => {
        if (!stopped) loop();
      });
    }, intervalMs);
  };
  const ready = tick().then(loop);
  running = ready;
  return {
    ready,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => {});
    },
  };
}
