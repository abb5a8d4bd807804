import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GVK } from "../../src/controllers/app-vending/desired.ts";
import { externalNames, managedName } from "../../src/controllers/app-vending/names.ts";
import { EXTERNAL_NAME, MR_FINALIZER } from "../../src/local/provider-stand-in/stand-in.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import {
  applySeedExamples,
  type LocalProcess,
  managementCluster,
  removeLocal,
  startLocal,
} from "./local-process.ts";

// biome-ignore lint/suspicious/noExplicitAny: the assertions read deep fields of API objects as JSON
type Obj = KubeObject & Record<string, any>;
interface Cond {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

const NS = "peers-alice";
const HOST = "portfolio.apps.home.shdr.ch";

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;

const cond = (o: Obj, type: string) =>
  (o.status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);
const decoded = (s: Obj) =>
  Object.fromEntries(
    Object.entries((s.data ?? {}) as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, "base64").toString(),
    ]),
  );

beforeAll(async () => {
  dataHome = await mkdtemp(join(tmpdir(), "homelab-local-av-e2e-"));
  stateDir = join(dataHome, "homelab-operator", "local");
}, 60_000);

afterAll(async () => {
  await removeLocal(local, stateDir, dataHome);
});

describe("local mode: the portfolio AppVending from kubectl apply -f examples/", () => {
  it("turns Ready through the provider stand-in npm start runs, with its parts, Secrets and URL", async () => {
    local = await startLocal(dataHome);
    const { kube, run } = await managementCluster(local);
    const firstErrors = await applySeedExamples(kube, run, NS);
    // The first apply may refuse only the AppVending, and only because its namespace did not exist yet.
    for (const line of firstErrors)
      expect(line).toMatch(/app-vending-portfolio\.yaml.*namespaces "peers-alice" not found/);

    // What a peer's CI runs after applying it.
    await run("wait", "--for=condition=Ready", "appvending/portfolio", "-n", NS, "--timeout=150s").catch(
      async (err: unknown) => {
        const av = await kube.getOrUndefined<Obj>(GVK.appVending, { namespace: NS, name: "portfolio" });
        throw new Error(
          `${(err as Error).message}\n--- status ---\n${JSON.stringify(av?.status, null, 1)}\n--- npm start output ---\n${local?.output().slice(-4000)}`,
        );
      },
    );
    const av = await kube.get<Obj>(GVK.appVending, { namespace: NS, name: "portfolio" });
    expect(av.status.observedGeneration).toBe(av.metadata?.generation);
    for (const part of ["Bucket", "Database", "OIDCClient", "App", "Route"])
      expect(cond(av, part)?.status, part).toBe("True");
    expect(av.status.url).toBe(`https://${HOST}`);
    expect(av.status.tenant).toBe("alice");

    // Each managed resource was taken up by the stand-in as a provider would: its finalizer, the
    // external name the operator chose, and Synced/Ready from the provider's side.
    const mr = managedName("portfolio");
    const ext = externalNames(NS, "portfolio");
    const expectedExternal: [{ apiVersion: string; kind: string }, string][] = [
      [GVK.bucket, ext.bucket],
      [GVK.bucketAcl, mr],
      [GVK.role, ext.postgres],
      [GVK.database, ext.postgres],
      [GVK.oidcClient, mr],
    ];
    for (const [gvk, externalName] of expectedExternal) {
      const o = await kube.get<Obj>(gvk, { namespace: NS, name: mr });
      expect(o.metadata?.finalizers, gvk.kind).toContain(MR_FINALIZER);
      expect(o.metadata?.annotations?.[EXTERNAL_NAME], gvk.kind).toBe(externalName);
      expect(cond(o, "Synced")?.status, `${gvk.kind} Synced`).toBe("True");
      expect(cond(o, "Ready")?.status, `${gvk.kind} Ready`).toBe("True");
    }

    // The connection Secrets under the example's names, with the providers' key names.
    const secret = (name: string) =>
      kube.get<Obj>({ apiVersion: "v1", kind: "Secret" }, { namespace: NS, name });
    const db = decoded(await secret("portfolio-db"));
    expect(Object.keys(db).sort()).toEqual(["endpoint", "password", "port", "username"]);
    expect(db.username).toBe(ext.postgres);
    expect(db.password?.length).toBeGreaterThan(0);
    // A public client has no secret: provider-keycloak publishes its clientID only.
    expect(decoded(await secret("portfolio-oidc"))).toEqual({ clientID: ext.clientId });
    expect(Object.keys(decoded(await secret("portfolio-s3")))).toEqual([]);

    // The app and its route: Knative's readiness (played by the stand-in) on what the operator wrote.
    const ksvc = await kube.get<Obj>(GVK.knativeService, { namespace: NS, name: "portfolio" });
    expect(cond(ksvc, "Ready")?.status).toBe("True");
    expect(ksvc.spec.template.metadata.annotations["autoscaling.knative.dev/min-scale"]).toBe("0");
    const dm = await kube.get<Obj>(GVK.domainMapping, { namespace: NS, name: HOST });
    expect(dm.spec.ref).toMatchObject({ kind: "Service", name: "portfolio", namespace: NS });
    expect(cond(dm, "Ready")?.status).toBe("True");

    // The printer columns a person sees.
    const { stdout } = await run("get", "appvending", "portfolio", "-n", NS);
    expect(stdout.split("\n")[1]).toMatch(
      new RegExp(`^portfolio\\s+True\\s+https://${HOST.replace(/\./g, "\\.")}`),
    );
    expect(local.output()).toMatch(/AppVending peers-alice\/portfolio Ready=True/);
  }, 240_000);

  it("after a kill -9 and npm start again, takes a change without recreating a part or a credential", async () => {
    if (!local) throw new Error("the first test did not start the local homelab");
    const kube = new KubeClient(local.kubeConfig());
    const mr = managedName("portfolio");
    const uids = async (kube: KubeClient) =>
      Promise.all(
        [GVK.bucket, GVK.bucketAcl, GVK.role, GVK.database, GVK.oidcClient].map(
          async (gvk) => (await kube.get<Obj>(gvk, { namespace: NS, name: mr })).metadata?.uid,
        ),
      );
    const dbSecret = (kube: KubeClient) =>
      kube.get<Obj>({ apiVersion: "v1", kind: "Secret" }, { namespace: NS, name: "portfolio-db" });
    const before = await kube.get<Obj>(GVK.appVending, { namespace: NS, name: "portfolio" });
    const uidsBefore = await uids(kube);
    const secretBefore = await dbSecret(kube);

    local.child.kill("SIGKILL");
    await local.exited;
    local = await startLocal(dataHome);
    const after = new KubeClient(local.kubeConfig());
    // A spec change only the restarted operator can have taken up (observedGeneration follows it).
    const changed = await after.patch<Obj>(
      GVK.appVending,
      { namespace: NS, name: "portfolio" },
      { spec: { app: { env: [{ name: "LOG_LEVEL", value: "debug" }] } } },
      "merge",
    );
    const settled = await waitFor(
      "portfolio Ready at its new generation after the restart",
      async () => {
        const o = await after.get<Obj>(GVK.appVending, { namespace: NS, name: "portfolio" });
        return o.status?.observedGeneration === changed.metadata?.generation &&
          cond(o, "Ready")?.status === "True"
          ? o
          : undefined;
      },
      150_000,
      1_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${local?.output().slice(-4000)}`);
    });
    // Ready never went False: its transition time is the one from before the kill.
    expect(cond(settled, "Ready")?.lastTransitionTime).toBe(cond(before, "Ready")?.lastTransitionTime);
    const ksvc = await after.get<Obj>(GVK.knativeService, { namespace: NS, name: "portfolio" });
    expect(ksvc.spec.template.spec.containers[0].env).toContainEqual({ name: "LOG_LEVEL", value: "debug" });
    expect(await uids(after)).toEqual(uidsBefore);
    // The database password the app holds is the one from before: a restarted provider does not rotate it.
    const secretAfter = await dbSecret(after);
    expect(secretAfter.metadata?.uid).toBe(secretBefore.metadata?.uid);
    expect(secretAfter.data.password).toBe(secretBefore.data.password);
  }, 240_000);
});
