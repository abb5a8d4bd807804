// The dial seam: clients keep the seed's names and addresses, connections land on the simulators, and
// TLS still verifies the seed's names (so the seam cannot hide a certificate for the wrong host).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxmoxClient } from "../proxmox/client.ts";
import { startProxmoxSimulator } from "../proxmox/simulator/server.ts";
import { TalosClient } from "../talos/client/talos-client.ts";
import { exampleClusterInput } from "../talos/config/example-input.ts";
import { generateClusterConfigs } from "../talos/config/machine-config.ts";
import { ensureSecretsBundle } from "../talos/config/secrets.ts";
import { generateAdminTalosconfig } from "../talos/config/talosconfig.ts";
import { startTalosSimulator, type TalosSimulator } from "../talos/simulator/simulator.ts";
import { SEED_PROXMOX, seedDial } from "./seed-addresses.ts";

type Proxmox = Awaited<ReturnType<typeof startProxmoxSimulator>>;
const sims: { stop(): Promise<void> }[] = [];
const clients: { close(): unknown }[] = [];
let named: Proxmox;
let unnamed: Proxmox;
let talos: TalosSimulator;

beforeAll(async () => {
  named = await startProxmoxSimulator({ nodes: ["trinity"], certificateNames: [SEED_PROXMOX.host] });
  unnamed = await startProxmoxSimulator({ nodes: ["trinity"] });
  // Own loopback addresses, so this suite never meets local mode's 127.0.0.16-18.
  talos = await startTalosSimulator({
    nodes: [
      { name: "known", ip: "127.0.34.16", advertisedIp: "10.0.3.16" },
      { name: "unknown", ip: "127.0.34.17" },
    ],
    rebootDelayMs: 50,
  });
  sims.push(named, unnamed, talos);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const s of sims) await s.stop();
});

const talosMap = () =>
  new Map([
    ["10.0.3.16", { host: "127.0.34.16", port: talos.nodes[0]?.port ?? 0 }],
    ["10.0.3.17", { host: "127.0.34.17", port: talos.nodes[1]?.port ?? 0 }],
  ]);

function proxmoxTo(sim: Proxmox) {
  const url = new URL(sim.url);
  const client = new ProxmoxClient({
    url: `https://${SEED_PROXMOX.host}:${SEED_PROXMOX.port}`,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { caPem: sim.caPem },
    retry: { attempts: 1 },
    dial: seedDial({ proxmox: { host: url.hostname, port: Number(url.port) }, talos: talosMap() }),
  });
  clients.push(client);
  return client;
}

describe("seed dial seam", () => {
  it("maps the seed's Proxmox and Talos addresses and leaves every other address alone", () => {
    const dial = seedDial({ proxmox: { host: "127.0.0.1", port: 40000 }, talos: talosMap() });
    expect(dial({ host: "pve.home.shdr.ch", port: 8006 })).toEqual({ host: "127.0.0.1", port: 40000 });
    expect(dial({ host: "PVE.home.shdr.ch", port: 8006 })).toEqual({ host: "127.0.0.1", port: 40000 });
    expect(dial({ host: "pve.home.shdr.ch", port: 22 })).toEqual({ host: "pve.home.shdr.ch", port: 22 });
    expect(dial({ host: "10.0.3.16", port: 50000 })).toEqual(talosMap().get("10.0.3.16"));
    expect(dial({ host: "10.0.3.16", port: 50001 })).toEqual({ host: "127.0.34.16", port: 50001 });
    expect(dial({ host: "10.0.3.99", port: 50000 })).toEqual({ host: "10.0.3.99", port: 50000 });
  });

  it("Proxmox: the client asks for pve.home.shdr.ch:8006 and reaches the simulator, verifying its CA and name", async () => {
    expect((await proxmoxTo(named).listNodes()).map((n) => n.node)).toEqual(["trinity"]);
    // Same CA trust, but the certificate does not name pve.home.shdr.ch: refused, not silently accepted.
    await expect(proxmoxTo(unnamed).listNodes()).rejects.toThrow(/pve\.home\.shdr\.ch|altnames|certificate/i);
  });

  it("Talos: maintenance and mTLS clients of 10.0.3.16 reach the simulator, which is known by that address", async () => {
    const dial = seedDial({ proxmox: { host: "127.0.0.1", port: 1 }, talos: talosMap() });
    const secrets = ensureSecretsBundle();
    const [config] = generateClusterConfigs(
      {
        ...exampleClusterInput,
        endpoint: "https://10.0.3.16:6443",
        nodes: [{ name: "known", ip: "10.0.3.16", role: "controlplane" }],
      },
      secrets,
    );
    const maintenance = TalosClient.maintenance("10.0.3.16", { dial, timeoutMs: 5_000 });
    clients.push(maintenance);
    await maintenance.applyConfiguration(config?.yaml ?? "");
    await talos.waitForReboot("known", 0);
    const talosconfig = generateAdminTalosconfig(secrets, { contextName: "seed", endpoints: ["10.0.3.16"] });
    const admin = TalosClient.fromTalosconfig(talosconfig, { dial, timeoutMs: 5_000 });
    clients.push(admin);
    expect(await admin.bootstrap()).toBe("bootstrapped");
    const members = await admin.etcdMemberList();
    expect(members[0]?.peerUrls).toEqual(["https://10.0.3.16:2380"]);
  });

  it("Talos: a configured machine whose certificate does not name 10.0.3.17 is refused over mTLS", async () => {
    const dial = seedDial({ proxmox: { host: "127.0.0.1", port: 1 }, talos: talosMap() });
    const secrets = ensureSecretsBundle();
    const [config] = generateClusterConfigs(
      {
        ...exampleClusterInput,
        endpoint: "https://10.0.3.17:6443",
        nodes: [{ name: "unknown", ip: "10.0.3.17", role: "controlplane" }],
      },
      secrets,
    );
    const maintenance = TalosClient.maintenance("10.0.3.17", { dial, timeoutMs: 5_000 });
    clients.push(maintenance);
    await maintenance.applyConfiguration(config?.yaml ?? "");
    await talos.waitForReboot("unknown", 0);
    const talosconfig = generateAdminTalosconfig(secrets, { contextName: "x", endpoints: ["10.0.3.17"] });
    const admin = TalosClient.fromTalosconfig(talosconfig, { dial, timeoutMs: 5_000 });
    clients.push(admin);
    await expect(admin.version()).rejects.toThrow();
    // The same machine reached by its own address is fine: only the name check failed.
    const direct = TalosClient.fromTalosconfig(talosconfig, { endpoint: talos.endpoint("unknown") });
    clients.push(direct);
    expect((await direct.version()).tag).toMatch(/^v1\./);
  });
});
