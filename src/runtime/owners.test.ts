import { describe, expect, it } from "vitest";
import type { KubeObject } from "./object.ts";
import { controllerReference, type OwnerMapping, ownerKeys } from "./owners.ts";

const tenant: OwnerMapping = {
  owner: { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" },
  ownerNamespaced: false,
  ownerLabel: "homelab.shdr.ch/tenant",
};
const app: OwnerMapping = {
  owner: { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "AppVending" },
  ownerNamespaced: true,
};

const obj = (meta: KubeObject["metadata"]): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: meta,
});
const ref = (kind: string, name: string, controller = true, apiVersion = "homelab.shdr.ch/v1alpha1") => ({
  apiVersion,
  kind,
  name,
  uid: `uid-${name}`,
  controller,
});

describe("ownerKeys", () => {
  const cases: Record<string, { o: KubeObject; m: OwnerMapping; want: unknown[] }> = {
    "controller ref to a namespaced owner maps to the dependent's namespace": {
      o: obj({ name: "cm", namespace: "team", ownerReferences: [ref("AppVending", "portfolio")] }),
      m: app,
      want: [{ namespace: "team", name: "portfolio" }],
    },
    "a non-controller ref is ignored": {
      o: obj({ name: "cm", namespace: "team", ownerReferences: [ref("AppVending", "portfolio", false)] }),
      m: app,
      want: [],
    },
    "a ref to another kind is ignored": {
      o: obj({ name: "cm", namespace: "team", ownerReferences: [ref("WorkloadMigration", "ups")] }),
      m: app,
      want: [],
    },
    "another version of the same group/kind still matches": {
      o: obj({
        name: "cm",
        namespace: "team",
        ownerReferences: [ref("AppVending", "p", true, "homelab.shdr.ch/v1beta1")],
      }),
      m: app,
      want: [{ namespace: "team", name: "p" }],
    },
    "a cluster-scoped owner has no namespace": {
      o: obj({ name: "ns-quota", namespace: "alice-dev", ownerReferences: [ref("PeerTenant", "alice")] }),
      m: tenant,
      want: [{ name: "alice" }],
    },
    "cross-scope ownership through the owner label": {
      o: obj({ name: "rb", namespace: "alice-dev", labels: { "homelab.shdr.ch/tenant": "alice" } }),
      m: tenant,
      want: [{ name: "alice" }],
    },
    "ref and label naming the same owner give one key": {
      o: obj({
        name: "x",
        labels: { "homelab.shdr.ch/tenant": "bob" },
        ownerReferences: [ref("PeerTenant", "bob")],
      }),
      m: tenant,
      want: [{ name: "bob" }],
    },
    "a namespaced owner named by labels in another namespace": {
      o: obj({ name: "x", namespace: "infra", labels: { owner: "portfolio", "owner-ns": "team" } }),
      m: { ...app, ownerLabel: "owner", ownerNamespaceLabel: "owner-ns" },
      want: [{ namespace: "team", name: "portfolio" }],
    },
    "no refs and no labels map nowhere": { o: obj({ name: "x", namespace: "a" }), m: tenant, want: [] },
  };
  for (const [name, c] of Object.entries(cases)) it(name, () => expect(ownerKeys(c.o, c.m)).toEqual(c.want));
});

describe("controllerReference", () => {
  it("builds a controller ref that blocks owner deletion", () => {
    const owner = {
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "PeerTenant",
      metadata: { name: "alice", uid: "u1" },
    };
    expect(controllerReference(owner)).toEqual({
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "PeerTenant",
      name: "alice",
      uid: "u1",
      controller: true,
      blockOwnerDeletion: true,
    });
  });
  it("refuses an owner without uid (not read from the API)", () => {
    expect(() => controllerReference({ apiVersion: "v1", kind: "X", metadata: { name: "a" } })).toThrow(
      /uid/,
    );
  });
});
