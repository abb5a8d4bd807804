import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AppVending } from "../../crds/app-vending.ts";
import type { KubeObject } from "../../runtime/index.ts";
import { mirror, withinDomain } from "./controller.ts";
import {
  ALL_POLICIES,
  DEFAULT_PLATFORM,
  desiredBucket,
  desiredDatabase,
  desiredDomainMapping,
  desiredKnativeService,
  desiredOidcClient,
  RETAIN_POLICIES,
} from "./desired.ts";
import { overLimit } from "./limits.ts";
import { externalNames, managedName } from "./names.ts";

type Obj = KubeObject & Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: the assertions read deep fields of generated objects
type Any = any;

const portfolio = AppVending.schema.parse(
  parse(readFileSync(new URL("../../../examples/app-vending-portfolio.yaml", import.meta.url), "utf8")),
);
const owner = { ...portfolio, metadata: { ...portfolio.metadata, uid: "u-1" } } as Obj;

describe("desired managed resources", () => {
  it("puts public-read in a BucketACL next to the Bucket, on the platform's ceph-rgw, kept by default", () => {
    const [bucket, acl] = desiredBucket(portfolio, owner, DEFAULT_PLATFORM) as Any[];
    expect(bucket.apiVersion).toBe("s3.aws.m.upbound.io/v1beta1");
    expect(bucket.spec.providerConfigRef).toEqual({ kind: "ClusterProviderConfig", name: "ceph-rgw" });
    expect(bucket.spec.managementPolicies).toEqual(RETAIN_POLICIES);
    expect(bucket.spec.managementPolicies).not.toContain("Delete");
    expect(bucket.spec.forProvider).not.toHaveProperty("acl");
    expect(acl.kind).toBe("BucketACL");
    expect(acl.spec.forProvider).toMatchObject({
      acl: "public-read",
      bucketRef: { name: bucket.metadata.name },
    });
    expect(bucket.metadata.ownerReferences[0].uid).toBe("u-1");
  });

  it("makes no ACL for a private bucket and lets Delete reach the provider under deletionPolicy Delete", () => {
    const spec = {
      ...portfolio.spec,
      bucket: { acl: "private" as const, versioning: false },
      deletionPolicy: "Delete" as const,
    };
    const objs = desiredBucket({ ...portfolio, spec }, owner, DEFAULT_PLATFORM) as Any[];
    expect(objs).toHaveLength(1);
    expect(objs[0].spec.managementPolicies).toEqual(ALL_POLICIES);
    const [role, db] = desiredDatabase({ ...portfolio, spec }, owner, DEFAULT_PLATFORM) as Any[];
    expect(role.spec.managementPolicies).toEqual(ALL_POLICIES);
    expect(db.spec.managementPolicies).toEqual(ALL_POLICIES);
  });

  it("gives the database an owner role that logs in and nothing more, and publishes through the role", () => {
    const [role, db] = desiredDatabase(portfolio, owner, DEFAULT_PLATFORM) as Any[];
    const pg = externalNames("peers-alice", "portfolio").postgres;
    expect(role.spec.forProvider.privileges).toEqual({ login: true });
    expect(role.spec.writeConnectionSecretToRef).toEqual({ name: "portfolio-db" });
    // The operator's password Secret, named after the Role and never the connection Secret.
    expect(role.spec.forProvider.passwordSecretRef).toEqual({
      name: "av-portfolio-pg-password",
      key: "password",
    });
    expect(db.spec.forProvider).toEqual({ owner: pg });
    expect(db.spec).not.toHaveProperty("writeConnectionSecretToRef");
    expect(db.metadata.annotations["crossplane.io/external-name"]).toBe(pg);
  });

  it("translates the seed's publicClient into accessType PUBLIC with PKCE, and a confidential client without", () => {
    const [pub] = desiredOidcClient(portfolio, owner, DEFAULT_PLATFORM) as Any[];
    expect(pub.spec.forProvider).toMatchObject({
      accessType: "PUBLIC",
      pkceCodeChallengeMethod: "S256",
      realmId: "aether",
    });
    const oidc = {
      ...(portfolio.spec.oidcClient as NonNullable<typeof portfolio.spec.oidcClient>),
      publicClient: false,
    };
    const [conf] = desiredOidcClient(
      { ...portfolio, spec: { ...portfolio.spec, oidcClient: oidc } },
      owner,
      DEFAULT_PLATFORM,
    ) as Any[];
    expect(conf.spec.forProvider.accessType).toBe("CONFIDENTIAL");
    expect(conf.spec.forProvider).not.toHaveProperty("pkceCodeChallengeMethod");
  });

  it("scales the Knative Service 0..3 and feeds it every connection Secret under its own prefix", () => {
    const [ksvc] = desiredKnativeService(portfolio, owner, DEFAULT_PLATFORM) as Any[];
    expect(ksvc.spec.template.metadata.annotations).toEqual({
      "autoscaling.knative.dev/min-scale": "0",
      "autoscaling.knative.dev/max-scale": "3",
    });
    const c = ksvc.spec.template.spec.containers[0];
    expect(c.envFrom).toEqual([
      { prefix: "S3_", secretRef: { name: "portfolio-s3" } },
      { prefix: "DB_", secretRef: { name: "portfolio-db" } },
      { prefix: "OIDC_", secretRef: { name: "portfolio-oidc" } },
    ]);
    expect(c.env).toContainEqual({ name: "LOG_LEVEL", value: "info" });
    expect(c.securityContext.runAsNonRoot).toBe(true);
    const [dm] = desiredDomainMapping(portfolio, owner) as Any[];
    expect(dm.metadata.name).toBe("portfolio.apps.home.shdr.ch");
    expect(dm.spec.ref.namespace).toBe("peers-alice");
  });
});

describe("names", () => {
  it("keeps external names apart for namespace/name pairs that read alike", () => {
    const a = externalNames("peers-a", "b-c");
    const b = externalNames("peers-a-b", "c");
    expect(a.bucket).not.toBe(b.bucket);
    expect(a.postgres).not.toBe(b.postgres);
    expect(a.clientId).not.toBe(b.clientId);
    expect(a.clientId.startsWith("peers-a-b-c-")).toBe(true);
  });

  it("fits S3 and PostgreSQL rules even for the longest names", () => {
    const long = "x".repeat(200);
    const n = externalNames(`peers-${"y".repeat(57)}`, long);
    expect(n.bucket.length).toBeLessThanOrEqual(63);
    expect(n.bucket).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    expect(n.postgres.length).toBeLessThanOrEqual(63);
    expect(n.postgres).toMatch(/^[a-z_][a-z0-9_]*$/);
    expect(managedName(long).length).toBeLessThanOrEqual(63);
    expect(managedName(long)).not.toBe(managedName(`${long.slice(0, 199)}z`));
  });
});

describe("limits", () => {
  const vending = { maxApps: 1, maxBuckets: 2, maxDatabases: 0, maxOIDCClients: 1, allowedDomains: [] };
  const at = (name: string, created: string, spec: Record<string, unknown>) => ({
    namespace: "peers-a",
    name,
    created,
    spec,
  });

  it("lets the oldest keep its parts and refuses the newest past each limit", () => {
    const all = [
      at("new", "2026-01-02T00:00:00Z", { app: {} }),
      at("old", "2026-01-01T00:00:00Z", { app: {}, database: {} }),
    ];
    expect(overLimit({ namespace: "peers-a", name: "old" }, all, vending)).toEqual(
      new Map([["Database", expect.stringContaining("maxDatabases is 0")]]),
    );
    expect([...overLimit({ namespace: "peers-a", name: "new" }, all, vending).keys()]).toEqual(["App"]);
  });

  it("orders AppVendings created in the same second by namespace and name, the same every time", () => {
    const all = [at("b", "2026-01-01T00:00:00Z", { app: {} }), at("a", "2026-01-01T00:00:00Z", { app: {} })];
    expect(overLimit({ namespace: "peers-a", name: "a" }, all, vending).size).toBe(0);
    expect(overLimit({ namespace: "peers-a", name: "b" }, all, vending).has("App")).toBe(true);
  });
});

describe("status mirroring", () => {
  const mr = (conditions: unknown[]) =>
    ({ kind: "Database", metadata: { name: "av-x" }, status: { conditions } }) as Obj;
  it("reports a provider's ReconcileError with its message before anything else", () => {
    const s = mirror([
      mr([
        { type: "Ready", status: "True", reason: "Available" },
        { type: "Synced", status: "False", reason: "ReconcileError", message: "pq: permission denied" },
      ]),
    ]);
    expect(s).toEqual({
      status: "False",
      reason: "ReconcileError",
      message: "Database av-x: pq: permission denied",
    });
  });
  it("is True only when every object is Ready and none is out of sync", () => {
    const ok = mr([
      { type: "Ready", status: "True", reason: "Available" },
      { type: "Synced", status: "True", reason: "ReconcileSuccess" },
    ]);
    expect(mirror([ok]).status).toBe("True");
    expect(mirror([ok, mr([])])).toMatchObject({ status: "False", reason: "Creating" });
  });
});

describe("hostname domains", () => {
  it("accepts the domain and names below it, never a name that only ends in the same letters", () => {
    expect(withinDomain("apps.home.shdr.ch", "apps.home.shdr.ch")).toBe(true);
    expect(withinDomain("a.apps.home.shdr.ch", "apps.home.shdr.ch")).toBe(true);
    expect(withinDomain("evilapps.home.shdr.ch", "apps.home.shdr.ch")).toBe(false);
  });
});
