// bench/peer-tenant: 200 PeerTenants created at once against a real control plane, the operator running
// as its own process (src/main.ts) with its own identity. Prints time to Ready per tenant (p50/p99),
// API writes per tenant (from the API server's audit log), writes during 60 s of idle afterwards, the
// operator's peak RSS, and the floor: one measured API write latency x writes a tenant needs.
//
// Usage: npm run bench:peer-tenant [-- --tenants 200 --idle 60]
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { startControlPlane } from "../../e2e/harness/control-plane.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { KubeClient } from "../../src/runtime/index.ts";
import { countWrites, writeAuditPolicy } from "./audit.ts";

const { values } = parseArgs({
  options: { tenants: { type: "string", default: "200" }, idle: { type: "string", default: "60" } },
});
const TENANTS = Number(values.tenants);
const IDLE_SECONDS = Number(values.idle);
const OPERATOR_USER = "homelab-operator";
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
  operator = spawn(process.execPath, ["src/main.ts"], {
    env: {
      ...process.env,
      KUBECONFIG: operatorKubeconfig,
      HEALTH_PORT: String(healthPort),
      HOMELAB_OPERATOR_USERNAMES: OPERATOR_USER,
      LOG_LEVEL: "warn",
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

  const names = Array.from({ length: TENANTS }, (_, i) => `bench-${String(i).padStart(3, "0")}`);
  const created = new Map<string, number>();
  const ready = new Map<string, number>();
  const start = performance.now();
  await pool(names, 20, async (name) => {
    await client.create({ ...TENANT_GVK, metadata: { name }, spec: tenantSpec(name, names.indexOf(name)) });
    created.set(name, performance.now());
  });
  while (ready.size < TENANTS) {
    const list = await client.list<{
      metadata?: { name?: string; generation?: number };
      status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
    }>(TENANT_GVK);
    const now = performance.now();
    for (const t of list.items) {
      const name = t.metadata?.name ?? "";
      const isReady = t.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      if (isReady && t.status?.observedGeneration === t.metadata?.generation && !ready.has(name))
        ready.set(name, now);
    }
    if (now - start > 600_000)
      throw new Error(`only ${ready.size}/${TENANTS} tenants Ready after 10 minutes`);
    await new Promise((r) => setTimeout(r, 100));
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
  const rss = await peakRssMiB(operator.pid!);
  // What the heap holds at rest, from the operator's own /metrics (prom-client default metrics).
  const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const heapUsedMiB =
    Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? Number.NaN) / 2 ** 20;
  const heapTotalMiB =
    Number(/^nodejs_heap_size_total_bytes (\S+)/m.exec(metrics)?.[1] ?? Number.NaN) / 2 ** 20;
  const externalMiB =
    Number(/^nodejs_external_memory_bytes (\S+)/m.exec(metrics)?.[1] ?? Number.NaN) / 2 ** 20;
  const rssNowMiB =
    Number(/^process_resident_memory_bytes (\S+)/m.exec(metrics)?.[1] ?? Number.NaN) / 2 ** 20;

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
  console.log(
    `  operator peak RSS               ${rss.toFixed(0)} MiB (at rest: RSS ${rssNowMiB.toFixed(0)} MiB, heap used ${heapUsedMiB.toFixed(0)} of ${heapTotalMiB.toFixed(0)} MiB, external ${externalMiB.toFixed(0)} MiB)`,
  );
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
  operator?.kill("SIGTERM");
  await cp.stop();
  await rm(work, { recursive: true, force: true });
}
