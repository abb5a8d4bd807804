// The client against the simulator over real HTTPS: every operation the controllers use, and the
// failure modes they must tell apart.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cloudInitConfig, formatTags, ProxmoxClient } from "./client.ts";
import {
  ProxmoxApiError,
  ProxmoxAuthenticationError,
  ProxmoxLockedError,
  ProxmoxNetworkError,
  ProxmoxNodeUnreachableError,
  ProxmoxNotFoundError,
  ProxmoxParameterError,
  ProxmoxPermissionError,
  ProxmoxTaskFailedError,
  ProxmoxTaskTimeoutError,
  ProxmoxTlsError,
} from "./errors.ts";
import { type ProxmoxSimulator, startProxmoxSimulator } from "./simulator/index.ts";
import { createServingPki } from "./simulator/x509.ts";

let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let files: Server;
let filesUrl: string;
const image = Buffer.alloc(64 * 1024, 7);
const imageSha256 = createHash("sha256").update(image).digest("hex");

function clientWith(overrides: Partial<ConstructorParameters<typeof ProxmoxClient>[0]> = {}) {
  return new ProxmoxClient({
    url: sim.url,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { caPem: sim.caPem },
    retry: { baseMs: 5 },
    timeoutMs: 5_000,
    ...overrides,
  });
}

/** A Talos-like VM: ISO boot, one disk, Proxmox's cloud-init drive with a static address. */
function talosVm(name: string, ip: string) {
  return {
    name,
    cores: 2,
    memory: 2048,
    cpu: "host",
    machine: "q35",
    scsihw: "virtio-scsi-pci",
    scsi0: "local-lvm:32",
    net0: "virtio,bridge=vmbr0",
    agent: "enabled=1",
    boot: "order=scsi0;ide0",
    ...cloudInitConfig({
      storage: "local-lvm",
      address: `${ip}/24`,
      gateway: "10.0.3.1",
      nameservers: ["10.0.3.1", "1.1.1.1"],
      searchdomain: "lab.example",
    }),
  };
}

async function createVm(vmid: number, node = "pve1") {
  await client.waitForTask(
    await client.createVm(node, vmid, talosVm(`talos-${vmid}`, `10.0.3.${vmid % 200}`)),
  );
}

beforeAll(async () => {
  sim = await startProxmoxSimulator({ taskDurationMs: 15, haRecoveryMs: 150 });
  client = clientWith();
  files = createServer((req, res) => {
    if (req.url === "/talos.iso") res.end(image);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => files.listen(0, "127.0.0.1", r));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await client.close();
  await sim.stop();
  await new Promise((r) => files.close(r));
});

beforeEach(() => sim.faults.reset());

describe("reading the cluster", () => {
  it("lists nodes and the version", async () => {
    expect((await client.listNodes()).map((n) => n.node)).toEqual(["pve1", "pve2", "pve3"]);
    expect((await client.version()).version).toMatch(/^9\./);
  });

  it("nextId gives the lowest free id and refuses a taken one with Proxmox's per-parameter error", async () => {
    await createVm(100);
    expect(await client.nextId()).toBe(101);
    expect(await client.nextId(4000)).toBe(4000);
    const err = await client.nextId(100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxParameterError);
    expect((err as ProxmoxParameterError).errors).toEqual({ vmid: "VM 100 already exists" });
  });

  it("the steady-state check of every VM is one request", async () => {
    await createVm(110);
    await createVm(111, "pve2");
    const before = client.requestCount;
    const vms = await client.listVms();
    expect(client.requestCount - before).toBe(1);
    expect(
      vms.filter((v) => v.vmid === 110 || v.vmid === 111).map((v) => [v.vmid, v.node, v.status]),
    ).toEqual([
      [110, "pve1", "stopped"],
      [111, "pve2", "stopped"],
    ]);
  });
});

describe("image download", () => {
  it("downloads with a verified checksum; the volume appears only when the task is done", async () => {
    const task = await client.downloadUrl("pve1", "local", {
      url: `${filesUrl}/talos.iso`,
      content: "iso",
      filename: "talos-nocloud-amd64.iso",
      checksum: { algorithm: "sha256", value: imageSha256 },
    });
    expect(task.type).toBe("download");
    expect(
      (await client.storageContent("pve1", "local", { content: "iso" })).map((v) => v.volid),
    ).not.toContain("local:iso/talos-nocloud-amd64.iso");
    await client.waitForTask(task);
    const iso = (await client.storageContent("pve1", "local", { content: "iso" })).find(
      (v) => v.volid === "local:iso/talos-nocloud-amd64.iso",
    );
    expect(iso?.size).toBe(image.length);
  });

  it("a wrong checksum fails the task; the error carries the exit status and the log's last lines", async () => {
    const task = await client.downloadUrl("pve2", "local", {
      url: `${filesUrl}/talos.iso`,
      content: "iso",
      filename: "bad.iso",
      checksum: { algorithm: "sha256", value: "0".repeat(64) },
    });
    const err = (await client.waitForTask(task).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect(err.exitstatus).toMatch(/^checksum mismatch/);
    expect(err.logTail.at(-1)).toMatch(/^TASK ERROR: checksum mismatch/);
  });

  it("refuses content a storage does not hold and decompression of non-ISO content", async () => {
    await expect(
      client.downloadUrl("pve1", "local-lvm", {
        url: `${filesUrl}/x.iso`,
        content: "iso",
        filename: "x.iso",
      }),
    ).rejects.toThrow(/can't upload to storage type 'lvmthin', not a file based storage!/);
    // Status.pm checks the compression inside the download worker: the task fails, the request does not.
    const task = await client.downloadUrl("pve1", "local", {
      url: `${filesUrl}/x.raw`,
      content: "import",
      filename: "x.raw",
      compression: "zst",
    });
    const err = (await client.waitForTask(task).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err.exitstatus).toBe("decompression not supported for import");
  });
});

describe("VM lifecycle", () => {
  it("creates a VM with disk, cloud-init drive and static network", async () => {
    const task = await client.createVm("pve1", 1001, {
      ...talosVm("talos-cp-1", "10.0.3.16"),
      tags: "talos;homelab",
    });
    expect(task).toMatchObject({ node: "pve1", type: "qmcreate", id: "1001", user: sim.tokenId });
    expect((await client.waitForTask(task)).exitstatus).toBe("OK");
    const config = await client.getConfig("pve1", 1001);
    expect(config).toMatchObject({
      name: "talos-cp-1",
      cores: "2",
      scsi0: "local-lvm:vm-1001-disk-0,size=32G",
      ide2: "local-lvm:vm-1001-cloudinit,media=cdrom",
      ipconfig0: "ip=10.0.3.16/24,gw=10.0.3.1",
      nameserver: "10.0.3.1 1.1.1.1",
      searchdomain: "lab.example",
      tags: "talos;homelab",
    });
    expect(config["digest"]).toMatch(/^[0-9a-f]{40}$/);
  });

  it("creating an existing VM id fails the create task", async () => {
    await createVm(1002);
    await expect(client.createVm("pve2", 1002, talosVm("dup", "10.0.3.99"))).rejects.toThrow(
      /unable to create VM 1002 - VM 1002 already exists on node 'pve1'/,
    );
  });

  it("start, agent ping, reboot, shutdown and stop follow the state machine", async () => {
    await createVm(1003);
    expect(await client.agentPing("pve1", 1003)).toBe(false);
    await client.waitForTask(await client.start("pve1", 1003));
    expect((await client.status("pve1", 1003)).status).toBe("running");
    expect(await client.agentPing("pve1", 1003)).toBe(true);
    const again = (await client
      .waitForTask(await client.start("pve1", 1003))
      .catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(again.exitstatus).toBe("VM 1003 already running");
    await client.waitForTask(await client.reboot("pve1", 1003));
    await client.waitForTask(await client.shutdown("pve1", 1003, { timeoutSeconds: 60, forceStop: true }));
    expect((await client.status("pve1", 1003)).status).toBe("stopped");
    await client.waitForTask(await client.start("pve1", 1003));
    await client.waitForTask(await client.stop("pve1", 1003));
    expect((await client.status("pve1", 1003)).status).toBe("stopped");
  });

  it("updates config guarded by digest, sets tags, and refuses a stale digest", async () => {
    await createVm(1004);
    const { digest } = await client.getConfig("pve1", 1004);
    await client.updateConfig("pve1", 1004, { cores: 4, onboot: true }, { digest: digest! });
    await client.setTags("pve1", 1004, ["talos", "controlplane"]);
    expect(await client.getConfig("pve1", 1004)).toMatchObject({
      cores: "4",
      onboot: "1",
      tags: "controlplane;talos",
    });
    await expect(client.updateConfig("pve1", 1004, { cores: 8 }, { digest: digest! })).rejects.toThrow(
      /detected modified configuration/,
    );
    await client.setTags("pve1", 1004, []);
    expect((await client.getConfig("pve1", 1004))["tags"]).toBeUndefined();
  });

  it("resizes a disk up and refuses to shrink it", async () => {
    await createVm(1005);
    await client.waitForTask(await client.resizeDisk("pve1", 1005, "scsi0", "+8G"));
    expect((await client.getConfig("pve1", 1005))["scsi0"]).toBe("local-lvm:vm-1005-disk-0,size=40G");
    await expect(client.resizeDisk("pve1", 1005, "scsi0", "10G")).rejects.toThrow(
      /shrinking disks is not supported/,
    );
  });

  it("a VM locked by a running backup refuses changes with ProxmoxLockedError until the task ends", async () => {
    await createVm(1006);
    sim.faults.set({ hangTasks: [{ type: "vzdump", id: "1006" }] });
    const backup = await client.backup("pve1", {
      vmid: 1006,
      storage: "local",
      mode: "snapshot",
      compress: "zstd",
    });
    const err = await client.updateConfig("pve1", 1006, { cores: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxLockedError);
    expect((err as ProxmoxLockedError).lock).toBe("backup");
    expect((err as ProxmoxLockedError).proxmoxMessage).toBe("VM is locked (backup)");
    sim.faults.reset();
    await client.waitForTask(backup);
    const archives = await client.storageContent("pve1", "local", { content: "backup", vmid: 1006 });
    expect(archives[0]?.volid).toMatch(/^local:backup\/vzdump-qemu-1006-.*\.vma\.zst$/);
    await client.updateConfig("pve1", 1006, { cores: 4 });
  });

  it("a VM being created is locked: a start before the create task ends fails its task", async () => {
    sim.faults.set({ hangTasks: [{ type: "qmcreate", id: "1009" }] });
    const create = await client.createVm("pve1", 1009, talosVm("talos-1009", "10.0.3.109"));
    // qemu-server checks the lock in the qmstart worker (QemuServer.pm vm_start), not in the API call.
    const early = await client.start("pve1", 1009);
    const err = (await client.waitForTask(early).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect(err.exitstatus).toBe("VM is locked (create)");
    expect((await client.listVms()).find((v) => v.vmid === 1009)?.lock).toBe("create");
    sim.faults.reset();
    await client.waitForTask(create);
    await client.waitForTask(await client.start("pve1", 1009));
  });

  it("a missing VM is ProxmoxNotFoundError, though Proxmox sends a 500", async () => {
    await createVm(1007, "pve2");
    for (const call of [() => client.getConfig("pve1", 4242), () => client.status("pve1", 1007)]) {
      const err = (await call().catch((e: unknown) => e)) as ProxmoxNotFoundError;
      expect(err).toBeInstanceOf(ProxmoxNotFoundError);
      expect(err.status).toBe(500);
      expect(err.proxmoxMessage).toMatch(
        /^Configuration file 'nodes\/pve1\/qemu-server\/\d+\.conf' does not exist$/,
      );
    }
  });

  it("delete refuses a running VM and an HA-managed one without purge; purge cleans HA and disks", async () => {
    await createVm(1008);
    await client.waitForTask(await client.start("pve1", 1008));
    await expect(client.deleteVm("pve1", 1008)).rejects.toThrow(/VM 1008 is running - destroy failed/);
    await client.waitForTask(await client.stop("pve1", 1008));
    await client.addHaResource({ sid: "vm:1008", state: "stopped" });
    await client.addHaRule({
      rule: "keep-1008",
      type: "node-affinity",
      resources: ["vm:1008"],
      nodes: ["pve1"],
    });
    await expect(client.deleteVm("pve1", 1008)).rejects.toThrow(
      /unable to remove VM 1008 - used in HA resources and purge parameter not set/,
    );
    await client.waitForTask(
      await client.deleteVm("pve1", 1008, { purge: true, destroyUnreferencedDisks: true }),
    );
    await expect(client.getConfig("pve1", 1008)).rejects.toBeInstanceOf(ProxmoxNotFoundError);
    expect((await client.listHaResources()).map((r) => r.sid)).not.toContain("vm:1008");
    expect((await client.listHaRules()).map((r) => r.rule)).not.toContain("keep-1008");
    const disks = await client.storageContent("pve1", "local-lvm", { vmid: 1008 });
    expect(disks).toEqual([]);
  });
});

describe("HA", () => {
  it("keeps control planes apart with a negative resource-affinity rule and pins with node affinity", async () => {
    for (const [vmid, node] of [
      [1101, "pve1"],
      [1102, "pve2"],
      [1103, "pve3"],
    ] as const) {
      await createVm(vmid, node);
      await client.addHaResource({ sid: `vm:${vmid}`, state: "started", comment: "talos control plane" });
    }
    await client.addHaRule({
      rule: "talos-cp-apart",
      type: "resource-affinity",
      resources: ["vm:1101", "vm:1102", "vm:1103"],
      affinity: "negative",
    });
    await client.addHaRule({
      rule: "cp1-home",
      type: "node-affinity",
      resources: ["vm:1101"],
      nodes: ["pve1:2", "pve2"],
    });
    expect(await client.getHaRule("talos-cp-apart")).toMatchObject({
      type: "resource-affinity",
      affinity: "negative",
      resources: "vm:1101,vm:1102,vm:1103",
    });
    expect(await client.getHaResource("vm:1102")).toMatchObject({ sid: "vm:1102", state: "started" });
    await client.updateHaRule({
      rule: "cp1-home",
      type: "node-affinity",
      resources: ["vm:1101"],
      nodes: ["pve1"],
      strict: true,
    });
    expect(await client.getHaRule("cp1-home")).toMatchObject({ nodes: "pve1", strict: true });
    await client.updateHaResource("vm:1103", { state: "stopped" });
    expect((await client.getHaResource("vm:1103")).state).toBe("stopped");
    await client.deleteHaRule("cp1-home");
    await client.deleteHaResource("vm:1103");
    expect((await client.getHaRule("talos-cp-apart")).resources).toBe("vm:1101,vm:1102");
  });

  it("HA requests start an HA-managed VM, and status reports it managed", async () => {
    await createVm(1104);
    await client.addHaResource({ sid: "vm:1104", state: "started" });
    await expect.poll(async () => (await client.status("pve1", 1104)).status).toBe("running");
    expect((await client.status("pve1", 1104)).ha).toMatchObject({ managed: true, state: "started" });
  });

  it("recovers HA VMs of a fenced node to a node the negative affinity allows", async () => {
    const shared = (name: string, ip: string) => ({
      ...talosVm(name, ip),
      scsi0: "shared:16",
      ide2: "shared:cloudinit",
    });
    for (const [vmid, node] of [
      [1111, "pve1"],
      [1112, "pve2"],
    ] as const) {
      await client.waitForTask(
        await client.createVm(node, vmid, shared(`ha-${vmid}`, `10.0.3.${vmid - 1000}`)),
      );
      await client.addHaResource({ sid: `vm:${vmid}`, state: "started" });
    }
    await client.addHaRule({
      rule: "apart-1111",
      type: "resource-affinity",
      affinity: "negative",
      resources: ["vm:1111", "vm:1112"],
    });
    await expect.poll(async () => (await client.status("pve1", 1111)).status).toBe("running");
    sim.faults.set({ nodesDown: ["pve1"] });
    await expect.poll(async () => (await client.locateVm(1111))?.node, { timeout: 3_000 }).toBe("pve3");
    expect(await client.locateVm(99_999)).toBeUndefined();
    expect((await client.status("pve3", 1111)).status).toBe("running");
  });

  it("rejects properties of the other rule type and unknown nodes", async () => {
    const err = (await client
      .addHaRule({ rule: "bad", type: "node-affinity", resources: ["vm:1101"], nodes: ["nowhere"] })
      .catch((e: unknown) => e)) as ProxmoxParameterError;
    expect(err.errors).toEqual({ nodes: "node 'nowhere' does not exist" });
  });
});

describe("failures the controllers must tell apart", () => {
  it("a token without VM.Allocate gets ProxmoxPermissionError naming the ACL path", async () => {
    sim.addToken({
      tokenId: "auditor@pve!readonly",
      secret: "readonly-secret",
      acl: { "/": ["VM.Audit", "Sys.Audit", "Datastore.Audit"] },
    });
    const ro = clientWith({ tokenId: "auditor@pve!readonly", tokenSecret: "readonly-secret" });
    expect(Array.isArray(await ro.listVms())).toBe(true);
    const err = (await ro
      .createVm("pve1", 1201, talosVm("x", "10.0.3.50"))
      .catch((e: unknown) => e)) as ProxmoxPermissionError;
    expect(err).toBeInstanceOf(ProxmoxPermissionError);
    expect(err.status).toBe(403);
    expect(err.proxmoxMessage).toBe("Permission check failed (/vms/1201, VM.Allocate)");
    await expect(ro.addHaResource({ sid: "vm:1101" })).rejects.toThrow(
      /Permission check failed \(\/, Sys.Console\)/,
    );
    await ro.close();
  });

  it("a wrong secret is ProxmoxAuthenticationError and the secret is in no message", async () => {
    const seen: unknown[] = [];
    const wrong = clientWith({ tokenSecret: "not-the-secret-123", onRequest: (info) => seen.push(info) });
    const err = await wrong.listNodes().catch((e: unknown) => e);
    expect(seen).toHaveLength(1);
    expect(JSON.stringify(seen)).not.toContain("not-the-secret-123");
    expect(err).toBeInstanceOf(ProxmoxAuthenticationError);
    expect(inspect(err, { depth: 5 })).not.toContain("not-the-secret-123");
    expect(inspect(wrong, { depth: 5 })).not.toContain("not-the-secret-123");
    await wrong.close();
  });

  it("parameter errors carry Proxmox's per-parameter messages", async () => {
    const err = (await client
      .createVm("pve1", 1202, { ...talosVm("x", "10.0.3.51"), boot: "scsi0", balloon: "lots", frobnicate: 1 })
      .catch((e: unknown) => e)) as ProxmoxParameterError;
    expect(err).toBeInstanceOf(ProxmoxParameterError);
    expect(err.proxmoxMessage).toBe("Parameter verification failed.");
    expect(err.errors).toEqual({
      boot: "invalid format - format error\nboot.legacy: value does not match the regex pattern\n",
      balloon: "type check ('integer') failed - got 'lots'",
      frobnicate: "property is not defined in schema and the schema does not allow additional properties",
    });
  });

  it("a task that fails carries its exit status and last log lines", async () => {
    await createVm(1203);
    sim.faults.set({
      failTasks: [{ type: "qmstart", id: "1203", message: "start failed: QEMU exited with code 1" }],
    });
    const err = (await client
      .waitForTask(await client.start("pve1", 1203))
      .catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect(err.exitstatus).toBe("start failed: QEMU exited with code 1");
    expect(err.logTail).toContain("TASK ERROR: start failed: QEMU exited with code 1");
  });

  it("waitForTask gives up at its deadline on a hanging task", async () => {
    await createVm(1204);
    sim.faults.set({ hangTasks: [{ type: "qmstart" }] });
    const task = await client.start("pve1", 1204);
    await expect(client.waitForTask(task, { timeoutMs: 200, initialDelayMs: 20 })).rejects.toBeInstanceOf(
      ProxmoxTaskTimeoutError,
    );
    expect((await client.taskStatus(task)).status).toBe("running");
  });

  it("a down node answers 595 and shows offline; its VMs are unknown", async () => {
    await createVm(1205, "pve3");
    sim.faults.set({ nodesDown: ["pve3"] });
    await expect(client.status("pve3", 1205)).rejects.toBeInstanceOf(ProxmoxNodeUnreachableError);
    expect((await client.listNodes()).find((n) => n.node === "pve3")?.status).toBe("offline");
    expect((await client.listVms()).find((v) => v.vmid === 1205)?.status).toBe("unknown");
  });

  it("reads are retried through dropped connections and 503s", async () => {
    sim.faults.set({
      dropConnections: [{ method: "GET", path: "^/cluster/resources$", count: 1 }],
      errors: [{ method: "GET", path: "^/cluster/resources$", status: 503, message: "busy", count: 1 }],
    });
    const before = client.requestCount;
    await client.listVms();
    expect(client.requestCount - before).toBe(3);
  });

  it("a create whose connection drops is not retried: the caller must look before trying again", async () => {
    sim.faults.set({ dropConnections: [{ method: "POST", path: "^/nodes/pve1/qemu$", count: 1 }] });
    const posts = () =>
      sim.requests.filter((r) => r.method === "POST" && r.path === "/nodes/pve1/qemu").length;
    const before = posts();
    const err = (await client
      .createVm("pve1", 1206, talosVm("x", "10.0.3.52"))
      .catch((e: unknown) => e)) as ProxmoxNetworkError;
    expect(err).toBeInstanceOf(ProxmoxNetworkError);
    expect(err.mayHaveApplied).toBe(true);
    expect(posts() - before).toBe(1);
  });

  it("a write is retried only while the connection is refused, then fails as not applied", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const nowhere = clientWith({ url: `https://127.0.0.1:${port}`, retry: { attempts: 3, baseMs: 1 } });
    const err = (await nowhere.createVm("pve1", 1207, {}).catch((e: unknown) => e)) as ProxmoxNetworkError;
    expect(err).toBeInstanceOf(ProxmoxNetworkError);
    expect(err.code).toBe("ECONNREFUSED");
    expect(err.mayHaveApplied).toBe(false);
    expect(nowhere.requestCount).toBe(3);
    await nowhere.close();
  });

  it("a 500 that is not 'does not exist' stays a plain ProxmoxApiError and is not retried", async () => {
    sim.faults.set({ errors: [{ path: "^/version$", status: 500, message: "internal trouble" }] });
    const before = client.requestCount;
    const err = await client.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxApiError);
    expect(err).not.toBeInstanceOf(ProxmoxNotFoundError);
    expect(client.requestCount - before).toBe(1);
  });
});

describe("TLS trust", () => {
  it("accepts the pinned fingerprint of the server certificate", async () => {
    const pinned = clientWith({ tls: { fingerprint: sim.fingerprint.toLowerCase() } });
    expect((await pinned.version()).version).toMatch(/^9\./);
    await pinned.close();
  });

  it("refuses a server whose certificate does not match the pin", async () => {
    const wrongPin = clientWith({ tls: { fingerprint: "AA:".repeat(31) + "AA" } });
    await expect(wrongPin.version()).rejects.toBeInstanceOf(ProxmoxTlsError);
    await wrongPin.close();
  });

  it("refuses a server signed by a CA that is not in the bundle", async () => {
    const otherCa = createServingPki(["localhost"]).caPem;
    const wrongCa = clientWith({ tls: { caPem: otherCa } });
    await expect(wrongCa.version()).rejects.toBeInstanceOf(ProxmoxTlsError);
    await wrongCa.close();
  });
});

describe("pure helpers", () => {
  it.each([
    [
      { storage: "local-lvm", address: "10.0.3.16/24", gateway: "10.0.3.1" },
      { ide2: "local-lvm:cloudinit", ipconfig0: "ip=10.0.3.16/24,gw=10.0.3.1" },
    ],
    [
      { storage: "shared", address: "dhcp", nameservers: ["9.9.9.9"] },
      { ipconfig0: "ip=dhcp", nameserver: "9.9.9.9" },
    ],
  ])("cloudInitConfig(%o)", (input, expected) => {
    expect(cloudInitConfig(input)).toMatchObject(expected);
  });

  it("formatTags sorts, dedups and rejects characters Proxmox refuses", () => {
    expect(formatTags(["talos", "cp", "talos"])).toBe("cp;talos");
    expect(() => formatTags(["no spaces"])).toThrow(/invalid Proxmox tag/);
  });
});
