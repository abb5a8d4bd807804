// A third-party client, Python's proxmoxer from PyPI (pinned in requirements.txt), drives the simulator:
// if the simulator only spoke "our" dialect, proxmoxer's auth header, form encoding, envelope parsing,
// UPID decoding and task polling would fail here.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxmoxSimulator, startProxmoxSimulator } from "../../src/proxmox/simulator/index.ts";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

let sim: ProxmoxSimulator;
let python: string;
let dir: string;

beforeAll(async () => {
  python = (await run("bash", [join(here, "install-proxmoxer.sh")], { timeout: 170_000 })).stdout.trim();
  sim = await startProxmoxSimulator({ taskDurationMs: 30 });
  dir = mkdtempSync(join(tmpdir(), "proxmoxer-peer-"));
  writeFileSync(join(dir, "ca.pem"), sim.caPem);
}, 180_000);

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PeerReport {
  nodes: string[];
  vmid: number;
  create_task: { node: string; type: string; id: string; user: string };
  create_status: string;
  config_scsi0: string;
  status_after_start: string;
  listed: number[];
  delete_status: string;
  listed_after_delete: number[];
  missing_error: { status: number; text: string } | null;
  param_error: { status: number; errors: Record<string, string> } | null;
}

async function runPeer(script: string): Promise<string> {
  const url = new URL(sim.url);
  const [user, tokenName] = sim.tokenId.split("!") as [string, string];
  const { stdout } = await run(python, [join(here, script)], {
    timeout: 60_000,
    env: {
      PATH: process.env["PATH"] ?? "",
      PVE_HOST: url.hostname,
      PVE_PORT: url.port,
      PVE_USER: user,
      PVE_TOKEN_NAME: tokenName,
      PVE_TOKEN_VALUE: sim.tokenSecret,
      PVE_CA_FILE: join(dir, "ca.pem"),
    },
  });
  return stdout;
}

interface LxcPeerReport {
  vmid: number;
  create_task: string;
  config_rootfs: string;
  start_task: string;
  node_list: [number, string, string][];
  cluster_list: [string, string, string][];
  delete_running_error: { status: number; text: string } | null;
  qemu_status_error: { status: number; text: string } | null;
  shutdown_task: string;
  status_after_shutdown: string;
  stop_stopped_error: { status: number; text: string } | null;
  backup_task: string;
  archives: string[];
  delete_task: string;
  listed_after_delete: number[];
}

describe("proxmoxer against the simulator", () => {
  it("creates, lists, starts, shuts down, backs up and deletes an LXC container, waiting on each task", async () => {
    const report = JSON.parse(await runPeer("peer_lxc.py")) as LxcPeerReport;
    const id = report.vmid;
    expect(report.create_task).toBe("vzcreate");
    expect(report.config_rootfs).toBe(`local-lvm:vm-${id}-disk-0,size=4G`);
    expect(report.start_task).toBe("vzstart");
    expect(report.node_list).toEqual([[id, "proxmoxer-ct", "running"]]);
    expect(report.cluster_list).toContainEqual([`lxc/${id}`, "lxc", "proxmoxer-ct"]);
    expect(report.delete_running_error?.status).toBe(500);
    expect(report.delete_running_error?.text).toContain(`unable to destroy CT ${id} - container is running`);
    expect(report.qemu_status_error?.text).toContain(`qemu-server/${id}.conf' does not exist`);
    expect(report.shutdown_task).toBe("vzshutdown");
    expect(report.status_after_shutdown).toBe("stopped");
    expect(report.stop_stopped_error?.text).toContain(`CT ${id} not running`);
    expect(report.backup_task).toBe("vzdump");
    expect(report.archives).toHaveLength(1);
    expect(report.archives[0]).toMatch(new RegExp(`^local:backup/vzdump-lxc-${id}-.*\\.tar\\.zst$`));
    expect(report.delete_task).toBe("vzdestroy");
    expect(report.listed_after_delete).not.toContain(id);
    expect(sim.requests.filter((r) => r.status === 501)).toEqual([]);
  });

  it("lists nodes, creates, starts, stops and deletes a VM, waiting on each task", async () => {
    const [user] = sim.tokenId.split("!") as [string];
    const report = JSON.parse(await runPeer("peer.py")) as PeerReport;
    expect(report.nodes).toEqual(["pve1", "pve2", "pve3"]);
    // proxmoxer's decode_upid keeps the user and drops the "!tokenid" part, as in a real token's UPID.
    expect(report.create_task).toMatchObject({
      node: "pve1",
      type: "qmcreate",
      id: String(report.vmid),
      user,
    });
    expect(report.create_status).toBe("OK");
    expect(report.config_scsi0).toBe(`local-lvm:vm-${report.vmid}-disk-0,size=8G`);
    expect(report.status_after_start).toBe("running");
    expect(report.listed).toContain(report.vmid);
    expect(report.delete_status).toBe("OK");
    expect(report.listed_after_delete).not.toContain(report.vmid);
    expect(report.missing_error?.status).toBe(500);
    expect(report.missing_error?.text).toContain(`qemu-server/${report.vmid}.conf' does not exist`);
    expect(report.param_error?.status).toBe(400);
    expect(report.param_error?.errors).toEqual({
      bogus: "property is not defined in schema and the schema does not allow additional properties",
    });
    // Every call proxmoxer made was answered by the simulator's Proxmox pipeline, not a 501 fallback.
    expect(sim.requests.filter((r) => r.status === 501)).toEqual([]);
    expect(
      sim.requests.some((r) => r.method === "GET" && /^\/nodes\/pve1\/tasks\/UPID:.*\/status$/.test(r.path)),
    ).toBe(true);
  });
});
