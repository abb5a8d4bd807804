// Targets given as a complete manifest: what the user wrote reaches the workload cluster as written
// (node pin, host device, privileged container, NFS-style extra ports), judged by the real API server
// and placed by the real scheduler (KWOK as the kubelet); what the operator owns (its labels, the size
// while held or rolled back, a CronJob's suspend) wins over the manifest; and a manifest the API server
// refuses creates nothing at all.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workloadObjects } from "../../src/controllers/workload-migration/workloads.ts";
import { loadExamples } from "../../src/crds/examples.ts";
import type { WorkloadMigration } from "../../src/crds/workload-migration.ts";
import type { KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import {
  createSourceVm,
  DEPLOYMENT,
  type MigrationEnv,
  NAMESPACE,
  ROUTE,
  startMigrationEnv,
  upsMigration,
  WM,
} from "./operator.ts";
import { cond, migrationStatus, simRecords } from "./status.ts";

const STATEFULSET = { apiVersion: "apps/v1", kind: "StatefulSet" } as const;
const CRONJOB = { apiVersion: "batch/v1", kind: "CronJob" } as const;
const SERVICE = { apiVersion: "v1", kind: "Service" } as const;
const POD = { apiVersion: "v1", kind: "Pod" } as const;

// biome-ignore lint/suspicious/noExplicitAny: the assertions read workload specs as JSON
type Loose = KubeObject & { spec: any };

let env: MigrationEnv;
beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig());
}, 120_000);
afterAll(async () => {
  await env?.stop();
});

const { waitStatus } = migrationStatus(() => env, { timeoutMs: 90_000, intervalMs: 200 });
const inWorkload = <T extends KubeObject = Loose>(gvk: { apiVersion: string; kind: string }, name: string) =>
  env.workload.getOrUndefined<T>(gvk, { namespace: NAMESPACE, name });
const { changesOf: untouched } = simRecords(() => env);
const rollBack = (name: string) =>
  env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");

/** The NUT server as the seed needs it: pinned to niobe's node, the host's USB bus, privileged. */
const nutTarget = (name: string, overrides: Record<string, unknown> = {}) => ({
  name,
  kind: "Deployment",
  manifest: {
    labels: { "app.kubernetes.io/part-of": "ups-stack" },
    spec: {
      strategy: { type: "Recreate" },
      template: {
        spec: {
          nodeSelector: { "kubernetes.io/hostname": "talos-niobe" },
          containers: [
            {
              name: "nut-upsd",
              image: "instantlinux/nut-upsd:2.8.2",
              ports: [{ name: "nut", containerPort: 3493 }],
              securityContext: { privileged: true },
              volumeMounts: [{ name: "usb", mountPath: "/dev/bus/usb" }],
            },
          ],
          volumes: [{ name: "usb", hostPath: { path: "/dev/bus/usb", type: "Directory" } }],
          ...overrides,
        },
      },
    },
  },
  backend: { port: 3493 },
});

/** Jellyfin's shape: an HTTP port and two UDP discovery ports, NFS volumes, two replicas. */
const jellyfinTarget = (name: string, hostname: string) => ({
  name,
  kind: "Deployment",
  manifest: {
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            {
              name: "jellyfin",
              image: "jellyfin/jellyfin:10.10.7",
              ports: [
                { name: "http", containerPort: 8096 },
                { name: "discovery", containerPort: 7359, protocol: "UDP" },
                { name: "dlna", containerPort: 1900, protocol: "UDP" },
              ],
              volumeMounts: [{ name: "media", mountPath: "/media", readOnly: true }],
            },
          ],
          volumes: [{ name: "media", nfs: { server: "10.0.2.30", path: "/export/media", readOnly: true } }],
        },
      },
    },
  },
  backend: { port: 8096 },
  hostname,
});

/** A StatefulSet as a manifest (no claims: KWOK's cluster has no provisioner), with its own serviceName. */
const cacheTarget = (name: string) => ({
  name,
  kind: "StatefulSet",
  manifest: {
    spec: {
      serviceName: name,
      podManagementPolicy: "Parallel",
      template: {
        spec: {
          containers: [
            { name: "valkey", image: "valkey/valkey:8.1", ports: [{ name: "valkey", containerPort: 6379 }] },
          ],
        },
      },
    },
  },
  backend: { port: 6379 },
});

const migrationWith = (name: string, vmid: number, targets: unknown[], spec: Record<string, unknown> = {}) =>
  upsMigration(name, { vmid, name }, env, {
    spec: { targets, decommission: { stopVM: true, requireApproval: true }, ...spec },
  });

describe("WorkloadMigration manifest targets", () => {
  it("runs the NUT server on its pinned node with its USB device, routes Jellyfin to backend.port over a Service with every port, runs a StatefulSet as written, and scales all to 0 on rollback", async () => {
    const vm = { vmid: 1501, name: "mf-media", node: "trinity", memoryMiB: 2048, diskGiB: 8 };
    await createSourceVm(env.proxmox, vm);
    await env.admin.create(
      migrationWith("mf-media", vm.vmid, [
        nutTarget("mf-nut"),
        jellyfinTarget("mf-jellyfin", "mf-jellyfin.apps.home.shdr.ch"),
        cacheTarget("mf-cache"),
      ]),
    );
    await waitStatus("mf-media", "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");

    // The real scheduler placed the NUT pod on the pinned node; KWOK runs it as written.
    const pods = await env.workload.list<Loose>(POD, {
      namespace: NAMESPACE,
      labelSelector: "app.kubernetes.io/name=mf-nut",
    });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.spec.nodeName).toBe("talos-niobe");
    expect(pod.spec.volumes).toContainEqual({
      name: "usb",
      hostPath: { path: "/dev/bus/usb", type: "Directory" },
    });
    expect(pod.spec.containers[0].securityContext).toEqual({ privileged: true });
    expect(pod.spec.containers[0].volumeMounts).toContainEqual({ name: "usb", mountPath: "/dev/bus/usb" });
    expect(pod.metadata?.labels).toMatchObject({
      "app.kubernetes.io/part-of": "ups-stack",
      "homelab.shdr.ch/migration": "mf-media",
    });
    expect((await inWorkload(DEPLOYMENT, "mf-nut"))?.spec.strategy).toEqual({ type: "Recreate" });
    expect((await inWorkload(SERVICE, "mf-nut"))?.spec.ports).toEqual([
      { name: "nut", port: 3493, targetPort: "nut", protocol: "TCP" },
    ]);

    // Jellyfin: the manifest's two replicas ran (ready by the real controllers), its Service carries
    // every named port with its protocol, and the route goes to backend.port.
    const jellyfin = (await inWorkload(DEPLOYMENT, "mf-jellyfin"))!;
    expect(jellyfin.spec.replicas).toBe(2);
    expect((jellyfin.status as { readyReplicas?: number }).readyReplicas).toBe(2);
    const svc = await inWorkload(SERVICE, "mf-jellyfin");
    expect(svc?.spec.ports).toEqual([
      { name: "http", port: 8096, targetPort: "http", protocol: "TCP" },
      { name: "discovery", port: 7359, targetPort: "discovery", protocol: "UDP" },
      { name: "dlna", port: 1900, targetPort: "dlna", protocol: "UDP" },
    ]);
    expect(svc?.spec.selector).toEqual({
      "homelab.shdr.ch/migration": "mf-media",
      "app.kubernetes.io/name": "mf-jellyfin",
      "app.kubernetes.io/managed-by": "homelab-operator",
    });
    const route = await inWorkload(ROUTE, "mf-jellyfin");
    expect(route?.spec.hostnames).toEqual(["mf-jellyfin.apps.home.shdr.ch"]);
    expect(route?.spec.rules).toEqual([
      expect.objectContaining({
        backendRefs: [expect.objectContaining({ name: "mf-jellyfin", port: 8096 })],
      }),
    ]);
    // The StatefulSet as written (its policy, its serviceName), ready by the real controller.
    const cache = (await inWorkload(STATEFULSET, "mf-cache"))!;
    expect(cache.spec).toMatchObject({
      replicas: 1,
      serviceName: "mf-cache",
      podManagementPolicy: "Parallel",
    });
    expect((cache.status as { readyReplicas?: number }).readyReplicas).toBe(1);
    expect((await inWorkload(SERVICE, "mf-cache"))?.spec.ports).toEqual([
      { name: "valkey", port: 6379, targetPort: "valkey", protocol: "TCP" },
    ]);
    // No hostname, no route: the NUT server is reached inside the cluster only.
    expect(await inWorkload(ROUTE, "mf-nut")).toBeUndefined();

    await rollBack("mf-media");
    const s = await waitStatus("mf-media", "rolled back", (x) => x.phase === "RolledBack");
    // Jellyfin's NFS volume and the StatefulSet make them stateful; the NUT server's host device does not.
    expect(String(s["rollbackMessage"])).toMatch(/Targets mf-jellyfin, mf-cache are stateful/);
    for (const name of ["mf-nut", "mf-jellyfin"])
      expect((await inWorkload(DEPLOYMENT, name))?.spec.replicas).toBe(0);
    expect((await inWorkload(STATEFULSET, "mf-cache"))?.spec.replicas).toBe(0);
    expect(await inWorkload(ROUTE, "mf-jellyfin")).toBeUndefined();
    expect((await env.proxmox.locateVm(vm.vmid))?.status).toBe("running");
  }, 180_000);

  it.each([
    {
      what: "a misspelled field",
      name: "mf-typo",
      vmid: 1502,
      target: nutTarget("mf-typo-nut", { nodeSelecter: { "kubernetes.io/hostname": "talos-niobe" } }),
      message: /nodeSelecter/,
    },
    {
      what: "an invalid value",
      name: "mf-invalid",
      vmid: 1503,
      target: nutTarget("mf-invalid-nut", {
        volumes: [{ name: "usb", hostPath: { path: "/dev/bus/usb", type: "Folder" } }],
      }),
      message: /Unsupported value: "Folder"/,
    },
  ])(
    "refuses a manifest with $what (API server, dry run): nothing created, the VM untouched",
    async (c) => {
      await createSourceVm(env.proxmox, {
        vmid: c.vmid,
        name: c.name,
        node: "neo",
        memoryMiB: 1024,
        diskGiB: 8,
      });
      // Beside a valid target, which must not be created either.
      await env.admin.create(
        migrationWith(c.name, c.vmid, [
          c.target,
          jellyfinTarget(`${c.name}-jf`, `${c.name}.apps.home.shdr.ch`),
        ]),
      );
      const failed = await waitStatus(c.name, "refused", (s) => s.phase === "Failed");
      expect(cond(failed, "Deployed")).toMatchObject({ status: "False", reason: "TargetRefused" });
      expect(cond(failed, "Deployed")?.message).toMatch(c.message);
      for (const name of [`${c.name}-nut`, `${c.name}-jf`]) {
        expect(await inWorkload(DEPLOYMENT, name)).toBeUndefined();
        expect(await inWorkload(SERVICE, name)).toBeUndefined();
      }
      expect((await env.proxmox.locateVm(c.vmid))?.status).toBe("running");
      expect(untouched(c.vmid)).toEqual([]);
    },
    120_000,
  );

  it("refuses a backend.port that no named port of the pod template serves, before any dry run", async () => {
    await createSourceVm(env.proxmox, {
      vmid: 1504,
      name: "mf-port",
      node: "neo",
      memoryMiB: 1024,
      diskGiB: 8,
    });
    const target = { ...jellyfinTarget("mf-port-jf", "mf-port.apps.home.shdr.ch"), backend: { port: 7359 } };
    await env.admin.create(migrationWith("mf-port", 1504, [target]));
    const failed = await waitStatus("mf-port", "refused", (s) => s.phase === "Failed");
    expect(cond(failed, "Deployed")).toMatchObject({ status: "False", reason: "TargetRefused" });
    // 7359 is a named port, but UDP: an HTTPRoute cannot go there.
    expect(cond(failed, "Deployed")?.message).toContain("backend.port 7359 is not a named TCP containerPort");
    expect(await inWorkload(DEPLOYMENT, "mf-port-jf")).toBeUndefined();
    expect(untouched(1504)).toEqual([]);
  }, 120_000);

  it("keeps its own labels and the held size over what the manifest says: 0 replicas and a suspended CronJob until the final sync, and after rollback", async () => {
    await createSourceVm(env.proxmox, {
      vmid: 1505,
      name: "mf-held",
      node: "neo",
      memoryMiB: 1024,
      diskGiB: 8,
    });
    // The manifest claims the operator's label keys (another migration's, another target's name, another
    // manager) and five replicas / an unsuspended CronJob while the data sync holds the targets.
    const hostile = {
      "homelab.shdr.ch/migration": "someone-else",
      "app.kubernetes.io/name": "not-this-target",
      "app.kubernetes.io/managed-by": "helm",
      "team.example.org/owner": "alice",
    };
    const deployment = nutTarget("mf-held-nut");
    (deployment.manifest as Record<string, unknown>)["labels"] = hostile;
    (deployment.manifest.spec as Record<string, unknown>)["replicas"] = 5;
    const cronjob = {
      name: "mf-held-scan",
      kind: "CronJob",
      manifest: {
        labels: hostile,
        spec: {
          schedule: "0 3 * * 1",
          suspend: false,
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  restartPolicy: "OnFailure",
                  containers: [{ name: "nuclei", image: "projectdiscovery/nuclei:v3.4.10" }],
                },
              },
            },
          },
        },
      },
    };
    await env.admin.create(
      migrationWith("mf-held", 1505, [deployment, cronjob], {
        // A dump Job no node runs (pinned to a node that does not exist): the sync never finishes.
        dataSync: {
          method: "Job",
          job: {
            template: {
              spec: {
                restartPolicy: "Never",
                nodeSelector: { "kubernetes.io/hostname": "no-such-node" },
                containers: [{ name: "dump", image: "postgres:17", command: ["true"] }],
              },
            },
          },
        },
      }),
    );
    await waitStatus("mf-held", "held for the sync", (s) => cond(s, "Deployed")?.reason === "HeldForSync");
    const ours = {
      "homelab.shdr.ch/migration": "mf-held",
      "app.kubernetes.io/managed-by": "homelab-operator",
    };
    const d = (await inWorkload(DEPLOYMENT, "mf-held-nut"))!;
    expect(d.spec.replicas).toBe(0);
    expect(d.metadata?.labels).toEqual({ ...hostile, ...ours, "app.kubernetes.io/name": "mf-held-nut" });
    expect(d.spec.template.metadata.labels).toEqual({
      ...hostile,
      ...ours,
      "app.kubernetes.io/name": "mf-held-nut",
    });
    expect(d.spec.selector).toEqual({ matchLabels: { ...ours, "app.kubernetes.io/name": "mf-held-nut" } });
    const cron = (await inWorkload(CRONJOB, "mf-held-scan"))!;
    expect(cron.spec.suspend).toBe(true);
    expect(cron.metadata?.labels).toMatchObject({ ...ours, "app.kubernetes.io/name": "mf-held-scan" });
    expect(cron.spec.jobTemplate.spec.template.metadata.labels).toMatchObject({
      ...ours,
      "app.kubernetes.io/name": "mf-held-scan",
    });
    // Still so a while later (every reconcile applies the same), and no pod was ever made.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await inWorkload(DEPLOYMENT, "mf-held-nut"))?.spec.replicas).toBe(0);
    const pods = await env.workload.list<Loose>(POD, {
      namespace: NAMESPACE,
      labelSelector: "app.kubernetes.io/name=mf-held-nut",
    });
    expect(pods.items).toEqual([]);

    await rollBack("mf-held");
    await waitStatus("mf-held", "rolled back", (s) => s.phase === "RolledBack");
    expect((await inWorkload(DEPLOYMENT, "mf-held-nut"))?.spec.replicas).toBe(0);
    expect((await inWorkload(CRONJOB, "mf-held-scan"))?.spec.suspend).toBe(true);
  }, 120_000);

  it("every manifest target of examples/ builds objects the workload cluster's API server accepts (dry run)", async () => {
    const migrations = loadExamples()
      .filter((d) => d.object.kind === "WorkloadMigration")
      .map((d) => d.object as unknown as WorkloadMigration);
    const built = migrations.flatMap((wm) =>
      wm.spec.targets
        .filter((t) => t.manifest !== undefined)
        .flatMap((t) =>
          workloadObjects({ ...wm, metadata: { ...wm.metadata, namespace: NAMESPACE } }, t, 1, []),
        ),
    );
    // The NUT server and Jellyfin, each a Deployment and its Service.
    expect(built.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual([
      "Deployment/jellyfin",
      "Deployment/nut-server",
      "Service/jellyfin",
      "Service/nut-server",
    ]);
    // The namespace exists once a migration deployed there; made here so this test holds when run alone.
    await env.workload.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
    for (const o of built) await env.workload.apply(o, { dryRun: true });
  }, 60_000);
});
