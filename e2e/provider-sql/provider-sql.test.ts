// The real Crossplane provider-sql (built from its Go module, e2e/provider-sql/build-provider-sql.sh)
// reconciling what the AppVending controller writes, against a real PostgreSQL server: the managed
// resources are accepted by the real CRDs and the real provider, the connection Secret it publishes
// logs in as the owner of the vended database, Retain keeps the data, Delete drops it, the provider's
// own refusals and errors reach the AppVending's Database condition, and a re-vended (retained)
// database comes back Ready with its old password, kept in the operator's password Secret. Only the database part runs here: provider-upjet-aws and
// provider-keycloak cannot run on this machine (e2e/provider-sql/README.md).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { appVendingController } from "../../src/controllers/app-vending/controller.ts";
import { DEFAULT_PLATFORM, GVK } from "../../src/controllers/app-vending/desired.ts";
import { externalNames, managedName, passwordSecretName } from "../../src/controllers/app-vending/names.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { vendingGuardrailsCleanup } from "../app-vending/guardrails.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";
import { type Postgres, startPostgres } from "./postgres.ts";

// biome-ignore lint/suspicious/noExplicitAny: the assertions read deep fields of API objects as JSON
type Obj = KubeObject & Record<string, any>;
interface Cond {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const RUN = Math.random().toString(36).slice(2, 6);
const OPERATOR_NS = "homelab-system";
// An admin namespace (no tenant): this file is about the provider, the tenant rules are e2e/app-vending's.
const NS = `vend-sql-${RUN}`;
const PROVIDER_CONFIG = `real-postgres-${RUN}`;
const ADMIN_SECRET = `postgres-admin-${RUN}`;
const STAND_IN_CRDS = new URL("../../src/local/provider-stand-in/crds/", import.meta.url);
const CRD = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };
const SECRET = { apiVersion: "v1", kind: "Secret" };
const PROVIDER_CONFIG_GVK = {
  apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1",
  kind: "ClusterProviderConfig",
};

let admin: KubeConfig;
let client: KubeClient;
let manager: Manager | undefined;
let pg: Postgres | undefined;
let provider: ChildProcess | undefined;
let providerLog = "";
let removeGuardrails: (() => Promise<void>) | undefined;
const installedCrds: string[] = [];
/** The first password provider-sql gave shop's role. */
let firstPassword = "";

const cond = (o: Obj, type: string) =>
  (o.status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);
const decoded = (s: Obj) =>
  Object.fromEntries(
    Object.entries((s.data ?? {}) as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, "base64").toString(),
    ]),
  );

function av(name: string, spec: Record<string, unknown>): Obj {
  return { ...GVK.appVending, metadata: { name, namespace: NS }, spec } as Obj;
}

async function waitPart(name: string, type: string, pred: (c: Cond) => boolean, timeoutMs = 120_000) {
  return waitFor(
    `${name} ${type}`,
    async () => {
      const o = await client.get<Obj>(GVK.appVending, { namespace: NS, name });
      const c = cond(o, type);
      return c && pred(c) && o.status?.observedGeneration === o.metadata?.generation ? o : undefined;
    },
    timeoutMs,
    500,
  ).catch(async (err: unknown) => {
    const o = await client.getOrUndefined<Obj>(GVK.appVending, { namespace: NS, name });
    const role = await client.getOrUndefined<Obj>(GVK.role, { namespace: NS, name: managedName(name) });
    throw new Error(
      `${(err as Error).message}\n--- AppVending status ---\n${JSON.stringify(o?.status?.conditions)}\n--- Role status ---\n${JSON.stringify(role?.status)}\n--- provider-sql ---\n${providerLog.slice(-3000)}`,
    );
  });
}

async function gone(gvk: { apiVersion: string; kind: string }, name: string, namespace?: string) {
  await waitFor(
    `${gvk.kind} ${name} gone`,
    async () => ((await client.getOrUndefined(gvk, { namespace, name })) ? undefined : true),
    120_000,
    500,
  );
}

/** Whether PostgreSQL has a role and a database of this name (asked as the superuser). */
async function inPostgres(name: string): Promise<{ role: boolean; database: boolean }> {
  const role = await (pg as Postgres).query(`select count(*) from pg_roles where rolname = '${name}'`);
  const db = await (pg as Postgres).query(`select count(*) from pg_database where datname = '${name}'`);
  return { role: role[0] === "1", database: db[0] === "1" };
}

beforeAll(async () => {
  const build = await promisify(execFile)("bash", [
    new URL("./build-provider-sql.sh", import.meta.url).pathname,
  ]);
  const binary = build.stdout.trim().split("\n").at(-1) as string;
  pg = await startPostgres();
  admin = adminKubeConfig();
  client = new KubeClient(admin);
  await installCRDs(admin);
  for (const ns of [OPERATOR_NS, NS])
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } } as Obj);

  // The provider's own CRDs, from the module it was built from; the four vending uses are the very
  // files the stand-in installs (../shared/reference/crds/provider-sql), which the test checks.
  const crdDir = join(dirname(binary), "crds");
  const files = readdirSync(crdDir).filter((f) => f.endsWith(".yaml"));
  for (const f of readdirSync(STAND_IN_CRDS).filter((f) => f.startsWith("postgresql.sql."))) {
    expect(readFileSync(join(crdDir, f), "utf8"), f).toBe(readFileSync(new URL(f, STAND_IN_CRDS), "utf8"));
  }
  const names: string[] = [];
  for (const f of files) {
    const crd = parse(readFileSync(join(crdDir, f), "utf8")) as Obj;
    const name = crd.metadata?.name as string;
    names.push(name);
    if (!(await client.getOrUndefined(CRD, { name }))) installedCrds.push(name);
    await client.apply(crd);
  }
  await waitFor(
    "provider-sql's CRDs Established",
    async () => {
      for (const name of names) {
        const crd = await client.get<Obj>(CRD, { name });
        const ok = (crd.status?.conditions as Cond[] | undefined)?.some(
          (c) => c.type === "Established" && c.status === "True",
        );
        if (!ok) return undefined;
      }
      return true;
    },
    60_000,
    500,
  );

  // The platform's SQL ProviderConfig: the server's superuser, as an admin would set it up. Loopback
  // without TLS, so sslMode disable (the CRD's default is verify-full).
  await client.apply({
    ...SECRET,
    metadata: { name: ADMIN_SECRET, namespace: OPERATOR_NS },
    stringData: { username: pg.superuser, password: pg.password, endpoint: pg.host, port: String(pg.port) },
  } as Obj);
  await client.apply({
    ...PROVIDER_CONFIG_GVK,
    metadata: { name: PROVIDER_CONFIG },
    spec: {
      credentials: {
        source: "PostgreSQLConnectionSecret",
        connectionSecretRef: { namespace: OPERATOR_NS, name: ADMIN_SECRET },
      },
      sslMode: "disable",
    },
  } as Obj);

  // The provider as Crossplane runs it (a Deployment with this binary), here with the admin kubeconfig.
  const metricsPort = await freePort();
  provider = spawn(
    binary,
    ["--poll=5s", "--sync=1m", `--metrics-bind-address=127.0.0.1:${metricsPort}`, "--debug"],
    { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const keep = (c: Buffer) => {
    providerLog = (providerLog + c.toString()).slice(-200_000);
  };
  provider.stdout?.on("data", keep);
  provider.stderr?.on("data", keep);
  if (provider.pid) await pg.track(provider.pid);

  removeGuardrails = await vendingGuardrailsCleanup(client);
  manager = new Manager({
    kubeConfig: admin,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(
    appVendingController({
      operatorNamespace: OPERATOR_NS,
      operatorUsernames: [],
      adminNamespaces: [NS],
      platform: {
        ...DEFAULT_PLATFORM,
        providerConfigs: { ...DEFAULT_PLATFORM.providerConfigs, sql: PROVIDER_CONFIG },
      },
    }),
  );
  await manager.start();
}, 900_000);

afterAll(async () => {
  // AppVendings first (the provider must still run to take its finalizers off the MRs), then the
  // ProviderConfig, then the processes; cluster-wide leftovers go so the next suite starts clean.
  const left = await client.list<Obj>(GVK.appVending, { namespace: NS }).catch(() => ({ items: [] }));
  for (const o of left.items)
    await client.delete(
      GVK.appVending,
      { namespace: NS, name: o.metadata?.name as string },
      { ignoreNotFound: true },
    );
  for (const o of left.items) await gone(GVK.appVending, o.metadata?.name as string, NS).catch(() => {});
  await client
    .delete(PROVIDER_CONFIG_GVK, { name: PROVIDER_CONFIG }, { ignoreNotFound: true })
    .catch(() => {});
  await gone(PROVIDER_CONFIG_GVK, PROVIDER_CONFIG).catch(() => {});
  await manager?.stop();
  provider?.kill("SIGTERM");
  await removeGuardrails?.();
  await client.delete(SECRET, { namespace: OPERATOR_NS, name: ADMIN_SECRET }, { ignoreNotFound: true });
  await client.delete({ apiVersion: "v1", kind: "Namespace" }, { name: NS }, { ignoreNotFound: true });
  // Waited for: a suite after this one that installs one of them again must not meet it terminating.
  for (const name of installedCrds)
    await client.delete(CRD, { name }, { ignoreNotFound: true }).catch(() => {});
  for (const name of installedCrds) await gone(CRD, name).catch(() => {});
  await pg?.stop();
}, 300_000);

describe("AppVending's database through the real provider-sql and PostgreSQL", () => {
  it("is Ready, and its connection Secret logs in as the owner of its own database", async () => {
    await client.create(av("shop", { database: {}, deletionPolicy: "Retain" }));
    const ready = await waitPart("shop", "Ready", (c) => c.status === "True");
    expect(cond(ready, "Database")?.status).toBe("True");
    const mr = managedName("shop");
    const ext = externalNames(NS, "shop").postgres;
    for (const gvk of [GVK.role, GVK.database]) {
      const o = await client.get<Obj>(gvk, { namespace: NS, name: mr });
      expect(cond(o, "Synced"), gvk.kind).toMatchObject({ status: "True", reason: "ReconcileSuccess" });
      expect(cond(o, "Ready"), gvk.kind).toMatchObject({ status: "True", reason: "Available" });
      expect(o.metadata?.annotations?.["crossplane.io/external-name"]).toBe(ext);
      expect(o.metadata?.finalizers).toContain("finalizer.managedresource.crossplane.io");
    }
    // The provider's key names, the same the stand-in writes (connection-details.ts).
    const secret = await client.get<Obj>(SECRET, { namespace: NS, name: "shop-db" });
    const creds = decoded(secret);
    expect(Object.keys(creds).sort()).toEqual(["endpoint", "password", "port", "username"]);
    expect(creds).toMatchObject({ username: ext, endpoint: "127.0.0.1", port: String(pg?.port) });
    expect(secret.type).toBe("connection.crossplane.io/v1alpha1");
    const login = { user: ext, password: creds.password as string, database: ext };
    firstPassword = login.password;
    expect(await pg?.query("select current_user || ' ' || current_database()", login)).toEqual([
      `${ext} ${ext}`,
    ]);
    expect(
      await pg?.query(`select pg_get_userbyid(datdba) from pg_database where datname = '${ext}'`),
    ).toEqual([ext]);
    // A login and nothing more: no superuser, no createdb, no createrole.
    expect(
      await pg?.query(
        `select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = '${ext}'`,
      ),
    ).toEqual(["t|f|f|f"]);
    await pg?.query("create table notes (body text); insert into notes values ('kept')", login);

    // The password is the operator's Secret's, which the Role points at; kept (no owner) under Retain,
    // immutable, and never shown in the AppVending's status or events.
    const role = await client.get<Obj>(GVK.role, { namespace: NS, name: mr });
    expect(role.spec.forProvider.passwordSecretRef).toEqual({
      name: passwordSecretName("shop"),
      key: "password",
    });
    const pw = await client.get<Obj>(SECRET, { namespace: NS, name: passwordSecretName("shop") });
    expect(decoded(pw).password).toBe(firstPassword);
    expect(pw.immutable).toBe(true);
    expect(pw.metadata?.ownerReferences ?? []).toEqual([]);
    expect(JSON.stringify(ready.status)).not.toContain(firstPassword);
    const events = await client.list<Obj>(
      { apiVersion: "events.k8s.io/v1", kind: "Event" },
      { namespace: NS, fieldSelector: `regarding.uid=${ready.metadata?.uid}` },
    );
    expect(events.items.length).toBeGreaterThan(0);
    // Made before the Role under Retain: the provider never failed on a missing password Secret.
    expect(events.items.filter((e) => e.type === "Warning").map((e) => e.note)).toEqual([]);
    expect(JSON.stringify(events.items)).not.toContain(firstPassword);
  }, 180_000);

  it("restores a hand-deleted password Secret from the role's connection Secret: same password, no reset", async () => {
    const name = passwordSecretName("shop");
    const before = await client.get<Obj>(SECRET, { namespace: NS, name });
    await client.delete(SECRET, { namespace: NS, name });
    // A metadata change wakes the reconcile now rather than at its one-minute poll.
    await client.patch(
      GVK.appVending,
      { namespace: NS, name: "shop" },
      { metadata: { annotations: { "e2e/poke": RUN } } },
      "merge",
    );
    const restored = await waitFor(
      "the password Secret to be back",
      async () => {
        const s = await client.getOrUndefined<Obj>(SECRET, { namespace: NS, name });
        return s && s.metadata?.uid !== before.metadata?.uid ? s : undefined;
      },
      120_000,
      500,
    );
    expect(decoded(restored).password).toBe(firstPassword);
    await waitPart("shop", "Ready", (c) => c.status === "True");
    const ext = externalNames(NS, "shop").postgres;
    expect(
      await pg?.query("select body from notes", { user: ext, password: firstPassword, database: ext }),
    ).toEqual(["kept"]);
    const conn = decoded(await client.get<Obj>(SECRET, { namespace: NS, name: "shop-db" }));
    expect(conn.password).toBe(firstPassword);
  }, 180_000);

  it("never hands another app's connection Secret over: the real provider refuses, as the stand-in does", async () => {
    const before = await client.get<Obj>(SECRET, { namespace: NS, name: "shop-db" });
    await client.create(av("thief", { database: {}, connectionSecrets: { database: "shop-db" } }));
    const thief = await waitPart("thief", "Database", (c) => c.reason === "ReconcileError");
    expect(cond(thief, "Database")?.status).toBe("False");
    expect(cond(thief, "Database")?.message).toMatch(
      /^Role av-thief: cannot create or update connection secret: existing secret is not controlled by UID "[0-9a-f-]+"$/,
    );
    const after = await client.get<Obj>(SECRET, { namespace: NS, name: "shop-db" });
    expect(after.data).toEqual(before.data);
    expect(after.metadata?.ownerReferences).toEqual(before.metadata?.ownerReferences);
    await client.delete(GVK.appVending, { namespace: NS, name: "thief" });
    await gone(GVK.appVending, "thief", NS);
  }, 180_000);

  it("shows PostgreSQL's own error in the Database condition while the provider cannot log in", async () => {
    await client.patch(
      SECRET,
      { namespace: OPERATOR_NS, name: ADMIN_SECRET },
      { stringData: { password: "wrong" } },
      "merge",
    );
    try {
      await client.create(av("broken", { database: {} }));
      const broken = await waitPart("broken", "Database", (c) => c.reason === "ReconcileError");
      expect(cond(broken, "Database")?.status).toBe("False");
      expect(cond(broken, "Database")?.message).toContain("password authentication failed");
      expect(cond(broken, "Ready")?.status).toBe("False");
    } finally {
      await client.patch(
        SECRET,
        { namespace: OPERATOR_NS, name: ADMIN_SECRET },
        { stringData: { password: pg?.password } },
        "merge",
      );
    }
    await waitPart("broken", "Ready", (c) => c.status === "True");
    await client.delete(GVK.appVending, { namespace: NS, name: "broken" });
  }, 180_000);

  it("Retain keeps the database; vending it again is Ready with the same working password; Delete drops it", async () => {
    const ext = externalNames(NS, "shop").postgres;
    await client.delete(GVK.appVending, { namespace: NS, name: "shop" });
    await gone(GVK.appVending, "shop", NS);
    await gone(GVK.role, managedName("shop"), NS);
    await gone(GVK.database, managedName("shop"), NS);
    expect(await inPostgres(ext)).toEqual({ role: true, database: true });
    // Its connection Secret goes with the Role MR, through kube-controller-manager's garbage collector.
    // Until then a new Role is refused that Secret ("not controlled by"), so wait as a user would.
    await gone(SECRET, "shop-db", NS);

    // The password Secret outlived the AppVending (no owner under Retain).
    expect(
      decoded(await client.get<Obj>(SECRET, { namespace: NS, name: passwordSecretName("shop") })).password,
    ).toBe(firstPassword);
    await client.create(av("shop", { database: {}, deletionPolicy: "Retain" }));
    // provider-sql adopts the kept role; with passwordSecretRef it sets the role's password to the kept
    // Secret's (the connection Secret lacks it) and publishes it: Ready, the old password, the old rows.
    await waitPart("shop", "Ready", (c) => c.status === "True", 180_000);
    const creds = decoded(await client.get<Obj>(SECRET, { namespace: NS, name: "shop-db" }));
    expect(Object.keys(creds).sort()).toEqual(["endpoint", "password", "port", "username"]);
    expect(creds.password).toBe(firstPassword);
    const login = { user: ext, password: creds.password as string, database: ext };
    expect(await pg?.query("select body from notes", login)).toEqual(["kept"]);

    await client.patch(
      GVK.appVending,
      { namespace: NS, name: "shop" },
      { spec: { deletionPolicy: "Delete" } },
      "merge",
    );
    await waitFor(
      "the Database MR to allow Delete",
      async () => {
        const db = await client.get<Obj>(GVK.database, { namespace: NS, name: managedName("shop") });
        return JSON.stringify(db.spec.managementPolicies) === '["*"]' ? true : undefined;
      },
      60_000,
      500,
    );
    await client.delete(GVK.appVending, { namespace: NS, name: "shop" });
    await gone(GVK.appVending, "shop", NS);
    await waitFor(
      "provider-sql to drop the database and the role",
      async () => {
        const left = await inPostgres(ext);
        return !left.role && !left.database ? true : undefined;
      },
      120_000,
      1_000,
    );
    // Made under Retain, the password Secret keeps no owner (the operator creates Secrets, never updates
    // them): it is left behind, and would be re-used by the next shop.
    const left = await client.get<Obj>(SECRET, { namespace: NS, name: passwordSecretName("shop") });
    expect(left.metadata?.ownerReferences ?? []).toEqual([]);
    await client.delete(SECRET, { namespace: NS, name: passwordSecretName("shop") });
  }, 480_000);

  it("under Delete the password Secret belongs to the Role and goes once the role is dropped", async () => {
    const ext = externalNames(NS, "temp").postgres;
    await client.create(av("temp", { database: {}, deletionPolicy: "Delete" }));
    await waitPart("temp", "Ready", (c) => c.status === "True");
    const role = await client.get<Obj>(GVK.role, { namespace: NS, name: managedName("temp") });
    const pw = await client.get<Obj>(SECRET, { namespace: NS, name: passwordSecretName("temp") });
    expect(pw.metadata?.ownerReferences).toEqual([
      { apiVersion: GVK.role.apiVersion, kind: "Role", name: managedName("temp"), uid: role.metadata?.uid },
    ]);
    const conn = decoded(await client.get<Obj>(SECRET, { namespace: NS, name: "temp-db" }));
    expect(conn.password).toBe(decoded(pw).password);
    expect(
      await pg?.query("select current_user", { user: ext, password: conn.password as string, database: ext }),
    ).toEqual([ext]);
    await client.delete(GVK.appVending, { namespace: NS, name: "temp" });
    await gone(GVK.role, managedName("temp"), NS);
    expect(await inPostgres(ext)).toEqual({ role: false, database: false });
    await gone(SECRET, passwordSecretName("temp"), NS);
  }, 240_000);
});
