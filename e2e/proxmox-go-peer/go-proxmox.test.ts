// A second real client from another ecosystem, github.com/luthermonson/go-proxmox (the Go library under
// Cluster API's Proxmox provider and Omni), built from its module, drives the simulator through the
// calls such clients make first (version, node and cluster status, permissions, storages) and through
// create -> read back -> start -> stop -> delete, polling tasks with the library's own Wait.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_PRIVILEGES,
  type ProxmoxSimulator,
  startProxmoxSimulator,
} from "../../src/proxmox/simulator/index.ts";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

let sim: ProxmoxSimulator;
let peer: string;
let dir: string;

beforeAll(async () => {
  const built = await run("bash", [join(here, "build-go-proxmox-peer.sh")], { timeout: 570_000 });
  peer = built.stdout.trim().split("\n").at(-1)!;
  sim = await startProxmoxSimulator({ taskDurationMs: 30 });
  dir = mkdtempSync(join(tmpdir(), "go-proxmox-peer-"));
  writeFileSync(join(dir, "ca.pem"), sim.caPem);
}, 600_000);

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface GoPeerReport {
  version: string;
  nodes: string[];
  node_pveversion: string;
  node_cpus: number;
  cluster_name: string;
  cluster_nodes: number;
  root_privileges: number;
  storages: string[];
  images_storage: string;
  create_task_type: string;
  create_status: string;
  config: Record<string, string>;
  status_after_start: string;
  second_start: string;
  status_after_stop: string;
  second_stop: string;
  delete_status: string;
  gone_after_delete: boolean;
  tasks_listed: number;
  disk_volumes: string[];
}

describe("go-proxmox against the simulator", () => {
  it("gets past the first calls and runs create, read back, start, stop and delete", async () => {
    const vmid = 2042;
    const { stdout } = await run(peer, [], {
      timeout: 120_000,
      env: {
        PATH: process.env["PATH"] ?? "",
        PVE_URL: sim.url,
        PVE_TOKEN_ID: sim.tokenId,
        PVE_TOKEN_SECRET: sim.tokenSecret,
        PVE_CA_FILE: join(dir, "ca.pem"),
        PVE_NODE: "pve2",
        PVE_VMID: String(vmid),
      },
    });
    const report = JSON.parse(stdout) as GoPeerReport;
    expect(report.version).toBe("9.1.1");
    expect(report.nodes).toEqual(["pve1", "pve2", "pve3"]);
    expect(report.node_pveversion).toContain("9.1.1");
    expect(report.node_cpus).toBe(16);
    expect(report.cluster_nodes).toBe(3);
    expect(report.root_privileges).toBe(ALL_PRIVILEGES.length);
    expect(report.storages).toEqual(["local", "local-lvm", "shared"]);
    expect(report.images_storage).toBe("local-lvm");

    expect(report.create_task_type).toBe("qmcreate");
    expect(report.create_status).toBe("OK");
    // What Proxmox fills in on create: a MAC under its prefix in the model key, smbios1 uuid, vmgenid, meta.
    expect(report.config["net0"]).toMatch(/^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0,tag=3$/);
    expect(report.config["scsi0"]).toBe(`local-lvm:vm-${vmid}-disk-0,size=4G`);
    expect(report.config["ide2"]).toBe(`local-lvm:vm-${vmid}-cloudinit,media=cdrom`);
    expect(report.config["smbios1"]).toMatch(/^uuid=[0-9a-f-]{36}$/);
    expect(report.config["vmgenid"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(report.config["meta"]).toMatch(/^creation-qemu=[\d.]+,ctime=\d+$/);
    expect(report.disk_volumes).toContain(`local-lvm:vm-${vmid}-disk-0`);

    expect(report.status_after_start).toBe("running");
    // qemu-server: a second start is accepted and its task fails; a second stop is a no-op task.
    expect(report.second_start).toBe(`VM ${vmid} already running`);
    expect(report.status_after_stop).toBe("stopped");
    expect(report.second_stop).toBe("OK");
    expect(report.delete_status).toBe("OK");
    expect(report.gone_after_delete).toBe(true);
    expect(report.tasks_listed).toBeGreaterThanOrEqual(6);

    // Every call the library made reached a served endpoint: nothing fell through to a 501.
    expect(sim.requests.filter((r) => r.status === 501)).toEqual([]);
    for (const path of ["/nodes/pve2/status", "/cluster/status", "/access/permissions", "/nodes/pve2/tasks"])
      expect(sim.requests.some((r) => r.path === path && r.status === 200)).toBe(true);
    expect(
      sim
        .records()
        .filter((r) => r.vmid === vmid)
        .map((r) => [r.kind, r.action, r.exitstatus]),
    ).toEqual([
      ["vm-create", undefined, "OK"],
      ["power", "start", "OK"],
      ["power", "start", `VM ${vmid} already running`],
      ["power", "stop", "OK"],
      ["power", "stop", "OK"],
      ["vm-delete", undefined, "OK"],
    ]);
  }, 180_000);
});
