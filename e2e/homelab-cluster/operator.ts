// Starting, killing and restarting the operator process, and the objects a test applies.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { installCRDs } from "../../src/crds/install.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import type { Homelab } from "./homelab.ts";
import { OPERATOR_NAMESPACE } from "./operator-main.ts";

export { OPERATOR_NAMESPACE };
export const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };

export interface OperatorProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startOperator(homelab: Homelab, env: Record<string, string> = {}): OperatorProcess {
  const child = spawn(process.execPath, ["e2e/homelab-cluster/operator-main.ts"], {
    env: {
      ...process.env,
      KUBECONFIG: env.KUBECONFIG ?? kubeconfigPath(),
      HOMELAB_ADDRESSES: JSON.stringify(homelab.addresses),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-200_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    output: () => out,
    exited,
    async kill(signal = "SIGKILL") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: objects as read back, walked freely by tests
type Loose = KubeObject & Record<string, any>;

/** examples/homelab-cluster-k8s.yaml, with the Image Factory replaced by the homelab's stand-in. */
export function seedCluster(homelab: Homelab, mutate?: (o: Loose) => void): Loose {
  const o = parse(readFileSync("examples/homelab-cluster-k8s.yaml", "utf8")) as Loose;
  o.spec.talos.imageFactory = homelab.image.baseUrl;
  mutate?.(o);
  return o;
}

/** CRDs, the operator namespace and the Proxmox credentials as a user would store them. */
export async function prepareCluster(kc: KubeConfig, homelab: Homelab): Promise<KubeClient> {
  await installCRDs(kc);
  const client = new KubeClient(kc);
  await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: OPERATOR_NAMESPACE } });
  await setCredentials(client, homelab.proxmox.tokenId, homelab.proxmox.tokenSecret);
  await client.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-ca", namespace: OPERATOR_NAMESPACE },
    type: "Opaque",
    stringData: { "ca.crt": homelab.proxmox.caPem },
  });
  return client;
}

export async function setCredentials(client: KubeClient, tokenID: string, secret: string): Promise<void> {
  await client.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "proxmox-token", namespace: OPERATOR_NAMESPACE },
    type: "Opaque",
    stringData: { tokenID, secret },
  });
}

export type Cond = {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
};

export async function conditionOf(client: KubeClient, name: string, type: string): Promise<Cond | undefined> {
  const hc = await client.getOrUndefined<Loose>(HC, { name });
  return (hc?.status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);
}

export function waitCondition(
  client: KubeClient,
  name: string,
  type: string,
  want: (c: Cond) => boolean,
  timeoutMs = 90_000,
): Promise<Cond> {
  return waitFor(
    `${name} condition ${type}`,
    async () => {
      const c = await conditionOf(client, name, type);
      return c && want(c) ? c : undefined;
    },
    timeoutMs,
    100,
  );
}

/**
 * Takes away what prepareCluster stored: the next suite on the shared control plane (e2e/crds creates
 * examples/secrets-homelab-system.yaml) expects no Proxmox credentials there. Call it after the
 * HomelabCluster is gone, since deleting one reads them.
 */
export async function removeCredentials(client: KubeClient): Promise<void> {
  for (const name of ["proxmox-token", "proxmox-ca"])
    await client.delete(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: OPERATOR_NAMESPACE, name },
      { ignoreNotFound: true },
    );
}

/** Leaves the management cluster as the next suite expects it: no HomelabCluster, no cluster Secrets. */
export async function removeCluster(client: KubeClient, name = "k8s"): Promise<void> {
  await client.delete(HC, { name }, { ignoreNotFound: true });
  await waitFor(`${name} to be deleted`, async () => !(await client.getOrUndefined(HC, { name })), 90_000);
  for (const s of ["talos-secrets", "talosconfig", "kubeconfig"])
    await client.delete(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: OPERATOR_NAMESPACE, name: `${name}-${s}` },
      { ignoreNotFound: true },
    );
}
