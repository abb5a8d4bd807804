import { describe, expect, it } from "vitest";
import { StringTable } from "./intern.ts";

// Whether two equal strings are one heap object is not observable from JS: sharing is checked through
// what the table holds.
const parsed = (name: string) =>
  JSON.parse(
    JSON.stringify({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name,
        namespace: "tenant-a",
        uid: `uid-${name}`,
        resourceVersion: `rv-${name}`,
        creationTimestamp: "2026-12-01T00:00:00Z",
        labels: { "app.kubernetes.io/managed-by": "homelab-operator", "homelab.shdr.ch/tenant": "a" },
        ownerReferences: [
          { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant", name: "a", uid: "u1" },
        ],
      },
      spec: { policyTypes: ["Ingress"], ingress: [{ from: [{ namespaceSelector: {} }] }] },
    }),
  );

describe("StringTable", () => {
  it("leaves objects equal to what they were", () => {
    const table = new StringTable();
    const a = parsed("p1");
    expect(table.internObject(structuredClone(a))).toEqual(a);
  });

  it("keeps one entry per repeated value and none for per-object unique metadata", () => {
    const table = new StringTable();
    table.internObject(parsed("p1"));
    const after1 = table.size;
    for (let i = 2; i <= 50; i++) table.internObject(parsed(`p${i}`));
    // 49 more policies add nothing: names, uids, resourceVersions and timestamps are not interned.
    expect(table.size).toBe(after1);
    expect(after1).toBeGreaterThan(5);
  });

  it("stops adding at its capacity and keeps working", () => {
    const table = new StringTable(3);
    for (const s of ["a1", "b1", "c1", "d1", "e1"]) expect(table.intern(s)).toBe(s);
    expect(table.size).toBe(3);
  });
});
