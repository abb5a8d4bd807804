// bench/homelab-cluster: the seed's HomelabCluster from create to Ready on the Proxmox and Talos
// simulators, with the operator as its own process, twice: zero simulator latency (what the operator
// itself costs) and realistic task latencies. Prints time to Ready, Proxmox and Talos calls per phase
// (attributed to the first phase not yet True when the call arrived), and the steady state: calls per
// resync once Ready, counted against the operator's own reconcile counter.
//
// Usage: npm run bench:homelab-cluster [-- --idle 12]
import { parseArgs } from "node:util";
import { startControlPlane } from "../../e2e/harness/control-plane.ts";
import { type Homelab, SEED, startHomelab } from "../../e2e/homelab-cluster/homelab.ts";
import { HC, prepareCluster, seedCluster, startOperator } from "../../e2e/homelab-cluster/operator.ts";
import { PHASE_CONDITIONS } from "../../src/controllers/homelab-cluster/controller.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import type { KubeClient } from "../../src/runtime/index.ts";

const { values } = parseArgs({ options: { idle: { type: "string", default: "12" } } });
const IDLE_MS = Number(values.idle) * 1000;
const RESYNC_MS = 2_000;

const SCENARIOS = [
  { name: "zero latency", taskDurationMs: 0, rebootDelayMs: 0, pollMs: 150 },
  {
    name: "realistic tasks",
    // The controller's default poll interval: what a real homelab sees.
    pollMs: 2_000,
    taskDurationMs: { default: 800, qmcreate: 3_000, download: 12_000, resize: 1_500 },
    rebootDelayMs: 8_000,
  },
];

const talosCalls = (h: Homelab) => SEED.reduce((n, s) => n + h.talos.node(s.name).calls.length, 0);

async function reconciles(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(
    /^controller_runtime_reconcile_total\{controller="homelabcluster",[^}]*\} (\d+)/gm,
  ))
    sum += Number(m[1]);
  return sum;
}

async function run(scenario: (typeof SCENARIOS)[number], cp: Awaited<ReturnType<typeof startControlPlane>>) {
  const homelab = await startHomelab(scenario);
  const client: KubeClient = await prepareCluster(cp.kubeConfig(), homelab);
  const healthPort = await freePort();
  const operator = startOperator(homelab, {
    KUBECONFIG: cp.kubeconfigPath,
    HEALTH_PORT: String(healthPort),
    RESYNC_MS: String(RESYNC_MS),
    POLL_MS: String(scenario.pollMs),
  });
  const perPhase = new Map<string, { proxmox: number; talos: number; ms: number }>();
  try {
    await new Promise((r) => setTimeout(r, 2_000)); // operator start and cache sync
    const started = Date.now();
    await client.create(seedCluster(homelab));
    let phase = PHASE_CONDITIONS[0]!;
    let mark = { proxmox: homelab.proxmox.requests.length, talos: talosCalls(homelab), at: Date.now() };
    const close = (next: string) => {
      const p = perPhase.get(phase) ?? { proxmox: 0, talos: 0, ms: 0 };
      const now = { proxmox: homelab.proxmox.requests.length, talos: talosCalls(homelab), at: Date.now() };
      perPhase.set(phase, {
        proxmox: p.proxmox + now.proxmox - mark.proxmox,
        talos: p.talos + now.talos - mark.talos,
        ms: p.ms + now.at - mark.at,
      });
      mark = now;
      phase = next;
    };
    for (;;) {
      const hc = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(HC, {
        name: "k8s",
      });
      const conds = hc.status?.conditions ?? [];
      const first = PHASE_CONDITIONS.find((t) => conds.find((c) => c.type === t)?.status !== "True");
      if (!first) {
        close("Ready");
        break;
      }
      if (first !== phase) close(first);
      if (Date.now() - started > 600_000) throw new Error("not Ready after 10 minutes");
      await new Promise((r) => setTimeout(r, 25));
    }
    const readyMs = Date.now() - started;

    // Steady state.
    const before = {
      proxmox: homelab.proxmox.requests.length,
      talos: talosCalls(homelab),
      reconciles: await reconciles(healthPort),
    };
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const paths = homelab.proxmox.requests.slice(before.proxmox).map((r) => `${r.method} ${r.path}`);
    const after = {
      proxmox: homelab.proxmox.requests.length,
      talos: talosCalls(homelab),
      reconciles: await reconciles(healthPort),
    };
    const resyncs = after.reconciles - before.reconciles;

    console.log(`\n## ${scenario.name}`);
    console.log(`create to Ready: ${(readyMs / 1000).toFixed(1)} s`);
    console.log("| phase | time (s) | Proxmox calls | Talos calls |\n| --- | --- | --- | --- |");
    for (const [name, p] of perPhase)
      console.log(`| ${name} | ${(p.ms / 1000).toFixed(1)} | ${p.proxmox} | ${p.talos} |`);
    const total = [...perPhase.values()].reduce(
      (a, p) => ({ proxmox: a.proxmox + p.proxmox, talos: a.talos + p.talos }),
      { proxmox: 0, talos: 0 },
    );
    console.log(`| total | ${(readyMs / 1000).toFixed(1)} | ${total.proxmox} | ${total.talos} |`);
    console.log(
      `steady state over ${IDLE_MS / 1000} s: ${resyncs} resyncs, ${after.proxmox - before.proxmox} Proxmox calls (${[...new Set(paths)].join(", ")}), ${after.talos - before.talos} Talos calls → ${((after.proxmox - before.proxmox) / Math.max(resyncs, 1)).toFixed(2)} Proxmox and ${((after.talos - before.talos) / Math.max(resyncs, 1)).toFixed(2)} Talos calls per resync`,
    );
    if (resyncs > 0 && (after.proxmox - before.proxmox) / resyncs > 1)
      throw new Error("steady state costs more than one Proxmox read per resync");
    await client.delete(HC, { name: "k8s" });
  } finally {
    await operator.kill("SIGTERM");
    await homelab.stop();
  }
}

const cp = await startControlPlane({ name: "bench-homelab-cluster" });
try {
  for (const s of SCENARIOS) await run(s, cp);
} finally {
  await cp.stop();
}
