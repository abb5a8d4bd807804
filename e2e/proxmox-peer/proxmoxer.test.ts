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

describe("proxmoxer against the simulator", () => {
  it("lists nodes, creates, starts, stops and deletes a VM, waiting on each task", async () => {
    const url = new URL(sim.url);
    const [user, tokenName] = sim.tokenId.split("!") as [string, string];
    const { stdout } = await run(python, [join(here, "peer.py")], {
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
    const report = JSON.parse(stdout) as PeerReport;
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
