// Local mode's Proxmox credentials, stored as a user stores real ones (named as in
// examples/secrets-homelab-system.yaml, so the example HomelabCluster finds them). `kubectl apply -f
// examples/` also applies that file's placeholders over them; the simulator's credentials are the only
// ones that work here, so local mode puts them back whenever the Secrets differ from them (seen by a watch).
import { Informer, type KubeClient, type KubeObject, keyOf, type Logger } from "../runtime/index.ts";
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

/** How the current objects are read: live GETs, or an informer's cache. */
type Read = (kind: "Secret" | "ConfigMap", name: string) => Promise<KubeObject | undefined>;

const CONFIG_MAP = "local-simulators";
/** How long the first list of the namespace's Secrets and ConfigMaps may take before the start fails. */
const SYNC_TIMEOUT_MS = 60_000;

function liveRead(client: KubeClient, namespace: string): Read {
  return (kind, name) => client.getOrUndefined<KubeObject>({ apiVersion: "v1", kind }, { namespace, name });
}

/** Applies what differs; returns the names it had to write (nothing when all is as it should be). */
export async function assertLocalCredentials(
  client: KubeClient,
  namespace: string,
  sims: LocalSimulators,
  read: Read = liveRead(client, namespace),
  onWritten: (obj: KubeObject) => void = () => {},
): Promise<string[]> {
  const written: string[] = [];
  for (const s of desiredSecrets(namespace, sims)) {
    const current = (await read("Secret", s.name)) as Secret | undefined;
    // Only our keys are compared (and applied): keys someone else added are theirs to keep.
    const same = Object.entries(s.data).every(([k, v]) => current?.data?.[k] === b64(v));
    if (same) continue;
    const applied = await client.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: s.name, namespace, labels: LABELS },
      type: "Opaque",
      data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, b64(v)])),
    });
    onWritten(applied);
    written.push(s.name);
  }
  const data = {
    "proxmox.url": sims.proxmox.url,
    "proxmox.fingerprint": sims.proxmox.fingerprint,
    "talos.endpoints": JSON.stringify(sims.talosEndpoints),
  };
  const current = (await read("ConfigMap", CONFIG_MAP)) as { data?: Record<string, string> } | undefined;
  if (!Object.entries(data).every(([k, v]) => current?.data?.[k] === v)) {
    const applied = await client.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: CONFIG_MAP, namespace, labels: LABELS },
      data,
    });
    onWritten(applied);
    written.push(CONFIG_MAP);
  }
  return written;
}

/**
 * Asserts the credentials once the namespace's Secrets and ConfigMaps are listed, then whenever a watch
 * shows one of ours change or go: no request at rest beyond the two open watches. Compared with the
 * informers' caches, so our own write, once its watch event arrives, finds nothing left to do.
 */
export function watchLocalCredentials(
  client: KubeClient,
  namespace: string,
  sims: LocalSimulators,
  logger: Logger,
): { ready: Promise<void>; stop(): Promise<void> } {
  const secrets = new Informer(client, { apiVersion: "v1", kind: "Secret" }, { namespace, logger });
  const configMaps = new Informer(client, { apiVersion: "v1", kind: "ConfigMap" }, { namespace, logger });
  // Our own last write of each object: until its watch event reaches the cache, the cache is older than
  // what we wrote, and comparing with it would write the same content again.
  const lastWritten = new Map<string, KubeObject>();
  const read: Read = async (kind, name) => {
    const cached = (kind === "Secret" ? secrets : configMaps).get(keyOf({ namespace, name }));
    const mine = lastWritten.get(`${kind}/${name}`);
    return mine && isOlder(cached, mine) ? mine : cached;
  };
  const remember = (obj: KubeObject) => lastWritten.set(`${obj.kind}/${obj.metadata?.name}`, obj);
  const ours = new Set([...desiredSecrets(namespace, sims).map((s) => s.name), CONFIG_MAP]);
  let stopped = false;
  let synced = false;
  // One assert at a time; a change seen while one runs asks for one more after it.
  let running: Promise<void> | undefined;
  let again = false;
  const assertNow = (): Promise<void> =>
    assertLocalCredentials(client, namespace, sims, read, remember).then((written) => {
      if (written.length > 0)
        logger.info(
          { written, namespace },
          "Put the local simulators' credentials back (something replaced them, e.g. the example Secrets)",
        );
    });
  const kick = () => {
    if (stopped) return;
    if (!synced) {
      again = true; // seen during the first assert: one more after it
      return;
    }
    if (running) {
      again = true;
      return;
    }
    running = assertNow()
      .catch((err: unknown) => {
        if (!stopped) logger.warn({ err }, "Could not check the local credentials");
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  const onChange = (obj: KubeObject) => {
    if (ours.has(obj.metadata?.name ?? "")) kick();
  };
  for (const informer of [secrets, configMaps]) {
    informer.addHandler({
      onAdd: onChange,
      onUpdate: (_old, obj) => onChange(obj),
      onDelete: (obj) => {
        // Gone after our write: what we wrote no longer stands for it.
        lastWritten.delete(`${obj.kind}/${obj.metadata?.name}`);
        onChange(obj);
      },
    });
    informer.start();
  }
  const abort = new AbortController();
  const ready = (async () => {
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(SYNC_TIMEOUT_MS)]);
    await Promise.all([secrets.waitForSync(signal), configMaps.waitForSync(signal)]);
    again = false; // the initial list's adds are what the first assert reads anyway
    await assertNow(); // the first one's failure fails the start
    synced = true;
    if (again) {
      again = false;
      kick();
    }
  })();
  return {
    ready,
    async stop() {
      stopped = true;
      abort.abort(new Error("stopped"));
      await ready.catch(() => {});
      await Promise.all([secrets.stop(), configMaps.stop()]);
      await running;
    },
  };
}

/**
 * Whether the cached object is older than one we wrote (absent counts as older). Resource versions are
 * opaque to clients in general; kube-apiserver's are etcd revisions, so a smaller number is an older write.
 * Anything unparsable is treated as not older: the cache wins, as before.
 */
function isOlder(cached: KubeObject | undefined, written: KubeObject): boolean {
  if (!cached) return true;
  try {
    return BigInt(cached.metadata?.resourceVersion ?? "0") < BigInt(written.metadata?.resourceVersion ?? "0");
  } catch {
    return false;
  }
}
