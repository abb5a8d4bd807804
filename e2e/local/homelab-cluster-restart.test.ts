// The whole local process killed while the seed's HomelabCluster is provisioning: `npm start` is
// SIGKILLed at two moments (once the image phase has started, once Talos configuration has), started
// again on the same state each time, and the cluster still converges with exactly three VMs and one
// Talos image, counted from the Proxmox simulator's own records through the seed's address.

import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureControlPlaneBinaries, ensureKwokBinary } from "../../src/local/control-plane/binaries.ts";
import { SEED_PROXMOX, seedDial } from "../../src/local/seed-addresses.ts";
import { SEED_VMS } from "../../src/local/seed-vms.ts";
import { ProxmoxClient } from "../../src/proxmox/client.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import { type LocalProcess, removeLocal, startLocal } from "./local-process.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Hc extends KubeObject {
  status?: {
    phase?: string;
    nodesReady?: string;
    conditions?: Condition[];
    nodes?: { name: string; ready?: boolean; talosMode?: string; kubeletVersion?: string }[];
  };
}

const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };
const TIMEOUT = 600_000;

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;

const condition = (hc: Hc | undefined, type: string) => hc?.status?.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  await ensureKwokBinary();
  dataHome = await mkdtemp(join(tmpdir(), "homelab-local-hc-kill-e2e-"));
  stateDir = join(dataHome, "homelab-operator", "local");
}, 1_200_000);

afterAll(async () => {
  await removeLocal(local, stateDir, dataHome);
});

/** A Proxmox client as the controller makes one: the seed's URL, the stored credentials, the seam. */
async function seedProxmox(kube: KubeClient): Promise<ProxmoxClient> {
  const data = async (kind: string, name: string) =>
    (
      await kube.get<KubeObject & { data?: Record<string, string> }>(
        { apiVersion: "v1", kind },
        { namespace: "homelab-system", name },
      )
    ).data ?? {};
  const decode = (b64?: string) => Buffer.from(b64 ?? "", "base64").toString();
  const token = await data("Secret", "proxmox-token");
  const ca = await data("Secret", "proxmox-ca");
  const url = new URL((await data("ConfigMap", "local-simulators"))["proxmox.url"] ?? "");
  return new ProxmoxClient({
    url: `https://${SEED_PROXMOX.host}:${SEED_PROXMOX.port}`,
    tokenId: decode(token.tokenID),
    tokenSecret: decode(token.secret),
    tls: { caPem: decode(ca["ca.crt"]) },
    dial: seedDial({ proxmox: { host: url.hostname, port: Number(url.port) }, talos: new Map() }),
  });
}

describe("local mode: npm start killed while the seed's HomelabCluster provisions", () => {
  it("SIGKILL twice mid-provisioning, started again each time: converges with 3 VMs and 1 image", async () => {
    local = await startLocal(dataHome);
    const { kubectl } = await ensureControlPlaneBinaries();
    const env = { ...process.env, KUBECONFIG: local.kubeconfigPath };
    const run = (...args: string[]) => promisify(execFile)(kubectl, args, { env });
    await run("create", "namespace", "infra");
    await run("apply", "-f", "examples/").catch(() => {});

    const kills: string[] = [];
    for (const phase of ["ImageReady", "TalosConfigured"]) {
      const kube = new KubeClient(local.kubeConfig());
      await waitFor(
        `hc/k8s to reach ${phase}`,
        async () => condition(await kube.getOrUndefined<Hc>(HC, { name: "k8s" }), phase),
        TIMEOUT,
        200,
      );
      const hc = await kube.get<Hc>(HC, { name: "k8s" });
      kills.push(`${phase}: ${(hc.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(",")}`);
      local.child.kill("SIGKILL");
      await local.exited;
      local = await startLocal(dataHome);
    }
    const kube = new KubeClient(local.kubeConfig());
    const healthy = await waitFor(
      "hc/k8s KubernetesHealthy after the restarts",
      async () => {
        const hc = await kube.getOrUndefined<Hc>(HC, { name: "k8s" });
        return condition(hc, "KubernetesHealthy")?.status === "True" ? hc : undefined;
      },
      TIMEOUT,
      1_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${kills.join("\n")}\n${local?.output().slice(-6000)}`);
    });
    expect(condition(healthy, "Ready")?.status).toBe("True");
    expect(kills).toHaveLength(2);

    // Counted by Proxmox itself, through the seed's address.
    const proxmox = await seedProxmox(kube);
    try {
      const vms = await proxmox.listVms();
      // The cluster's three, beside the seed's VMs that local mode's Proxmox starts with (seed-vms.ts).
      expect(vms.map((v) => v.name).sort()).toEqual(
        ["talos-neo", "talos-niobe", "talos-trinity", ...SEED_VMS.map((v) => v.name)].sort(),
      );
      const images = await proxmox.storageContent("trinity", "cephfs", { content: "import" });
      expect(images.filter((v) => v.volid.includes("talos-v1.11.0"))).toHaveLength(1);
    } finally {
      await proxmox.close();
    }
  }, 1_800_000);
});
