// KnativeService targets on the real control plane, the workload cluster (with Knative Serving's real
// Service and DomainMapping CRDs, knative-v1.23.0) and the Proxmox simulator: nothing public before
// cutover (cluster-local label, no DomainMapping, sampled all along), the DomainMapping and public
// visibility after; Knative's Ready=False holds the migration with the VM running; rollback from after
// cutover deletes what the migration made; hand edits and DomainMappings of others before cutover.
// No Knative controller runs here: this file plays Knative's status writer for the Services (Ready at
// the observed generation, or Ready=False with a reason the test sets), as startDeploymentStandIn does
// for Deployments. What the operator decides from that status is the code under test.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { MIGRATION_LABEL } from "../../src/controllers/workload-migration/names.ts";
import type { KubeClient, KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import {
  createSourceVm,
  type MigrationEnv,
  NAMESPACE,
  ROUTE,
  startMigrationEnv,
  upsMigration,
  WM,
} from "./operator.ts";
import { type Cond, cond, migrationStatus, type Status } from "./status.ts";

const KSVC = { apiVersion: "serving.knative.dev/v1", kind: "Service" } as const;
const DM = { apiVersion: "serving.knative.dev/v1beta1", kind: "DomainMapping" } as const;
const VISIBILITY = "networking.knative.dev/visibility";
const CRD_DIR = new URL("../../src/local/provider-stand-in/crds/", import.meta.url);

/** Knative Serving's own CRDs (the verbatim copies the provider stand-in installs), established. */
async function installKnativeCrds(client: KubeClient): Promise<void> {
  for (const file of ["service.yaml", "domain-mapping.yaml"]) {
    const crd = parse(readFileSync(new URL(file, CRD_DIR), "utf8")) as KubeObject;
    await client.apply(crd);
    await waitFor(`${crd.metadata?.name} established`, async () => {
      const live = await client.get<KubeObject>(
        { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
        { name: crd.metadata!.name! },
      );
      const conds = (live.status as { conditions?: Cond[] } | undefined)?.conditions ?? [];
      return conds.some((c) => c.type === "Established" && c.status === "True");
    });
  }
}

/**
 * Knative's status writer for the migrations' Services: observedGeneration, the URL Knative gives (the
 * cluster-local one while the label is set) and Ready True, or Ready False with the reason in `failing`.
 */
function startKnativeStatusWriter(
  client: KubeClient,
  failing: Map<string, { reason: string; message: string }>,
): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const list = await client.list<KubeObject>(KSVC, {
          namespace: NAMESPACE,
          labelSelector: MIGRATION_LABEL,
        });
        for (const k of list.items) {
          const name = k.metadata!.name!;
          const generation = k.metadata?.generation ?? 1;
          const fail = failing.get(name);
          const local = k.metadata?.labels?.[VISIBILITY] === "cluster-local";
          const url = local
            ? `http://${name}.${NAMESPACE}.svc.cluster.local`
            : `http://${name}.${NAMESPACE}.apps.home.shdr.ch`;
          const s = (k.status ?? {}) as { observedGeneration?: number; url?: string; conditions?: Cond[] };
          const ready = s.conditions?.find((c) => c.type === "Ready");
          const want = fail ? "False" : "True";
          if (s.observedGeneration === generation && s.url === url && ready?.status === want) continue;
          const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
          const cond = (type: string) =>
            fail
              ? { type, status: "False", reason: fail.reason, message: fail.message, lastTransitionTime: now }
              : { type, status: "True", lastTransitionTime: now };
          await client.patchStatus(
            KSVC,
            { namespace: NAMESPACE, name },
            {
              observedGeneration: generation,
              url,
              address: { url: `http://${name}.${NAMESPACE}.svc.cluster.local` },
              conditions: [cond("ConfigurationsReady"), cond("Ready"), cond("RoutesReady")],
            },
          );
        }
      } catch {
        // A Service changed or went between list and patch: the next round sees the new state.
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

let env: MigrationEnv;
let stopKnative: (() => void) | undefined;
const failing = new Map<string, { reason: string; message: string }>();
beforeAll(async () => {
  env = await startMigrationEnv(adminKubeConfig());
}, 180_000);
afterAll(async () => {
  stopKnative?.();
  await env?.stop();
});

const { statusOf, waitStatus } = migrationStatus(() => env, { timeoutMs: 120_000, intervalMs: 200 });
const ksvcOf = (name: string) =>
  env.workload.getOrUndefined<KubeObject>(KSVC, { namespace: NAMESPACE, name });
const dmOf = (host: string) =>
  env.workload.getOrUndefined<KubeObject>(DM, { namespace: NAMESPACE, name: host });
const hostOf = (name: string) => `${name}.apps.home.shdr.ch`;

/**
 * The messaging stack's Element as a template KnativeService with a hostname, and a manifest
 * KnativeService of two containers (one with the port) without one; cut over automatically once the
 * check passes; the VM is stopped, not backed up.
 */
function knativeMigration(name: string, vmid: number, spec: Record<string, unknown> = {}): KubeObject {
  return upsMigration(name, { vmid, name }, env, {
    spec: {
      targets: [
        {
          name: `${name}-element`,
          kind: "KnativeService",
          template: { image: "vectorim/element-web:v1.11.100", port: 80 },
          hostname: hostOf(name),
        },
        {
          name: `${name}-crawler`,
          kind: "KnativeService",
          manifest: {
            labels: { "app.kubernetes.io/part-of": "crawler" },
            spec: {
              template: {
                metadata: { annotations: { "autoscaling.knative.dev/max-scale": "1" } },
                spec: {
                  containers: [
                    {
                      name: "api",
                      image: "ghcr.io/mendableai/firecrawl:latest",
                      ports: [{ containerPort: 3002 }],
                    },
                    { name: "redis", image: "redis:7-alpine" },
                  ],
                },
              },
            },
          },
        },
      ],
      decommission: { stopVM: true, requireApproval: true },
      ...spec,
    },
  });
}

async function newVm(vmid: number, name: string) {
  await createSourceVm(env.proxmox, { vmid, name, node: "neo", memoryMiB: 2048, diskGiB: 8, ha: true });
}

interface Sample {
  exists: boolean;
  public: boolean;
  mapping: boolean;
  cutOver: boolean;
}

/** Samples the Element Service and its DomainMapping, then the migration's status, until `until` holds. */
async function sampleUntil(
  name: string,
  until: (s: Status) => boolean,
): Promise<{ samples: Sample[]; last: Status }> {
  const samples: Sample[] = [];
  const deadline = Date.now() + 120_000;
  for (;;) {
    const k = await ksvcOf(`${name}-element`);
    const dm = await dmOf(hostOf(name));
    // Read after the objects: a cutoverTime recorded after they were seen cannot excuse them.
    const s = await statusOf(name);
    samples.push({
      exists: Boolean(k),
      public: Boolean(k) && k?.metadata?.labels?.[VISIBILITY] !== "cluster-local",
      mapping: Boolean(dm),
      cutOver: Boolean(s.cutoverTime),
    });
    if (until(s)) return { samples, last: s };
    if (Date.now() > deadline)
      throw new Error(`${name}: not there in time; last status ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("WorkloadMigration with KnativeService targets, Knative not installed", () => {
  it("waits with Deployed=False KnativeNotServed, the VM running", async () => {
    const name = "kn-absent";
    await newVm(1300, name);
    await env.admin.create(knativeMigration(name, 1300));
    const s = await waitStatus(
      name,
      "KnativeNotServed",
      (x) => cond(x, "Deployed")?.reason === "KnativeNotServed",
    );
    expect(cond(s, "Deployed")?.status).toBe("False");
    expect(cond(s, "Deployed")?.message).toContain("Knative Serving is not installed");
    expect(s.phase).toBe("Deploying");
    expect((await env.proxmox.locateVm(1300))?.status).toBe("running");
    // Deleted before Knative arrives in the next block, so it never goes on.
    await env.admin.delete(WM, { namespace: NAMESPACE, name });
  }, 180_000);
});

describe("WorkloadMigration with KnativeService targets", () => {
  beforeAll(async () => {
    await installKnativeCrds(env.workload);
    stopKnative = startKnativeStatusWriter(env.workload, failing);
  }, 60_000);

  it("deploys cluster-local, verifies, publishes only at cutover (DomainMapping, label dropped), then stops the VM", async () => {
    const name = "kn-element";
    await newVm(1301, name);
    await env.admin.create(knativeMigration(name, 1301));
    const { samples, last } = await sampleUntil(name, (s) => cond(s, "VMStopped")?.status === "True");
    const before = samples.filter((x) => !x.cutOver);
    expect(before.filter((x) => x.exists).length).toBeGreaterThan(2);
    expect(before.filter((x) => x.public || x.mapping)).toEqual([]);
    expect(cond(last, "Deployed")?.reason).toBe("TargetsReady");
    expect(cond(last, "CutOver")?.message).toContain(hostOf(name));

    const element = (await ksvcOf(`${name}-element`))!;
    expect(element.metadata?.labels?.[VISIBILITY]).toBeUndefined();
    const dm = (await dmOf(hostOf(name)))!;
    expect(dm.spec).toEqual({
      ref: {
        apiVersion: "serving.knative.dev/v1",
        kind: "Service",
        name: `${name}-element`,
        namespace: NAMESPACE,
      },
    });
    // The manifest target: the user's spec kept (two containers, one port, its annotation), our labels added.
    const crawler = (await ksvcOf(`${name}-crawler`))!;
    expect(crawler.metadata?.labels?.[VISIBILITY]).toBeUndefined();
    expect(crawler.metadata?.labels?.["app.kubernetes.io/part-of"]).toBe("crawler");
    const tpl = (
      crawler.spec as { template: { metadata: KubeObject["metadata"]; spec: { containers: unknown[] } } }
    ).template;
    expect(tpl.spec.containers).toHaveLength(2);
    expect(tpl.metadata?.annotations?.["autoscaling.knative.dev/max-scale"]).toBe("1");
    expect(tpl.metadata?.labels?.[MIGRATION_LABEL]).toBe(name);
    // A Knative target is never given an HTTPRoute (Knative routes it).
    expect(
      await env.workload.getOrUndefined(ROUTE, { namespace: NAMESPACE, name: `${name}-element` }),
    ).toBeUndefined();
    // From the simulator's record: the shutdown came after the cutover.
    const vm = await env.proxmox.locateVm(1301);
    expect(vm?.status).toBe("stopped");
    const shutdowns = env.sim
      .records()
      .filter((r) => r.vmid === 1301 && r.kind === "power" && r.action === "shutdown");
    expect(shutdowns).toHaveLength(1);
    expect(shutdowns[0]!.at).toBeGreaterThanOrEqual(Date.parse(last.cutoverTime!));
  }, 180_000);

  it("holds before cutover while Knative says Ready=False (its reason shown), the VM running; goes on once Ready", async () => {
    const name = "kn-notready";
    await newVm(1302, name);
    failing.set(`${name}-element`, {
      reason: "RevisionMissing",
      message: `Configuration "${name}-element" does not have any ready Revision.`,
    });
    await env.admin.create(knativeMigration(name, 1302));
    const held = await waitStatus(name, "Deployed=False with Knative's reason", (s) =>
      Boolean(cond(s, "Deployed")?.message?.includes("RevisionMissing")),
    );
    expect(cond(held, "Deployed")).toMatchObject({ status: "False", reason: "TargetsNotReady" });
    expect(cond(held, "Deployed")?.message).toContain("does not have any ready Revision");
    await new Promise((r) => setTimeout(r, 2_000));
    const still = await statusOf(name);
    expect(still.phase).toBe("Deploying");
    expect(still.cutoverTime).toBeUndefined();
    expect((await env.proxmox.locateVm(1302))?.status).toBe("running");
    expect((await ksvcOf(`${name}-element`))?.metadata?.labels?.[VISIBILITY]).toBe("cluster-local");
    expect(await dmOf(hostOf(name))).toBeUndefined();

    failing.delete(`${name}-element`);
    const cut = await waitStatus(name, "cut over once Ready", (s) => Boolean(s.cutoverTime));
    expect(cond(cut, "Verified")?.status).toBe("True");
  }, 180_000);

  it("rolls back from after cutover: DomainMapping and Knative Services gone, VM running again", async () => {
    const name = "kn-rollback";
    await newVm(1303, name);
    await env.admin.create(knativeMigration(name, 1303));
    await waitStatus(name, "VM stopped", (s) => cond(s, "VMStopped")?.status === "True");
    expect(await dmOf(hostOf(name))).toBeDefined();

    await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
    const done = await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack");
    expect(await dmOf(hostOf(name))).toBeUndefined();
    // Knative has no zero-pod state a Service can be held in: ours are deleted (revisions and pods go
    // with them), so nothing of the target answers, publicly or inside the cluster.
    expect(await ksvcOf(`${name}-element`)).toBeUndefined();
    expect(await ksvcOf(`${name}-crawler`)).toBeUndefined();
    const vm = await env.proxmox.locateVm(1303);
    expect(vm?.status).toBe("running");
    expect(vm?.hastate).toBe("started");
    expect(done.rollbackMessage).toContain("VM 1303 running");
    expect(done.rollbackMessage).toContain(`Knative Service(s) ${name}-element, ${name}-crawler deleted`);
  }, 180_000);

  it("before cutover: a removed cluster-local label comes back; DomainMappings not ours hold it and are never deleted", async () => {
    const name = "kn-attack";
    await newVm(1304, name);
    // Held at verification: the check fails (for now), with a long deadline.
    const wm = knativeMigration(name, 1304);
    const spec = wm.spec as { verify: { timeout: string; checks: { http: { url: string } }[] } };
    spec.verify.timeout = "10m";
    spec.verify.checks[0]!.http.url = `${env.checksUrl}/broken`;
    await env.admin.create(wm);
    await waitStatus(name, "verifying", (s) => cond(s, "Verified")?.reason === "ChecksFailing");
    const key = { namespace: NAMESPACE, name: `${name}-element` };

    // A hand edit (a tenant with patch rights, or kubectl edit) makes the Service public.
    await env.workload.patch(KSVC, key, { metadata: { labels: { [VISIBILITY]: null } } }, "merge");
    expect((await ksvcOf(`${name}-element`))?.metadata?.labels?.[VISIBILITY]).toBeUndefined();
    await waitFor(
      "the cluster-local label put back",
      async () => (await ksvcOf(`${name}-element`))?.metadata?.labels?.[VISIBILITY] === "cluster-local",
      30_000,
      100,
    );

    // Someone maps a domain of theirs to the private Service (Knative would serve it there), and takes
    // the migration's hostname for something else.
    const theirs = (host: string, target: string): KubeObject => ({
      ...DM,
      metadata: { name: host, namespace: NAMESPACE, labels: { [MIGRATION_LABEL]: name } },
      spec: {
        ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: target, namespace: NAMESPACE },
      },
    });
    await env.workload.create(theirs("evil.example.com", `${name}-element`));
    await env.workload.create(theirs(hostOf(name), "something-else"));
    const blocked = await waitStatus(name, "held by the DomainMappings", (s) =>
      Boolean(cond(s, "Deployed")?.message?.includes("evil.example.com")),
    );
    expect(cond(blocked, "Deployed")?.status).toBe("False");
    expect(cond(blocked, "Deployed")?.message).toContain(hostOf(name));
    // Now the checks pass: still held, nothing cut over, the VM serving.
    await env.admin.patch(
      WM,
      { namespace: NAMESPACE, name },
      { spec: { verify: { checks: [{ name: "peanut-ui", http: { url: `${env.checksUrl}/ok` } }] } } },
      "merge",
    );
    await new Promise((r) => setTimeout(r, 4_000));
    const still = await statusOf(name);
    expect(still.cutoverTime).toBeUndefined();
    expect(cond(still, "Verified")?.status).not.toBe("True");
    expect((await env.proxmox.locateVm(1304))?.status).toBe("running");
    expect((await dmOf(hostOf(name)))?.spec).toMatchObject({ ref: { name: "something-else" } });

    // Rolled back: ours deleted, theirs left as they were.
    await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
    await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack");
    expect(await ksvcOf(`${name}-element`)).toBeUndefined();
    expect(await dmOf("evil.example.com")).toBeDefined();
    expect((await dmOf(hostOf(name)))?.spec).toMatchObject({ ref: { name: "something-else" } });
  }, 180_000);

  it("a Knative Service of the target's name made by someone else is neither adopted nor deleted", async () => {
    const name = "kn-taken";
    await newVm(1306, name);
    await env.workload.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
    const theirs = await env.workload.create<KubeObject>({
      ...KSVC,
      metadata: { name: `${name}-element`, namespace: NAMESPACE, labels: { team: "chat" } },
      spec: { template: { spec: { containers: [{ image: "nginx:1.27" }] } } },
    });
    await env.admin.create(knativeMigration(name, 1306));
    const held = await waitStatus(name, "held by the name taken", (s) =>
      Boolean(cond(s, "Deployed")?.message?.includes("was not made by this migration")),
    );
    expect(cond(held, "Deployed")?.status).toBe("False");
    await env.admin.patch(WM, { namespace: NAMESPACE, name }, { spec: { rollback: true } }, "merge");
    await waitStatus(name, "rolled back", (s) => s.phase === "RolledBack");
    const after = (await ksvcOf(`${name}-element`))!;
    expect(after.metadata?.uid).toBe(theirs.metadata?.uid);
    expect(after.metadata?.generation).toBe(theirs.metadata?.generation);
    expect(after.metadata?.labels).toEqual({ team: "chat" });
    expect((await env.proxmox.locateVm(1306))?.status).toBe("running");
  }, 180_000);

  it("held for a data sync, the Knative Service does not exist until the final sync succeeded", async () => {
    const name = "kn-sync";
    await newVm(1305, name);
    await env.admin.create(
      knativeMigration(name, 1305, {
        dataSync: {
          method: "Job",
          job: {
            template: {
              spec: {
                restartPolicy: "Never",
                containers: [{ name: "restore", image: "postgres:17", command: ["true"] }],
              },
            },
          },
        },
      }),
    );
    const samples: { exists: boolean; finalDone: boolean }[] = [];
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (Date.now() > deadline)
        throw new Error(`${name}: no cutover in time; ${JSON.stringify(await statusOf(name))}`);
      const k = await ksvcOf(`${name}-element`);
      const s = await statusOf(name);
      samples.push({ exists: Boolean(k), finalDone: Boolean(s.finalSyncTime) });
      if (s.cutoverTime) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(samples.filter((x) => x.exists && !x.finalDone)).toEqual([]);
    expect(samples.some((x) => !x.exists)).toBe(true);
    expect(samples.some((x) => x.exists)).toBe(true);
  }, 180_000);
});
