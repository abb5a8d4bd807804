// Power follows the VM: a Talos machine answers at its address only while the Proxmox VM of its name
// runs — not before the VM exists, not once it is stopped, and not for a running VM of another name.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tcpAnswers } from "../controllers/homelab-cluster/connections.ts";
import { ProxmoxClient } from "../proxmox/client.ts";
import { startProxmoxSimulator } from "../proxmox/simulator/server.ts";
import { startTalosSimulator, type TalosSimulator } from "../talos/simulator/simulator.ts";
import { followVmPower, poweredMachines } from "./power.ts";

type Proxmox = Awaited<ReturnType<typeof startProxmoxSimulator>>;
let proxmox: Proxmox;
let talos: TalosSimulator;
let client: ProxmoxClient;
let power: ReturnType<typeof followVmPower>;
const errors: unknown[] = [];

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  proxmox = await startProxmoxSimulator({ nodes: ["trinity"], taskDurationMs: 10 });
  // Own loopback addresses, so this suite never meets local mode's or other suites' machines.
  talos = await startTalosSimulator({
    nodes: [
      { name: "talos-a", ip: "127.0.35.16" },
      { name: "talos-b", ip: "127.0.35.17" },
    ],
    rebootDelayMs: 50,
  });
  client = new ProxmoxClient({
    url: proxmox.url,
    tokenId: proxmox.tokenId,
    tokenSecret: proxmox.tokenSecret,
    tls: { caPem: proxmox.caPem },
  });
  power = followVmPower(proxmox, talos, ["talos-a", "talos-b"], (err) => errors.push(err), 50);
  await power.ready;
});

afterAll(async () => {
  await power?.stop();
  await client?.close();
  await Promise.allSettled([talos?.stop(), proxmox?.stop()]);
});

const answers = (name: string) => {
  const [host, port] = talos.endpoint(name).split(":");
  return tcpAnswers(host ?? "", Number(port), 500);
};

describe("poweredMachines", () => {
  it("is on only for a running VM of the machine's name", () => {
    const vms = [
      { status: "running", config: { name: "talos-a" } },
      { status: "stopped", config: { name: "talos-b" } },
      { status: "running", config: { name: "someone-else" } },
      { status: "running", config: {} },
    ];
    expect([...poweredMachines(vms, ["talos-a", "talos-b", "talos-c"])]).toEqual([
      ["talos-a", true],
      ["talos-b", false],
      ["talos-c", false],
    ]);
  });
});

describe("followVmPower", () => {
  it("keeps machines silent until their VM runs, and silent again once it stops", async () => {
    expect(await answers("talos-a")).toBe(false);
    expect(await answers("talos-b")).toBe(false);

    // A running VM of another name powers nothing on.
    await client.waitForTask(await client.createVm("trinity", 200, { name: "foreign", memory: 512 }));
    await client.waitForTask(await client.start("trinity", 200));
    await client.waitForTask(await client.createVm("trinity", 201, { name: "talos-a", memory: 512 }));
    await new Promise((r) => setTimeout(r, 300));
    expect(await answers("talos-a")).toBe(false); // created, not started
    expect(await answers("talos-b")).toBe(false);

    await client.waitForTask(await client.start("trinity", 201));
    await eventually("talos-a to answer once its VM runs", () => answers("talos-a"));
    expect(await answers("talos-b")).toBe(false);

    await client.waitForTask(await client.stop("trinity", 201));
    await eventually("talos-a to go silent once its VM stops", async () => !(await answers("talos-a")));
    expect(errors).toEqual([]);
  });
});

describe("followVmPower with wipeDisks", () => {
  it("wipes a machine's disk each time its VM is destroyed, never when it only stops", async () => {
    // One follower per machine: two would both power talos-b on.
    await power.stop();
    const wiped: string[] = [];
    const follower = followVmPower(
      proxmox,
      { faults: talos.faults, wipeDisk: (m) => wiped.push(m) },
      ["talos-b"],
      (err) => errors.push(err),
      50,
      { wipeDisks: true },
    );
    await follower.ready;
    try {
      await client.waitForTask(await client.createVm("trinity", 301, { name: "talos-b", memory: 512 }));
      await client.waitForTask(await client.start("trinity", 301));
      await eventually("talos-b to answer", () => answers("talos-b"));
      await client.waitForTask(await client.stop("trinity", 301));
      await eventually("talos-b silent", async () => !(await answers("talos-b")));
      await new Promise((r) => setTimeout(r, 200));
      expect(wiped).toEqual([]);

      await client.waitForTask(await client.deleteVm("trinity", 301, { purge: true }));
      await eventually("the destroyed VM's disk wiped", async () => wiped.length === 1);
      // Created again and destroyed again: each VM under that name had a disk of its own.
      await client.waitForTask(await client.createVm("trinity", 302, { name: "talos-b", memory: 512 }));
      await new Promise((r) => setTimeout(r, 200));
      expect(wiped).toHaveLength(1);
      await client.waitForTask(await client.deleteVm("trinity", 302, { purge: true }));
      await eventually("the second VM's disk wiped", async () => wiped.length === 2);
      expect(wiped.every((m) => m === "talos-b")).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await follower.stop();
    }
  });
});
