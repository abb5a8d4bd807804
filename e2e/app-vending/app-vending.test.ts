// AppVending on the real control plane with the providers' and Knative's real CRDs: the portfolio
// example converges (the provider stand-in plays Crossplane's providers and Knative), its managed
// resources are held field by field against the seed's YAML, and alice tries every way around vending.
import { readFileSync } from "node:fs";
import { type KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { appVendingController } from "../../src/controllers/app-vending/controller.ts";
import { GVK, RETAIN_POLICIES } from "../../src/controllers/app-vending/desired.ts";
import { externalNames, managedName, passwordSecretName } from "../../src/controllers/app-vending/names.ts";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { vendingQuotaController } from "../../src/controllers/peer-tenant/vending-quota.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { startProviderStandIn } from "../../src/local/provider-stand-in/setup.ts";
import type { ProviderStandIn } from "../../src/local/provider-stand-in/stand-in.ts";
import { createLogger, KubeClient, type KubeObject, Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig, impersonating } from "../harness/test-cluster.ts";
import { statusMessage, statusOf, waitFor } from "../harness/wait.ts";
import { RUN, tenants, waitReady } from "../peer-tenant/tenant-fixtures.ts";
import { vendingGuardrailsCleanup } from "./guardrails.ts";

const OPERATOR_NS = "homelab-system";
// biome-ignore lint/suspicious/noExplicitAny: the assertions read deep fields of API objects as JSON
type Obj = KubeObject & Record<string, any>;
interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}

let admin: KubeConfig;
let client: KubeClient;
let manager: Manager;
let standIn: ProviderStandIn;
let removeGuardrails: (() => Promise<void>) | undefined;
const alice = `alice${RUN}`;
const bob = `bob${RUN}`;
const carol = `carol${RUN}`;
const aliceNs = `peers-${alice}`;
const bobNs = `peers-${bob}`;
const bobDomain = `${bob}.apps.home.shdr.ch`;
const host = `portfolio-${RUN}.apps.home.shdr.ch`;

function av(name: string, ns: string, spec: Record<string, unknown>): Obj {
  return { ...GVK.appVending, metadata: { name, namespace: ns }, spec } as Obj;
}

async function getAv(ns: string, name: string): Promise<Obj> {
  return client.get<Obj>(GVK.appVending, { namespace: ns, name });
}

function cond(o: Obj, type: string): Cond | undefined {
  return (o.status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);
}

async function waitCondition(
  ns: string,
  name: string,
  type: string,
  pred: (c: Cond) => boolean,
): Promise<Obj> {
  return waitFor(
    `${ns}/${name} ${type}`,
    async () => {
      const o = await getAv(ns, name);
      const c = cond(o, type);
      return c && pred(c) && o.status?.observedGeneration === o.metadata?.generation ? o : undefined;
    },
    60_000,
  );
}

async function refused(what: string, call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    const code = statusOf(err);
    if (code === 403 || code === 422 || code === 400) return statusMessage(err);
    throw err;
  }
  throw new Error(`${what} was allowed`);
}

beforeAll(async () => {
  admin = adminKubeConfig();
  client = new KubeClient(admin);
  await installCRDs(admin);
  await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: OPERATOR_NS } } as Obj);
  // What Crossplane's RBAC manager and Knative's chart aggregate into `admin`: tenants (bound to admin)
  // then hold RBAC rights on managed resources, ProviderConfigs and DomainMappings, and only the
  // vending guardrail stands in the way, which is what the isolation tests prove.
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRole({
    body: {
      metadata: {
        name: `test-aggregate-vending-to-admin-${RUN}`,
        labels: { "rbac.authorization.k8s.io/aggregate-to-admin": "true" },
      },
      rules: [
        {
          apiGroups: [
            "s3.aws.m.upbound.io",
            "aws.m.upbound.io",
            "postgresql.sql.m.crossplane.io",
            "keycloak.m.crossplane.io",
            "openidclient.keycloak.m.crossplane.io",
          ],
          resources: ["*"],
          verbs: ["*"],
        },
        { apiGroups: ["serving.knative.dev"], resources: ["*"], verbs: ["*"] },
      ],
    },
  });
  // The chart's ClusterRoles that aggregate AppVending rights into admin/edit/view, as deployed.
  const manifests = readFileSync(new URL("../../deploy/manifests/operator.yaml", import.meta.url), "utf8");
  for (const doc of parseAllDocuments(manifests)) {
    const o = doc.toJS() as Obj | null;
    if (o?.kind === "ClusterRole" && /-appvending-(edit|view)$/.test(o.metadata?.name ?? ""))
      await client.apply(o);
  }
  removeGuardrails = await vendingGuardrailsCleanup(client);
  manager = new Manager({
    kubeConfig: admin,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(peerTenantController({ operatorNamespace: OPERATOR_NS, operatorUsernames: [] }));
  manager.addController(vendingQuotaController());
  manager.addController(appVendingController({ operatorNamespace: OPERATOR_NS, operatorUsernames: [] }));
  // As local mode does: the providers' and Knative's CRDs, the platform's ProviderConfigs, the stand-in.
  standIn = await startProviderStandIn(manager, admin, { pollMs: 500 });
  await manager.start();
  const tenantSpec = (
    user: string,
    vending: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ) => ({
    ...extra,
    owners: { users: [user] },
    quota: { perNamespace: { "requests.memory": "4Gi", "limits.memory": "8Gi", pods: "20" } },
    limits: { defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } },
    vending,
  });
  await tenants(admin).create(
    alice,
    tenantSpec(alice, {
      maxApps: 2,
      maxBuckets: 5,
      maxDatabases: 5,
      maxOIDCClients: 5,
      allowedDomains: ["apps.home.shdr.ch"],
    }),
  );
  await tenants(admin).create(
    bob,
    // bob's own subdomain lies inside the domain both vend in: only the operator's check keeps alice out.
    tenantSpec(bob, { allowedDomains: ["apps.home.shdr.ch"] }, { hostnameDomain: bobDomain }),
  );
  await tenants(admin).create(
    carol,
    tenantSpec(carol, { maxApps: 1, maxBuckets: 0, maxDatabases: 0, maxOIDCClients: 0 }),
  );
  await waitReady(admin, alice, 60_000);
  await waitReady(admin, bob, 60_000);
  await waitReady(admin, carol, 60_000);
  // Quota admission refuses AppVendings until kube-controller-manager counts them: right after the CRD
  // is installed that takes until it is watched and the quota made again (vending-quota.ts).
  for (const t of [alice, bob, carol]) {
    await waitFor(
      `${t}'s vending quota counted`,
      async () => {
        const q = await client.getOrUndefined<Obj>(
          { apiVersion: "v1", kind: "ResourceQuota" },
          { namespace: `peers-${t}`, name: "tenant-vending-quota" },
        );
        return q?.status?.used?.["count/appvendings.homelab.shdr.ch"] !== undefined ? q : undefined;
      },
      150_000,
    );
  }
}, 420_000);

afterAll(async () => {
  await manager?.stop();
  await removeGuardrails?.();
});

describe("AppVending: the portfolio example", () => {
  it("converges to Ready with the seed's bucket, Keycloak client and database", async () => {
    const example = parse(
      readFileSync(new URL("../../examples/app-vending-portfolio.yaml", import.meta.url), "utf8"),
    ) as Obj;
    example.metadata = { ...example.metadata, namespace: aliceNs };
    example.spec.app.hostname = host;
    const aliceKc = await impersonating(alice);
    // alice applies it herself, as her GitLab CI would (once the aggregated admin role has the rule).
    await waitFor(
      "alice may create AppVendings",
      async () => {
        try {
          return await new KubeClient(aliceKc).create(example);
        } catch (err) {
          if (statusOf(err) === 403 && statusMessage(err).includes("cannot create resource"))
            return undefined;
          throw err;
        }
      },
      60_000,
    );
    const ready = await waitCondition(aliceNs, "portfolio", "Ready", (c) => c.status === "True");
    for (const part of ["Bucket", "Database", "OIDCClient", "App", "Route"]) {
      expect(cond(ready, part)?.status, part).toBe("True");
    }
    expect(ready.status.url).toBe(`https://${host}`);
    expect(ready.status.tenant).toBe(alice);
    // One Event per part as it became ready.
    const reasons = await waitFor(
      "part Ready events",
      async () => {
        const events = await client.list<Obj>(
          { apiVersion: "events.k8s.io/v1", kind: "Event" },
          { namespace: aliceNs },
        );
        const mine = new Set(
          events.items.filter((e) => e.regarding?.name === "portfolio").map((e) => e.reason),
        );
        return mine.size >= 5 ? mine : undefined;
      },
      30_000,
    );
    for (const r of ["BucketReady", "DatabaseReady", "OIDCClientReady", "AppReady", "RouteReady"]) {
      expect(reasons.has(r), r).toBe(true);
    }

    const mr = managedName("portfolio");
    const ext = externalNames(aliceNs, "portfolio");
    const get = (gvk: { apiVersion: string; kind: string }, name = mr) =>
      client.get<Obj>(gvk, { namespace: aliceNs, name });
    // Seed: Bucket forProvider.acl public-read, providerConfigRef ceph-rgw. v1beta1 Bucket has no acl:
    // the canned ACL is its own BucketACL, referring to the Bucket.
    const bucket = await get(GVK.bucket);
    expect(bucket.spec.providerConfigRef).toEqual({ kind: "ClusterProviderConfig", name: "ceph-rgw" });
    expect(bucket.metadata?.annotations?.["crossplane.io/external-name"]).toBe(ext.bucket);
    expect(bucket.spec.writeConnectionSecretToRef).toEqual({ name: "portfolio-s3" });
    expect(bucket.spec.managementPolicies).toEqual(RETAIN_POLICIES);
    const acl = await get(GVK.bucketAcl);
    expect(acl.spec.forProvider.acl).toBe("public-read");
    expect(acl.spec.forProvider.bucketRef).toEqual({ name: mr });
    expect(acl.spec.providerConfigRef.name).toBe("ceph-rgw");
    // Seed: Client clientId portfolio, realmId aether, publicClient true, standardFlowEnabled true,
    // rootUrl, validRedirectUris, providerConfigRef keycloak. publicClient is accessType PUBLIC in
    // provider-keycloak; the clientId carries the namespace and a hash because tenants share the realm.
    const client_ = await get(GVK.oidcClient);
    expect(client_.spec.forProvider).toMatchObject({
      clientId: ext.clientId,
      realmId: "aether",
      accessType: "PUBLIC",
      standardFlowEnabled: true,
      rootUrl: "https://portfolio.shdr.ch",
      validRedirectUris: ["https://portfolio.shdr.ch/*"],
    });
    expect(client_.spec.providerConfigRef.name).toBe("keycloak");
    expect(client_.spec.writeConnectionSecretToRef).toEqual({ name: "portfolio-oidc" });
    // Seed: Database forProvider.owner portfolio, writeConnectionSecretToRef portfolio-db-creds in
    // namespace projects. A namespaced MR's secret ref has no namespace, and provider-sql's Database
    // publishes nothing: the owner Role writes portfolio-db (username, password, endpoint, port).
    const db = await get(GVK.database);
    const role = await get(GVK.role);
    expect(db.spec.forProvider.owner).toBe(ext.postgres);
    expect(role.metadata?.annotations?.["crossplane.io/external-name"]).toBe(ext.postgres);
    expect(role.spec.forProvider.privileges).toEqual({ login: true });
    expect(role.spec.writeConnectionSecretToRef).toEqual({ name: "portfolio-db" });
    expect(db.spec.providerConfigRef).toEqual({ kind: "ClusterProviderConfig", name: "postgres" });
    const secret = await client.get<Obj>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: aliceNs, name: "portfolio-db" },
    );
    expect(Object.keys(secret.data).sort()).toEqual(["endpoint", "password", "port", "username"]);
    expect(Buffer.from(secret.data.username, "base64").toString()).toBe(ext.postgres);
    // The app: scale bounds 0..3 as Knative autoscaling annotations, env from the Secrets.
    const ksvc = await get(GVK.knativeService, "portfolio");
    expect(ksvc.spec.template.metadata.annotations).toMatchObject({
      "autoscaling.knative.dev/min-scale": "0",
      "autoscaling.knative.dev/max-scale": "3",
    });
    const container = ksvc.spec.template.spec.containers[0];
    expect(container.image).toBe("registry.home.shdr.ch/alice/portfolio:1.0");
    expect(container.envFrom.map((e: Obj) => e.secretRef.name).sort()).toEqual([
      "portfolio-db",
      "portfolio-oidc",
      "portfolio-s3",
    ]);
    const dm = await get(GVK.domainMapping, host);
    expect(dm.spec.ref).toEqual({
      apiVersion: "serving.knative.dev/v1",
      kind: "Service",
      name: "portfolio",
      namespace: aliceNs,
    });
  }, 120_000);
});

describe("AppVending: alice cannot get around it", () => {
  it("refuses vending into bob's namespace, raw MRs, her own ProviderConfig and DomainMappings", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    await refused("an AppVending in bob's namespace", asAlice.create(av("steal", bobNs, { bucket: {} })));
    // Wait until the aggregated rights reach admin, so what refuses below is the guardrail, not RBAC.
    await waitFor(
      "aggregated rights",
      async () => {
        try {
          await asAlice.request("POST", `/apis/s3.aws.m.upbound.io/v1beta1/namespaces/${aliceNs}/buckets`, {
            query: { dryRun: "All" },
            body: { ...GVK.bucket, metadata: { name: "probe" }, spec: { forProvider: { region: "x" } } },
          });
        } catch (err) {
          return statusMessage(err).includes("vended through an AppVending") ? true : undefined;
        }
        throw new Error("a raw Bucket was admitted");
      },
      60_000,
    );
    const raw = await refused(
      "a raw Bucket",
      asAlice.create({
        ...GVK.bucket,
        metadata: { name: "raw", namespace: aliceNs },
        spec: { forProvider: { region: "x" } },
      } as Obj),
    );
    expect(raw).toContain("vended through an AppVending");
    const pc = await refused(
      "her own ProviderConfig",
      asAlice.create({
        apiVersion: "aws.m.upbound.io/v1beta1",
        kind: "ProviderConfig",
        metadata: { name: "mine", namespace: aliceNs },
        spec: { credentials: { source: "None" } },
      } as Obj),
    );
    expect(pc).toContain("vended through an AppVending");
    await refused(
      "a ClusterProviderConfig",
      asAlice.create({
        apiVersion: "aws.m.upbound.io/v1beta1",
        kind: "ClusterProviderConfig",
        metadata: { name: `mine-${RUN}` },
        spec: { credentials: { source: "None" } },
      } as Obj),
    );
    await refused(
      "a DomainMapping of her own",
      asAlice.create({
        ...GVK.domainMapping,
        metadata: { name: `x-${RUN}.apps.home.shdr.ch`, namespace: aliceNs },
        spec: {
          ref: {
            apiVersion: "serving.knative.dev/v1",
            kind: "Service",
            name: "portfolio",
            namespace: aliceNs,
          },
        },
      } as Obj),
    );
    // Nor can she change the MRs vending made for her (e.g. point them at another ProviderConfig).
    await refused(
      "changing her vended Bucket",
      asAlice.patch(
        GVK.bucket,
        { namespace: aliceNs, name: managedName("portfolio") },
        { spec: { providerConfigRef: { kind: "ProviderConfig", name: "mine" } } },
        "merge",
      ),
    );
  }, 120_000);

  it("refuses deleting her vended MRs or letting the provider delete their data", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    const key = { namespace: aliceNs, name: managedName("portfolio") };
    // Under Retain the database's MR lacks Delete: widening it would let the provider drop the data.
    await refused(
      "widening her Database's managementPolicies",
      asAlice.patch(GVK.database, key, { spec: { managementPolicies: ["*"] } }, "merge"),
    );
    const del = await refused("deleting her vended Database", asAlice.delete(GVK.database, key));
    expect(del).toContain("vended through an AppVending");
    await refused(
      "removing the provider's finalizer",
      asAlice.patch(GVK.role, key, { metadata: { finalizers: null } }, "merge"),
    );
    const db = await client.get<Obj>(GVK.database, key);
    expect(db.metadata?.deletionTimestamp).toBeUndefined();
    expect(db.spec.managementPolicies).toEqual(RETAIN_POLICIES);
  }, 60_000);

  it("never lets her pick the ProviderConfig through the AppVending: the field does not exist", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    await asAlice.create(
      av("chooser", aliceNs, {
        bucket: { acl: "private", providerConfigRef: { kind: "ProviderConfig", name: "mine" } },
      }),
    );
    expect((await getAv(aliceNs, "chooser")).spec.bucket).toEqual({ acl: "private", versioning: false });
    await waitCondition(aliceNs, "chooser", "Bucket", (c) => c.status === "True");
    const bucket = await client.get<Obj>(GVK.bucket, { namespace: aliceNs, name: managedName("chooser") });
    expect(bucket.spec.providerConfigRef).toEqual({ kind: "ClusterProviderConfig", name: "ceph-rgw" });
    await client.delete(GVK.appVending, { namespace: aliceNs, name: "chooser" });
  }, 90_000);

  it("cannot have another app's connection Secret, or a Secret of her own, overwritten", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    const secretKey = { namespace: aliceNs, name: "portfolio-db" };
    const before = await client.get<Obj>({ apiVersion: "v1", kind: "Secret" }, secretKey);
    // Her second app asks for its database credentials under the portfolio's Secret name.
    await asAlice.create(
      av("thief", aliceNs, { database: {}, connectionSecrets: { database: "portfolio-db" } }),
    );
    const thief = await waitCondition(aliceNs, "thief", "Database", (c) => c.reason === "ReconcileError");
    expect(cond(thief, "Database")?.status).toBe("False");
    expect(cond(thief, "Database")?.message).toContain("existing secret is not controlled by UID");
    const after = await client.get<Obj>({ apiVersion: "v1", kind: "Secret" }, secretKey);
    expect(after.data).toEqual(before.data);
    expect(after.metadata?.ownerReferences).toEqual(before.metadata?.ownerReferences);
    // A Secret she wrote herself is no connection Secret: the provider leaves it alone too.
    await asAlice.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `mine-${RUN}`, namespace: aliceNs },
      stringData: { token: "hers" },
    } as Obj);
    await asAlice.create(
      av("overwriter", aliceNs, { database: {}, connectionSecrets: { database: `mine-${RUN}` } }),
    );
    const over = await waitCondition(aliceNs, "overwriter", "Database", (c) => c.reason === "ReconcileError");
    expect(cond(over, "Database")?.message).toContain(
      'refusing to modify uncontrolled secret of type "Opaque"',
    );
    const mine = await client.get<Obj>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: aliceNs, name: `mine-${RUN}` },
    );
    expect(Object.keys(mine.data)).toEqual(["token"]);
    for (const name of ["thief", "overwriter"])
      await client.delete(GVK.appVending, { namespace: aliceNs, name });
  }, 120_000);

  it("can neither read nor replace another app's database password Secret, nor plant one for her app", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    const SECRET = { apiVersion: "v1", kind: "Secret" };
    // bob's database, vended by an admin in bob's namespace: its password Secret is out of alice's reach.
    await client.create(av("ledger", bobNs, { database: {} }));
    await waitCondition(bobNs, "ledger", "Database", (c) => c.status === "True");
    const bobKey = { namespace: bobNs, name: passwordSecretName("ledger") };
    const bobPw = await client.get<Obj>(SECRET, bobKey);
    // The stand-in, as provider-sql, gives the role the password Secret's value.
    const bobConn = await client.get<Obj>(SECRET, { namespace: bobNs, name: "ledger-db" });
    expect(bobConn.data.password).toBe(bobPw.data.password);
    await refused("reading bob's password Secret", asAlice.get(SECRET, bobKey));
    await refused(
      "replacing bob's password Secret",
      asAlice.patch(SECRET, bobKey, { stringData: { password: "alice-knows" } }, "merge"),
    );
    await refused("deleting bob's password Secret", asAlice.delete(SECRET, bobKey));
    expect((await client.get<Obj>(SECRET, bobKey)).data).toEqual(bobPw.data);

    // Her own app's password Secret is immutable: replacing the value is refused even in her namespace.
    const ownKey = { namespace: aliceNs, name: passwordSecretName("portfolio") };
    const own = await client.get<Obj>(SECRET, ownKey);
    expect(own.immutable).toBe(true);
    await refused(
      "changing her password Secret's value",
      asAlice.patch(SECRET, ownKey, { stringData: { password: "chosen" } }, "merge"),
    );
    // A second app publishing its credentials into that Secret is refused by the provider.
    await asAlice.create(
      av("squatter", aliceNs, { database: {}, connectionSecrets: { database: ownKey.name } }),
    );
    const squatter = await waitCondition(
      aliceNs,
      "squatter",
      "Database",
      (c) => c.reason === "ReconcileError",
    );
    expect(cond(squatter, "Database")?.message).toContain(
      'refusing to modify uncontrolled secret of type "Opaque"',
    );
    expect((await client.get<Obj>(SECRET, ownKey)).data).toEqual(own.data);

    // A Secret planted under the name an app's password Secret will have is never taken as its password.
    await asAlice.create({
      ...SECRET,
      metadata: { name: passwordSecretName("planted"), namespace: aliceNs },
      stringData: { password: "planted" },
    } as Obj);
    await asAlice.create(av("planted", aliceNs, { database: {} }));
    const planted = await waitCondition(
      aliceNs,
      "planted",
      "Database",
      (c) => c.reason === "PasswordSecretConflict",
    );
    expect(cond(planted, "Database")?.status).toBe("False");
    expect(
      await client.getOrUndefined(GVK.role, { namespace: aliceNs, name: managedName("planted") }),
    ).toBeUndefined();
    for (const [ns, name] of [
      [aliceNs, "squatter"],
      [aliceNs, "planted"],
      [bobNs, "ledger"],
    ] as const)
      await client.delete(GVK.appVending, { namespace: ns, name });
  }, 120_000);

  it("refuses a hostname in bob's subdomain and one another app holds", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    await asAlice.create(
      av("evil", aliceNs, { app: { image: "registry.example/app:1", hostname: `www.${bobDomain}` } }),
    );
    const evil = await waitCondition(aliceNs, "evil", "Route", (c) => c.status === "False");
    expect(cond(evil, "Route")?.reason).toBe("HostnameNotAllowed");
    expect(cond(evil, "Route")?.message).toMatch(/another tenant's domain/);
    expect(
      await client.getOrUndefined(GVK.domainMapping, { namespace: aliceNs, name: `www.${bobDomain}` }),
    ).toBeUndefined();
    // Outside every domain she may use: a name of the platform's own, and one that only ends like hers.
    for (const outside of ["portfolio.shdr.ch", "evilapps.home.shdr.ch"]) {
      await asAlice.patch(
        GVK.appVending,
        { namespace: aliceNs, name: "evil" },
        { spec: { app: { hostname: outside } } },
        "merge",
      );
      const moved = await waitCondition(aliceNs, "evil", "Route", (c) => c.status === "False");
      expect(cond(moved, "Route")?.reason, outside).toBe("HostnameNotAllowed");
      expect(cond(moved, "Route")?.message).toContain(
        `hostname ${outside} is not within the tenant's allowed domains`,
      );
      expect(
        await client.getOrUndefined(GVK.domainMapping, { namespace: aliceNs, name: outside }),
      ).toBeUndefined();
      expect(
        await client.getOrUndefined(GVK.lease, { namespace: OPERATOR_NS, name: `host.${outside}` }),
      ).toBeUndefined();
    }
    // bob may use apps.home.shdr.ch, but alice's portfolio holds its hostname.
    const asBob = new KubeClient(await impersonating(bob));
    await asBob.create(av("copy", bobNs, { app: { image: "registry.example/app:1", hostname: host } }));
    const copy = await waitCondition(bobNs, "copy", "Route", (c) => c.status === "False");
    expect(cond(copy, "Route")?.reason).toBe("HostnameTaken");
    expect(await client.getOrUndefined(GVK.domainMapping, { namespace: bobNs, name: host })).toBeUndefined();
  }, 120_000);

  it("gives a hostname two apps ask for at the same moment to exactly one of them", async () => {
    const asBob = new KubeClient(await impersonating(bob));
    const raced = `race-${RUN}.apps.home.shdr.ch`;
    await Promise.all(
      ["race-a", "race-b"].map((name) =>
        asBob.create(av(name, bobNs, { app: { image: "registry.example/app:1", hostname: raced } })),
      ),
    );
    const routes = await Promise.all(
      ["race-a", "race-b"].map((name) =>
        waitCondition(bobNs, name, "Route", (c) => c.status === "True" || c.reason === "HostnameTaken"),
      ),
    );
    const winners = routes.filter((o) => cond(o, "Route")?.status === "True");
    expect(winners.map((o) => o.metadata?.name)).toHaveLength(1);
    const lease = await client.get<Obj>(GVK.lease, { namespace: OPERATOR_NS, name: `host.${raced}` });
    expect(lease.spec.holderIdentity).toBe(
      `${bobNs}/${winners[0]?.metadata?.name}/${winners[0]?.metadata?.uid}`,
    );
    const mappings = await client.list<Obj>(GVK.domainMapping, { namespace: bobNs });
    expect(mappings.items.filter((m) => m.metadata?.name === raced)).toHaveLength(1);
    expect(mappings.items.find((m) => m.metadata?.name === raced)?.spec.ref.name).toBe(
      winners[0]?.metadata?.name,
    );
    for (const name of ["race-a", "race-b"]) await client.delete(GVK.appVending, { namespace: bobNs, name });
  }, 120_000);

  it("refuses apps over her limit and AppVendings outside tenant namespaces", async () => {
    const asAlice = new KubeClient(await impersonating(alice));
    // maxApps is 2: portfolio and evil hold both.
    await asAlice.create(av("toomany", aliceNs, { app: { image: "registry.example/app:1" } }));
    const over = await waitCondition(aliceNs, "toomany", "App", (c) => c.status === "False");
    expect(cond(over, "App")?.reason).toBe("LimitExceeded");
    expect(
      await client.getOrUndefined(GVK.knativeService, { namespace: aliceNs, name: "toomany" }),
    ).toBeUndefined();
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: `plain-${RUN}` } } as Obj);
    const msg = await refused(
      "an AppVending outside tenant namespaces",
      client.create(av("x", `plain-${RUN}`, { bucket: {} })),
    );
    expect(msg).toContain("only accepted in a tenant's namespace");
  }, 120_000);
});

describe("AppVending: admission counts AppVendings per tenant namespace", () => {
  it("refuses carol's second AppVending at admission: her limits sum to one", async () => {
    const asCarol = new KubeClient(await impersonating(carol));
    const ns = `peers-${carol}`;
    const quota = await client.get<Obj>(
      { apiVersion: "v1", kind: "ResourceQuota" },
      { namespace: ns, name: "tenant-vending-quota" },
    );
    expect(quota.spec.hard).toEqual({ "count/appvendings.homelab.shdr.ch": "1" });
    await asCarol.create(av("one", ns, { app: { image: "registry.example/app:1" } }));
    const msg = await refused(
      "a second AppVending",
      asCarol.create(av("two", ns, { app: { image: "registry.example/app:1" } })),
    );
    expect(msg).toContain("exceeded quota");
    // Nor can she lift the cap.
    await refused(
      "raising her quota",
      asCarol.patch(
        { apiVersion: "v1", kind: "ResourceQuota" },
        { namespace: ns, name: "tenant-vending-quota" },
        { spec: { hard: { "count/appvendings.homelab.shdr.ch": "100" } } },
        "merge",
      ),
    );
  }, 120_000);
});

describe("AppVending: data and failures", () => {
  it("keeps the bucket and database on delete under Retain and removes them under Delete", async () => {
    for (const [name, policy] of [
      ["keep", "Retain"],
      ["drop", "Delete"],
    ] as const) {
      await client.create(av(name, aliceNs, { bucket: {}, database: {}, deletionPolicy: policy }));
      await waitCondition(aliceNs, name, "Ready", (c) => c.status === "True");
      const ext = externalNames(aliceNs, name);
      expect(standIn.external.has(`Bucket/ceph-rgw/${ext.bucket}`)).toBe(true);
      await client.delete(GVK.appVending, { namespace: aliceNs, name });
      await waitFor(
        `${name} gone`,
        async () =>
          (await client.getOrUndefined(GVK.appVending, { namespace: aliceNs, name })) ? undefined : true,
        60_000,
      );
      await waitFor(
        `${name}'s MRs gone`,
        async () =>
          (await client.getOrUndefined(GVK.bucket, { namespace: aliceNs, name: managedName(name) }))
            ? undefined
            : true,
        60_000,
      );
      const kept =
        standIn.external.has(`Bucket/ceph-rgw/${ext.bucket}`) &&
        standIn.external.has(`Database/postgres/${ext.postgres}`);
      expect(kept, `${policy}: external bucket and database kept`).toBe(policy === "Retain");
    }
  }, 180_000);

  it("always removes the app, its route and its hostname claim, so another app may take the hostname", async () => {
    const oidcKey = `Client/keycloak/${managedName("portfolio")}`;
    expect(standIn.external.has(oidcKey)).toBe(true);
    await client.delete(GVK.appVending, { namespace: aliceNs, name: "portfolio" });
    const gone = (gvk: { apiVersion: string; kind: string }, key: { namespace: string; name: string }) =>
      waitFor(
        `${gvk.kind} ${key.name} gone`,
        async () => ((await client.getOrUndefined(gvk, key)) ? undefined : true),
        60_000,
      );
    await gone(GVK.appVending, { namespace: aliceNs, name: "portfolio" });
    await gone(GVK.knativeService, { namespace: aliceNs, name: "portfolio" });
    await gone(GVK.domainMapping, { namespace: aliceNs, name: host });
    // The claim is released; bob's app, which waits for the name, may already have claimed it anew.
    await waitFor(
      "portfolio's hostname claim released",
      async () => {
        const lease = await client.getOrUndefined<Obj>(GVK.lease, {
          namespace: OPERATOR_NS,
          name: `host.${host}`,
        });
        return lease?.spec.holderIdentity.startsWith(`${aliceNs}/portfolio/`) ? undefined : true;
      },
      60_000,
    );
    // deletionPolicy Retain (the default): the public bucket's data and the database outlive the app.
    const ext = externalNames(aliceNs, "portfolio");
    expect(standIn.external.has(`Bucket/ceph-rgw/${ext.bucket}`)).toBe(true);
    expect(standIn.external.has(`Database/postgres/${ext.postgres}`)).toBe(true);
    // The OIDC client always goes: its MR lets the provider delete it.
    await waitFor(
      "OIDC client deleted",
      async () => (standIn.external.has(oidcKey) ? undefined : true),
      30_000,
    );
    // bob's app that was refused the hostname gets it now, on its next look.
    const copy = await waitCondition(bobNs, "copy", "Route", (c) => c.status === "True");
    expect(copy.status.url).toBe(`https://${host}`);
  }, 120_000);

  it("shows a failing provider's message in the part's Condition and a Warning event", async () => {
    standIn.failWith("Database", 'pq: permission denied to create database "x"');
    try {
      await client.create(av("broken", aliceNs, { database: {} }));
      const broken = await waitCondition(aliceNs, "broken", "Database", (c) => c.reason === "ReconcileError");
      expect(cond(broken, "Database")?.status).toBe("False");
      expect(cond(broken, "Database")?.message).toContain("permission denied to create database");
      expect(cond(broken, "Ready")?.status).toBe("False");
      await waitFor(
        "DatabaseFailed event",
        async () => {
          const events = await client.list<Obj>(
            { apiVersion: "events.k8s.io/v1", kind: "Event" },
            { namespace: aliceNs },
          );
          return events.items.find((e) => e.reason === "DatabaseFailed" && e.regarding?.name === "broken")
            ? true
            : undefined;
        },
        30_000,
      );
    } finally {
      standIn.failWith("Database", undefined);
    }
    await waitCondition(aliceNs, "broken", "Ready", (c) => c.status === "True");
  }, 120_000);

  it("has the stand-in take a Role's password from its passwordSecretRef, and fail while that Secret is missing", async () => {
    const SECRET = { apiVersion: "v1", kind: "Secret" };
    const name = `pw-ref-${RUN}`;
    const key = { namespace: OPERATOR_NS, name };
    // An admin's own Role MR in the operator's namespace, naming a password Secret that is not there yet.
    await client.create({
      ...GVK.role,
      metadata: key,
      spec: {
        forProvider: { privileges: { login: true }, passwordSecretRef: { name, key: "password" } },
        providerConfigRef: { kind: "ClusterProviderConfig", name: "postgres" },
        writeConnectionSecretToRef: { name: `${name}-conn` },
      },
    } as Obj);
    try {
      await waitFor(
        "the Role to fail on its missing password Secret",
        async () => {
          const role = await client.get<Obj>(GVK.role, key);
          return cond(role, "Synced")?.message ===
            `cannot observe external resource: cannot get password secret: secrets "${name}" not found`
            ? true
            : undefined;
        },
        30_000,
      );
      await client.create({ ...SECRET, metadata: key, stringData: { password: "given-by-ref" } } as Obj);
      await waitFor(
        "the connection Secret to carry the referenced password",
        async () => {
          const conn = await client.getOrUndefined<Obj>(SECRET, {
            namespace: OPERATOR_NS,
            name: `${name}-conn`,
          });
          const pw = conn?.data?.password as string | undefined;
          return pw && Buffer.from(pw, "base64").toString() === "given-by-ref" ? true : undefined;
        },
        30_000,
      );
    } finally {
      await client.delete(GVK.role, key, { ignoreNotFound: true });
      await client.delete(SECRET, key, { ignoreNotFound: true });
    }
  }, 90_000);
});
