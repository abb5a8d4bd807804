// When a part's connection Secret counts as written (src/controllers/app-vending/connection-secret.ts),
// against the real API server: a part whose provider says Ready still waits while its Secret is absent,
// belongs to another object (the previous managed resource's, not yet garbage-collected) or lacks a key
// the app reads — the window in which the real provider-sql reports a re-vended Role Ready.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionSecretWait } from "../../src/controllers/app-vending/connection-secret.ts";
import { KubeClient, type KubeObject, type ReconcileContext } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";

const RUN = Math.random().toString(36).slice(2, 6);
const NS = `vend-secret-${RUN}`;
const CM = { apiVersion: "v1", kind: "ConfigMap" };
const KEYS = ["username", "password", "endpoint", "port"];

let client: KubeClient;
let ctx: ReconcileContext;
// Two objects standing for two managed resources that publish Secrets (any kind has a uid to own by).
let publisher: KubeObject;
let previous: KubeObject;

async function secret(name: string, owner: KubeObject, data: Record<string, string>) {
  await client.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: NS,
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          name: owner.metadata?.name as string,
          uid: owner.metadata?.uid as string,
          controller: true,
        },
      ],
    },
    type: "connection.crossplane.io/v1alpha1",
    stringData: data,
  } as KubeObject);
}

beforeAll(async () => {
  client = new KubeClient(adminKubeConfig());
  ctx = { client } as ReconcileContext;
  await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } as KubeObject);
  publisher = await client.create({ ...CM, metadata: { name: "role-new", namespace: NS } } as KubeObject);
  previous = await client.create({ ...CM, metadata: { name: "role-old", namespace: NS } } as KubeObject);
});

afterAll(async () => {
  await client.delete({ apiVersion: "v1", kind: "Namespace" }, { name: NS }, { ignoreNotFound: true });
});

describe("a part's connection Secret", () => {
  it("is waited for while absent, another object's, or missing a key; complete and its publisher's, it is done", async () => {
    expect((await connectionSecretWait(ctx, publisher, "app-db", KEYS))?.message).toBe(
      "waiting for ConfigMap role-new to write its connection Secret app-db",
    );
    const full = { username: "u", password: "p", endpoint: "db", port: "5432" };
    await secret("app-db", previous, full);
    const stale = await connectionSecretWait(ctx, publisher, "app-db", KEYS);
    expect(stale).toMatchObject({ status: "False", reason: "ConnectionSecretPending" });
    expect(stale?.message).toBe("Secret app-db is not (yet) the one ConfigMap role-new writes");
    await client.delete({ apiVersion: "v1", kind: "Secret" }, { namespace: NS, name: "app-db" });
    // Published empty first, as crossplane-runtime does when the details are not known yet.
    await secret("app-db", publisher, {});
    expect((await connectionSecretWait(ctx, publisher, "app-db", KEYS))?.message).toBe(
      "Secret app-db does not hold username, password, endpoint, port yet",
    );
    await secret("app-db", publisher, { ...full, password: "" });
    expect((await connectionSecretWait(ctx, publisher, "app-db", KEYS))?.message).toBe(
      "Secret app-db does not hold password yet",
    );
    await secret("app-db", publisher, full);
    expect(await connectionSecretWait(ctx, publisher, "app-db", KEYS)).toBeUndefined();
  });
});
