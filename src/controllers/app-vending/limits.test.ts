import { describe, expect, it } from "vitest";
import { overLimit } from "./limits.ts";

const vending = { maxApps: 1, maxBuckets: 2, maxDatabases: 1, maxOIDCClients: 0, allowedDomains: [] };

const at = (namespace: string, name: string, created: string, spec: Record<string, unknown>) => ({
  namespace,
  name,
  created,
  spec,
});

describe("vending limits re-checked in reconcile", () => {
  // Over two of the tenant's namespaces, created in this order.
  const all = [
    at("peers-a-staging", "third", "2026-01-01T00:00:03Z", { bucket: {}, database: {} }),
    at("peers-a", "first", "2026-01-01T00:00:01Z", { app: {}, bucket: {}, database: {} }),
    at("peers-a", "second", "2026-01-01T00:00:02Z", { app: {}, bucket: {}, oidcClient: {} }),
    at("peers-a", "fourth", "2026-01-01T00:00:04Z", { bucket: {} }),
  ];

  it("counts every part across the tenant's namespaces; the oldest keep theirs, the newest wait", () => {
    expect([...overLimit({ namespace: "peers-a", name: "first" }, all, vending).keys()]).toEqual([]);
    // second: the app is the second app (max 1), its OIDC client is over a limit of 0.
    expect([...overLimit({ namespace: "peers-a", name: "second" }, all, vending).keys()]).toEqual([
      "App",
      "OIDCClient",
    ]);
    // third, in another namespace: its bucket is the third (max 2), its database the second (max 1).
    const third = overLimit({ namespace: "peers-a-staging", name: "third" }, all, vending);
    expect([...third.keys()]).toEqual(["Bucket", "Database"]);
    expect(third.get("Database")).toBe(
      "the tenant's limit maxDatabases is 1 and 1 older AppVending(s) already use it",
    );
    expect([...overLimit({ namespace: "peers-a", name: "fourth" }, all, vending).keys()]).toEqual(["Bucket"]);
  });

  it("breaks a tie in the same second by namespace and name, so every reconcile picks the same one", () => {
    const tied = [
      at("peers-a", "b", "2026-01-01T00:00:01Z", { database: {} }),
      at("peers-a", "a", "2026-01-01T00:00:01Z", { database: {} }),
    ];
    expect(overLimit({ namespace: "peers-a", name: "a" }, tied, vending).size).toBe(0);
    expect([...overLimit({ namespace: "peers-a", name: "b" }, tied, vending).keys()]).toEqual(["Database"]);
    expect([...overLimit({ namespace: "peers-a", name: "b" }, [...tied].reverse(), vending).keys()]).toEqual([
      "Database",
    ]);
  });
});
