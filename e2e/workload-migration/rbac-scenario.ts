// The WorkloadMigration part of e2e/deploy/rbac.test.ts: with the controller running as the chart's
// ServiceAccount, one migration with every built target kind runs to retirement and one is rolled
// back, so every rule the chart grants this controller is exercised (and none is missing).
import type { KubeConfig } from "@kubernetes/client-node";
import { ProxmoxClient } from "../../src/proxmox/index.ts";
import { startProxmoxSimulator } from "../../src/proxmox/simulator/index.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import {
  createSourceVm,
  installHttpRouteCrd,
  startChecksServer,
  startDeploymentStandIn,
  upsMigration,
  WM,
} from "./operator.ts";

const GiB = 2 ** 30;

export async function runMigrationScenario(adminKc: KubeConfig, namespace: string): Promise<void> {
  const admin = new KubeClient(adminKc);
  await installHttpRouteCrd(admin);
  await admin.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  const sim = await startProxmoxSimulator({
    nodes: ["niobe"],
    storages: [
      { storage: "ceph-vm-disks", type: "rbd", content: ["images"], shared: true, total: 4096 * GiB },
      { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 8192 * GiB },
    ],
    taskDurationMs: 50,
  });
  const proxmox = new ProxmoxClient({
    url: sim.url,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { caPem: sim.caPem },
  });
  const checks = await startChecksServer();
  const stopStandIn = startDeploymentStandIn(admin, namespace);
  try {
    await admin.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "proxmox-token", namespace },
      stringData: { tokenID: sim.tokenId, secret: sim.tokenSecret },
    });
    await admin.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "proxmox-ca", namespace },
      stringData: { "ca.crt": sim.caPem },
    });
    const env = { sim, checksUrl: checks.url };
    const inNamespace = (o: KubeObject, credentialsNs: string): KubeObject => {
      const spec = o.spec as {
        proxmox: { credentialsRef: { namespace: string }; caBundleRef: { namespace: string } };
      };
      // Targets in the management cluster itself (no clusterRef): the path the chart's rules cover.
      delete (o.spec as { clusterRef?: unknown }).clusterRef;
      spec.proxmox.credentialsRef.namespace = credentialsNs;
      spec.proxmox.caBundleRef.namespace = credentialsNs;
      return { ...o, metadata: { ...o.metadata, namespace } };
    };
    await createSourceVm(proxmox, {
      vmid: 1010,
      name: "ups-stack",
      node: "niobe",
      memoryMiB: 1024,
      diskGiB: 8,
      ha: true,
    });
    await createSourceVm(proxmox, {
      vmid: 1011,
      name: "rollback",
      node: "niobe",
      memoryMiB: 1024,
      diskGiB: 8,
    });
    const full = inNamespace(upsMigration("all-kinds", { vmid: 1010, name: "ups-stack" }, env), namespace);
    const spec = full.spec as { targets: unknown[]; decommission: unknown };
    spec.targets = [
      {
        name: "web",
        kind: "Deployment",
        template: {
          image: "nginx:1.27",
          port: 8080,
          volumes: [{ name: "data", mountPath: "/data", size: "1Gi" }],
        },
        hostname: "web.apps.home.shdr.ch",
      },
      { name: "db", kind: "StatefulSet", template: { image: "postgres:17", port: 5432 } },
      {
        name: "scan",
        kind: "CronJob",
        template: { image: "projectdiscovery/nuclei:v3", schedule: "@weekly" },
      },
    ];
    // A user's sync Job: exercises the Job rules (get and create; the rollback below deletes its own).
    const userSyncJob = {
      method: "Job",
      job: {
        template: {
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "copy", image: "busybox:1.37", command: ["true"] }],
          },
        },
      },
    };
    (full.spec as Record<string, unknown>)["dataSync"] = userSyncJob;
    spec.decommission = {
      stopVM: true,
      backup: { storage: "pbs" },
      deleteAfter: "1s",
      requireApproval: false,
    };
    await admin.create(full);
    const rollback = inNamespace(upsMigration("rollback", { vmid: 1011, name: "rollback" }, env), namespace);
    (rollback.spec as { decommission: unknown }).decommission = { stopVM: true, requireApproval: true };
    // Synced before its VM stops, so its rollback removes its own sync Jobs (the Job delete rule).
    (rollback.spec as Record<string, unknown>)["dataSync"] = userSyncJob;
    await admin.create(rollback);
    const phase = async (name: string) =>
      ((await admin.get<KubeObject>(WM, { namespace, name })).status as { phase?: string } | undefined)
        ?.phase;
    await waitFor(
      "all-kinds retired",
      async () => (await phase("all-kinds")) === "Decommissioned",
      120_000,
      250,
    );
    await waitFor(
      "rollback's VM stopped",
      async () => (await phase("rollback")) === "VMStopped",
      120_000,
      250,
    );
    await admin.patch(WM, { namespace, name: "rollback" }, { spec: { rollback: true } }, "merge");
    await waitFor("rolled back", async () => (await phase("rollback")) === "RolledBack", 120_000, 250);
  } finally {
    stopStandIn();
    checks.server.close();
    await proxmox.close();
    await sim.stop();
  }
}
