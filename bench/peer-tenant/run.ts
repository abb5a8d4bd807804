// bench/peer-tenant: 1000 PeerTenants (default) created at once against a real control plane, the
// operator running as its own process, as the image runs it (tsc's JavaScript, `node dist/main.js`, with
// the Dockerfile's NODE_OPTIONS and MALLOC_* settings), with its own identity. Prints time to Ready per
// tenant (p50/p99), API writes per tenant (from the API server's audit log), writes during 60 s of idle
// afterwards, the operator's peak RSS against issue #9's target and peak heap (sampled from its
// /metrics), what its caches hold, and the floor: one measured API write latency x writes a tenant needs.
//
// Usage: npm run bench:peer-tenant [-- --tenants 1000 --idle 60 --heap-snapshot]
//        (or BENCH_TENANTS=1000; --node-options replaces the image's flags to the operator's node;
//        --no-malloc-env leaves out the image's MALLOC_* variables; --type-stripping runs src/main.ts as
//        `npm start` does instead of the build; --no-leader-election runs it with LEADER_ELECT=false)
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { startControlPlane } from "../../e2e/harness/control-plane.ts";
import { buildAppDir } from "../../scripts/build.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import { countWrites, writeAuditPolicy } from "./audit.ts";

const { values } = parseArgs({
  options: {
    tenants: { type: "string", default: process.env.BENCH_TENANTS ?? "1000" },
    idle: { type: "string", default: "60" },
    // Writes a heap snapshot of the operator at rest and prints what its heap holds, by constructor.
    "heap-snapshot": { type: "boolean", default: false },
    // Default: the NODE_OPTIONS the Dockerfile ships, so the figures are those of the image.
    "node-options": { type: "string" },
    // `npm start`'s way: Node's type stripping, whose WebAssembly TypeScript parser stays in the process
    // for good. Default: the image's way, scripts/build.ts's JavaScript.
    "type-stripping": { type: "boolean", default: false },
    "no-malloc-env": { type: "boolean", default: false },
    // On a heavily loaded machine the API server answered the lease renewal too late (10 s renew
    // deadline) and the operator exited, as it must; this keeps such a run going (LEADER_ELECT=false).
    "no-leader-election": { type: "boolean", default: false },
  },
});
const TENANTS = Number(values.tenants);
const IDLE_SECONDS = Number(values.idle);
const OPERATOR_USER = "homelab-operator";
// Issue #9's target for the operator managing 1000 PeerTenants: peak RSS (VmHWM) at most this.
const TARGET_PEAK_RSS_MIB = 150;
const TENANT_GVK = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function tenantSpec(name: string, i: number) {
  return {
    owners: { users: [name], groups: [`peers-${name}`] },
    quota: { perNamespace: { "requests.memory": "4Gi", "limits.memory": "8Gi", pods: "20" } },
    limits: { defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } },
    network: { allowIngressFromNamespaces: ["ingress", "knative-serving"] },
    requiredLabels: ["owner"],
    gitlab: { groupPath: `peers/${name}`, groupID: 1000 + i },
  };
}

/** The image's memory settings: its NODE_OPTIONS and MALLOC_* lines (glibc's allocator), as the Dockerfile sets them. */
async function dockerfileMemoryEnv(): Promise<{ nodeOptions: string; malloc: Record<string, string> }> {
  const dockerfile = await readFile(new URL("../../Dockerfile", import.meta.url), "utf8");
  const malloc = Object.fromEntries(
    [...dockerfile.matchAll(/^ENV (MALLOC_[A-Z_]+)=(\S+)$/gm)].map(([, k, v]) => [k!, v!]),
  );
  return { nodeOptions: /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? "", malloc };
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN);
}

/** Signals the operator to write a heap snapshot, waits for it, and sums self sizes by constructor. */
async function heapSnapshotSummary(pid: number, dir: string): Promise<string[]> {
  process.kill(pid, "SIGUSR2");
  let file: string | undefined;
  for (let i = 0; i < 600 && !file; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const found = (await readdir(dir)).find((f) => f.endsWith(".heapsnapshot"));
    // Written in one go; a size that stopped growing means it is complete.
    if (found) {
      const a = (await stat(join(dir, found))).size;
      await new Promise((r) => setTimeout(r, 1000));
      if ((await stat(join(dir, found))).size === a && a > 0) file = found;
    }
  }
  if (!file) return ["(no heap snapshot written within 5 minutes)"];
  const snap = JSON.parse(await readFile(join(dir, file), "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const bySize = new Map<string, { size: number; count: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt!]!]!;
    const size = snap.nodes[i + sizeAt!]!;
    total += size;
    // Strings are named by their content: group them, and everything but objects, by type.
    const name =
      type === "object" || type === "closure"
        ? `${type} ${snap.strings[snap.nodes[i + nameAt!]!]}`
        : `(${type})`;
    const entry = bySize.get(name) ?? { size: 0, count: 0 };
    entry.size += size;
    entry.count++;
    bySize.set(name, entry);
  }
  const top = [...bySize.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 15);
  return [
    `total ${(total / 2 ** 20).toFixed(1)} MiB in ${(snap.nodes.length / fields.length).toFixed(0)} nodes`,
    ...top.map(
      ([n, e]) => `${(e.size / 2 ** 20).toFixed(1).padStart(6)} MiB ${String(e.count).padStart(8)}  ${n}`,
    ),
  ];
}

const work = await mkdtemp(join(tmpdir(), "bench-peer-tenant-"));
const audit = await writeAuditPolicy(work);
const cp = await startControlPlane({ name: "bench", extraApiServerArgs: audit.args });
let operator: ReturnType<typeof spawn> | undefined;
try {
  const admin = cp.kubeConfig();
  const client = new KubeClient(admin);
  await installCRDs(admin);
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: "homelab-operator" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: OPERATOR_USER }],
    },
  });
  const operatorKc = await cp.userKubeConfig(OPERATOR_USER);
  const operatorKubeconfig = join(work, "operator.kubeconfig");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(operatorKubeconfig, operatorKc.exportConfig());

  // The floor: latency of one API write (server-side apply of a small object), median of 50.
  const latencies: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await client.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: `floor-${i % 5}`, namespace: "default" },
      data: { i: String(i) },
    });
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const writeLatencyMs = percentile(latencies, 50);

  const healthPort = await freePort();
  const imageEnv = await dockerfileMemoryEnv();
  const nodeOptions = values["node-options"] ?? imageEnv.nodeOptions;
  // --no-malloc-env measures without the image's MALLOC_* settings.
  const mallocEnv = values["no-malloc-env"] ? {} : imageEnv.malloc;
  const nodeFlags = [
    ...(nodeOptions.trim() ? nodeOptions.trim().split(/\s+/) : []),
    ...(values["heap-snapshot"] ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${work}`] : []),
  ];
  const entry = values["type-stripping"] ? "src/main.ts" : buildAppDir(join(work, "app"));
  operator = spawn(process.execPath, [...nodeFlags, entry], {
    env: {
      ...process.env,
      ...mallocEnv,
      KUBECONFIG: operatorKubeconfig,
      HEALTH_PORT: String(healthPort),
      HOMELAB_OPERATOR_USERNAMES: OPERATOR_USER,
      LOG_LEVEL: "warn",
      ...(values["no-leader-election"] ? { LEADER_ELECT: "false" } : {}),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error("the operator did not become ready within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  const beforeTenants = await countWrites(audit.logPath, OPERATOR_USER);
  const rssBeforeTenantsMiB = metric(await scrape(healthPort), "process_resident_memory_bytes") / 2 ** 20;
  // Peak heap: sampled every 500 ms from the operator's own /metrics while tenants converge and at idle.
  let peakHeapUsedMiB = 0;
  let peakHeapTotalMiB = 0;
  const sampler = setInterval(() => {
    void scrape(healthPort).then(
      (m) => {
        peakHeapUsedMiB = Math.max(peakHeapUsedMiB, metric(m, "nodejs_heap_size_used_bytes") / 2 ** 20);
        peakHeapTotalMiB = Math.max(peakHeapTotalMiB, metric(m, "nodejs_heap_size_total_bytes") / 2 ** 20);
      },
      () => {},
    );
  }, 500);
  sampler.unref();

  const width = String(TENANTS - 1).length;
  const names = Array.from({ length: TENANTS }, (_, i) => `bench-${String(i).padStart(width, "0")}`);
  const created = new Map<string, number>();
  const ready = new Map<string, number>();
  const start = performance.now();
  await pool(names, 20, async (name) => {
    await client.create({ ...TENANT_GVK, metadata: { name }, spec: tenantSpec(name, names.indexOf(name)) });
    created.set(name, performance.now());
  });
  while (ready.size < TENANTS) {
    // A list that times out on an overloaded API server is tried again; only the operator's exit or the
    // 30 minute deadline end the run.
    const list = await client
      .list<{
        metadata?: { name?: string; generation?: number };
        status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
      }>(TENANT_GVK)
      .catch((err: unknown) => {
        console.warn(`bench: listing the tenants failed (${String(err)}), trying again`);
        return { items: [] };
      });
    const now = performance.now();
    for (const t of list.items) {
      const name = t.metadata?.name ?? "";
      const isReady = t.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      if (isReady && t.status?.observedGeneration === t.metadata?.generation && !ready.has(name))
        ready.set(name, now);
    }
    if (operator.exitCode !== null)
      throw new Error(
        `the operator exited (code ${operator.exitCode}) with ${ready.size}/${TENANTS} tenants Ready`,
      );
    if (now - start > 1_800_000)
      throw new Error(`only ${ready.size}/${TENANTS} tenants Ready after 30 minutes`);
    // Listing every tenant is itself load on the API server (a 1000-tenant list is megabytes of JSON):
    // poll less often the more there are. On a loaded machine a 500 ms poll slowed the API server
    // enough that the operator's lease renewals timed out.
    await new Promise((r) => setTimeout(r, TENANTS > 300 ? 2_000 : 100));
  }
  const allReadyMs = performance.now() - start;
  // Let in-flight writes (events, status) land before counting.
  await new Promise((r) => setTimeout(r, 2_000));
  const afterTenants = await countWrites(audit.logPath, OPERATOR_USER);

  const idleStart = new Date();
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idle = await countWrites(audit.logPath, OPERATOR_USER, idleStart);
  const leaseWrites = Object.entries(idle.byResource)
    .filter(([r]) => r.startsWith("leases"))
    .reduce((a, [, n]) => a + n, 0);
  clearInterval(sampler);
  const rss = await peakRssMiB(operator.pid!);
  // What the heap holds at rest, from the operator's own /metrics (prom-client default metrics).
  const metrics = await scrape(healthPort);
  const heapUsedMiB = metric(metrics, "nodejs_heap_size_used_bytes") / 2 ** 20;
  const heapTotalMiB = metric(metrics, "nodejs_heap_size_total_bytes") / 2 ** 20;
  const externalMiB = metric(metrics, "nodejs_external_memory_bytes") / 2 ** 20;
  const rssNowMiB = metric(metrics, "process_resident_memory_bytes") / 2 ** 20;
  const cached = [...metrics.matchAll(/^homelab_informer_cached_objects\{([^}]*)\} (\S+)$/gm)]
    .map(([, labels, n]) => ({ labels: labels!, n: Number(n) }))
    .filter((c) => c.n > 0)
    .sort((a, b) => b.n - a.n);
  const heapSummary = values["heap-snapshot"] ? await heapSnapshotSummary(operator.pid!, work) : undefined;

  const perTenant = names.map((n) => ready.get(n)! - created.get(n)!).sort((a, b) => a - b);
  const tenantWrites = afterTenants.total - beforeTenants.total;
  const writesPerTenant = tenantWrites / TENANTS;
  const byResource: Record<string, number> = {};
  for (const [r, n] of Object.entries(afterTenants.byResource)) {
    const d = n - (beforeTenants.byResource[r] ?? 0);
    if (d > 0 && !r.startsWith("leases")) byResource[r] = Number((d / TENANTS).toFixed(2));
  }
  const floorMs = writeLatencyMs * writesPerTenant;
  const p50 = percentile(perTenant, 50);
  console.log(
    `\nbench/peer-tenant: ${TENANTS} PeerTenants created at once (20 creates in flight), operator as a process`,
  );
  console.log(`  all Ready after                 ${(allReadyMs / 1000).toFixed(1)} s`);
  console.log(
    `  time to Ready per tenant        p50 ${p50.toFixed(0)} ms, p99 ${percentile(perTenant, 99).toFixed(0)} ms`,
  );
  console.log(
    `  API writes per tenant           ${writesPerTenant.toFixed(1)} (audit log; lease renewals excluded)`,
  );
  console.log(`    by resource                   ${JSON.stringify(byResource)}`);
  console.log(
    `  writes during ${IDLE_SECONDS} s idle         ${idle.total - leaseWrites} (plus ${leaseWrites} lease renewals)`,
  );
  const idleByResource = Object.fromEntries(
    Object.entries(idle.byResource).filter(([r]) => !r.startsWith("leases")),
  );
  if (Object.keys(idleByResource).length)
    console.log(`    by resource                   ${JSON.stringify(idleByResource)}`);
  const idleObjects = Object.entries(idle.byObject)
    .filter(([o]) => !o.includes(" leases"))
    .sort((a, b) => b[1] - a[1]);
  if (idleObjects.length)
    console.log(
      `    most written (of ${idleObjects.length})    ${idleObjects
        .slice(0, 5)
        .map(([o, n]) => `${n}x ${o}`)
        .join("; ")}`,
    );
  console.log(
    `  operator peak RSS               ${rss.toFixed(0)} MiB (at rest: RSS ${rssNowMiB.toFixed(0)} MiB, heap used ${heapUsedMiB.toFixed(0)} of ${heapTotalMiB.toFixed(0)} MiB, external ${externalMiB.toFixed(0)} MiB)`,
  );
  console.log(
    `  target (1000 tenants)           peak RSS <= ${TARGET_PEAK_RSS_MIB} MiB: ${rss <= TARGET_PEAK_RSS_MIB ? "met" : "NOT met"} (${Math.abs(rss - TARGET_PEAK_RSS_MIB).toFixed(0)} MiB ${rss <= TARGET_PEAK_RSS_MIB ? "under" : "over"})${TENANTS === 1000 ? "" : `; this run had ${TENANTS} tenants`}`,
  );
  console.log(
    `  operator RSS before tenants     ${rssBeforeTenantsMiB.toFixed(0)} MiB (caches synced, nothing to do)`,
  );
  console.log(
    `  operator peak heap (sampled)    used ${peakHeapUsedMiB.toFixed(0)} MiB, total ${peakHeapTotalMiB.toFixed(0)} MiB${nodeFlags.length ? ` (node ${nodeFlags.join(" ")})` : ""}${
      Object.keys(mallocEnv).length
        ? ` (env ${Object.entries(mallocEnv)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")})`
        : ""
    }`,
  );
  console.log(
    `  leader election                 ${values["no-leader-election"] ? "off (--no-leader-election)" : "on"}`,
  );
  console.log(
    `  operator ran                    ${values["type-stripping"] ? "src/main.ts (type stripping)" : "dist/main.js (scripts/build.ts, as the image)"}`,
  );
  console.log(`  objects in the operator's caches ${cached.reduce((a, c) => a + c.n, 0)}`);
  for (const c of cached) console.log(`    ${String(c.n).padStart(6)}  ${c.labels}`);
  if (heapSummary) {
    console.log("  heap at rest by constructor (self size, top 15)");
    for (const line of heapSummary) console.log(`    ${line}`);
  }
  console.log(`  one API write (SSA, median)     ${writeLatencyMs.toFixed(1)} ms`);
  console.log(
    `  floor per tenant                ${floorMs.toFixed(0)} ms (write latency x writes per tenant, sequential)`,
  );
  console.log(
    `  p50 / floor                     ${(p50 / floorMs).toFixed(2)} (includes waiting behind the other tenants)`,
  );
  // With every tenant at once, the API server's write throughput is the real bound: all the writes made
  // one after another at the measured latency.
  const aggregateFloorMs = writeLatencyMs * tenantWrites;
  console.log(
    `  aggregate floor                 ${(aggregateFloorMs / 1000).toFixed(1)} s (${tenantWrites} writes x write latency)`,
  );
  console.log(`  all Ready / aggregate floor     ${(allReadyMs / aggregateFloorMs).toFixed(2)}`);
} finally {
  // Let the operator release its lease and exit before its API server goes away.
  if (operator && operator.exitCode === null) {
    const exited = new Promise((r) => operator!.once("exit", r));
    operator.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  }
  await cp.stop();
  await rm(work, { recursive: true, force: true });
}
