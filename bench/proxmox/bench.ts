// How many Proxmox API calls does it take to bring 3 Talos VMs from nothing to running, and to check
// them afterwards? Runs the client against the simulator with task durations in the range a real
// cluster shows, counts requests on the server side, and prints the figures.
//   npm run bench:proxmox
import { createHash } from "node:crypto";
import { cloudInitConfig, ProxmoxClient } from "../../src/proxmox/index.ts";
import {
  type RecordedRequest,
  simulatedDownload,
  startProxmoxSimulator,
} from "../../src/proxmox/simulator/index.ts";

const NODES = ["trinity", "neo", "niobe"];
const VMS = NODES.map((node, i) => ({ node, vmid: 1030 + i, name: `talos-${node}`, ip: `10.0.3.${16 + i}` }));
const ISO = "talos-nocloud-amd64.iso";
const IMAGE_URL =
  "https://factory.talos.dev/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.11.5/nocloud-amd64.iso";

const sim = await startProxmoxSimulator({
  nodes: NODES,
  // Loosely what a homelab shows: image download seconds, create and start well under a second.
  taskDurationMs: { download: 3_000, qmcreate: 600, qmstart: 400, default: 300 },
});
const client = new ProxmoxClient({
  url: sim.url,
  tokenId: sim.tokenId,
  tokenSecret: sim.tokenSecret,
  tls: { fingerprint: sim.fingerprint },
});
const wait = { initialDelayMs: 250, maxDelayMs: 2_000 };

function kind(r: RecordedRequest): string {
  return `${r.method} ${r.path
    .replace(/UPID:[^/]+/, (u) => `{upid ${u.split(":")[5]}}`)
    .replace(/\/nodes\/[^/]+/, "/nodes/{node}")
    .replace(/\/qemu\/\d+/, "/qemu/{vmid}")
    .replace(/\/ha\/resources\/[^/]+/, "/ha/resources/{sid}")}`;
}

function summarize(requests: RecordedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) counts.set(kind(r), (counts.get(kind(r)) ?? 0) + 1);
  return new Map([...counts].sort((a, b) => b[1] - a[1]));
}

const started = performance.now();
const from = sim.requests.length;

// 1. What exists already: one cluster-wide read.
const existing = new Set((await client.listVms()).map((v) => v.vmid));

// 2. The nocloud image on each node's local storage (not shared), downloaded once per node.
await Promise.all(
  NODES.map(async (node) => {
    const have = await client.storageContent(node, "local", { content: "iso" });
    if (have.some((v) => v.volid === `local:iso/${ISO}`)) return;
    const task = await client.downloadUrl(node, "local", {
      url: IMAGE_URL,
      content: "iso",
      filename: ISO,
      // The simulator really compares checksums: this is the digest of what it serves for the URL.
      checksum: {
        algorithm: "sha256",
        value: createHash("sha256").update(simulatedDownload(IMAGE_URL)).digest("hex"),
      },
    });
    await client.waitForTask(task, wait);
  }),
);

// 3. The VMs, created stopped, then handed to HA, which starts them; control planes kept apart.
await Promise.all(
  VMS.filter((vm) => !existing.has(vm.vmid)).map(async (vm) => {
    const task = await client.createVm(vm.node, vm.vmid, {
      name: vm.name,
      cores: 4,
      memory: 8192,
      cpu: "host",
      machine: "q35",
      scsihw: "virtio-scsi-pci",
      scsi0: "local-lvm:100",
      ide0: `local:iso/${ISO},media=cdrom`,
      net0: "virtio,bridge=vmbr0",
      boot: "order=scsi0;ide0",
      agent: "enabled=1",
      tags: "controlplane;talos",
      ...cloudInitConfig({
        storage: "local-lvm",
        address: `${vm.ip}/24`,
        gateway: "10.0.3.1",
        nameservers: ["10.0.3.1"],
      }),
    });
    await client.waitForTask(task, wait);
    await client.addHaResource({ sid: `vm:${vm.vmid}`, state: "started" });
  }),
);
await client.addHaRule({
  rule: "talos-controlplanes-apart",
  type: "resource-affinity",
  affinity: "negative",
  resources: VMS.map((vm) => `vm:${vm.vmid}`),
});

// 4. Until all run: the same cluster-wide read, polled.
let polls = 0;
for (;;) {
  polls++;
  const vms = await client.listVms();
  if (VMS.every((vm) => vms.find((v) => v.vmid === vm.vmid)?.status === "running")) break;
  await new Promise((r) => setTimeout(r, 250));
}
const provisionMs = performance.now() - started;
const provision = sim.requests.slice(from);

// Steady state: one reconcile's check of all three VMs (state, node, tags, HA) is one read.
const steadyFrom = sim.requests.length;
const vms = await client.listVms();
const healthy = VMS.every((vm) => {
  const v = vms.find((x) => x.vmid === vm.vmid);
  return (
    v?.status === "running" &&
    v.node === vm.node &&
    v.hastate === "started" &&
    v.tags === "controlplane;talos"
  );
});
const steady = sim.requests.slice(steadyFrom);

console.log("Proxmox API calls — 3 Talos VMs (simulator, server-side count)\n");
console.log(`from nothing to running: ${provision.length} calls in ${(provisionMs / 1000).toFixed(1)} s`);
for (const [k, n] of summarize(provision)) console.log(`  ${String(n).padStart(3)}  ${k}`);
console.log(
  `  (of which ${polls} cluster-resources polls until running; task polls depend on task durations)`,
);
console.log(
  `\nsteady-state check of 3 VMs: ${steady.length} call(s) — ${[...summarize(steady).keys()].join(", ")}`,
);
console.log(
  `  all healthy: ${healthy}; a per-VM check (status/current + config each) would cost ${VMS.length * 2}`,
);

await client.close();
await sim.stop();
if (steady.length !== 1 || !healthy) {
  console.error("steady-state check must be exactly one cluster-wide read of healthy VMs");
  process.exit(1);
}
