import { describe, expect, it } from "vitest";
import { PeerTenant } from "../../crds/peer-tenant.ts";
import {
  desiredGitlabRoleBinding,
  desiredLimitRange,
  desiredNamespace,
  desiredNetworkPolicies,
  desiredOwnerRoleBinding,
  gitlabCiAccess,
  ownerGroupSubjects,
  splitTenantQuota,
  tenantNamespaces,
} from "./desired.ts";

function tenant(name: string, spec: Record<string, unknown> = {}) {
  return PeerTenant.schema.parse({
    apiVersion: "homelab.shdr.ch/v1alpha1",
    kind: "PeerTenant",
    metadata: { name },
    spec: { owners: { users: [name], groups: [`peers-${name}`] }, ...spec },
  });
}

describe("tenantNamespaces", () => {
  it("always starts with peers-<name>, then the additional ones", () => {
    expect(
      tenantNamespaces(tenant("alice", { namespaces: { additional: ["peers-alice-staging"] } })),
    ).toEqual(["peers-alice", "peers-alice-staging"]);
  });
});

describe("desiredNamespace", () => {
  const cases = {
    "restricted by default": { spec: {}, enforce: "restricted" },
    "baseline when asked": { spec: { podSecurity: "baseline" }, enforce: "baseline" },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const labels = desiredNamespace(tenant("alice", c.spec), "peers-alice").metadata.labels as Record<
        string,
        string
      >;
      expect(labels["pod-security.kubernetes.io/enforce"]).toBe(c.enforce);
      // audit and warn stay at restricted so a baseline tenant still sees what restricted would refuse.
      expect(labels["pod-security.kubernetes.io/warn"]).toBe("restricted");
      expect(labels["homelab.shdr.ch/tenant"]).toBe("alice");
      expect(labels.owner).toBe("alice");
    });
  }
});

describe("desiredNetworkPolicies", () => {
  const names = (spec: Record<string, unknown>) =>
    desiredNetworkPolicies(tenant("alice", spec), "peers-alice").map((p) => p.metadata.name);

  it("denies by default and allows the tenant, DNS, listed ingress namespaces and the internet", () => {
    expect(names({})).toEqual([
      "tenant-default-deny",
      "tenant-allow-same-tenant",
      "tenant-allow-dns",
      "tenant-allow-ingress",
      "tenant-allow-egress",
    ]);
  });
  it("has no egress policy when nothing outside the tenant is allowed", () => {
    expect(names({ network: { allowIngressFromNamespaces: [], egress: { internet: false } } })).toEqual([
      "tenant-default-deny",
      "tenant-allow-same-tenant",
      "tenant-allow-dns",
    ]);
  });
  it("selects namespaces by kubernetes.io/metadata.name, which tenants cannot forge", () => {
    const ingress = desiredNetworkPolicies(
      tenant("alice", { network: { allowIngressFromNamespaces: ["ingress", "knative-serving"] } }),
      "peers-alice",
    ).find((p) => p.metadata.name === "tenant-allow-ingress");
    expect(JSON.stringify(ingress)).toContain(
      '"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["ingress","knative-serving"]}]',
    );
  });
  it("keeps private ranges out of internet egress but allows listed CIDRs", () => {
    const egress = desiredNetworkPolicies(
      tenant("alice", { network: { egress: { internet: true, cidrs: ["10.0.2.0/24"] } } }),
      "peers-alice",
    ).find((p) => p.metadata.name === "tenant-allow-egress");
    const text = JSON.stringify(egress);
    expect(text).toContain('"cidr":"0.0.0.0/0","except":["10.0.0.0/8"');
    expect(text).toContain('{"ipBlock":{"cidr":"10.0.2.0/24"}}');
  });
});

describe("owner access", () => {
  it("binds users and both forms of each Keycloak group to the admin role", () => {
    const rb = desiredOwnerRoleBinding(tenant("alice"), "peers-alice") as unknown as {
      roleRef: { name: string };
      subjects: { kind: string; name: string }[];
    };
    expect(rb.roleRef.name).toBe("admin");
    expect(rb.subjects.map((s) => `${s.kind}:${s.name}`)).toEqual([
      "User:alice",
      "Group:/peers-alice",
      "Group:peers-alice",
    ]);
  });
  it("accepts a group given with a leading slash", () => {
    expect(ownerGroupSubjects(["/peers-bob"])).toEqual(["/peers-bob", "peers-bob"]);
  });
  it("binds the GitLab CI job group only when the group id is known", () => {
    expect(
      desiredGitlabRoleBinding(tenant("alice", { gitlab: { groupPath: "peers/alice" } }), "peers-alice"),
    ).toBeUndefined();
    const rb = desiredGitlabRoleBinding(
      tenant("alice", { gitlab: { groupPath: "peers/alice", groupID: 42 } }),
      "peers-alice",
    ) as unknown as { subjects: { name: string }[]; roleRef: { name: string } };
    expect(rb.subjects[0]!.name).toBe("gitlab:group:42");
    expect(rb.roleRef.name).toBe("edit");
  });
});

describe("desiredLimitRange", () => {
  it("is absent without limits and carries defaults when given", () => {
    expect(desiredLimitRange(tenant("alice"), "peers-alice")).toBeUndefined();
    const lr = desiredLimitRange(
      tenant("alice", { limits: { defaultRequest: { memory: "128Mi" }, default: { memory: "512Mi" } } }),
      "peers-alice",
    ) as unknown as { spec: { limits: Record<string, unknown>[] } };
    expect(lr.spec.limits[0]).toEqual({
      type: "Container",
      default: { memory: "512Mi" },
      defaultRequest: { memory: "128Mi" },
    });
  });
});

describe("gitlabCiAccess", () => {
  it("lists every tenant with a GitLab group, sorted, with its primary namespace", () => {
    const doc = gitlabCiAccess([
      tenant("bob", { gitlab: { groupPath: "peers/bob" } }),
      tenant("carol"),
      tenant("alice", { gitlab: { groupPath: "peers/alice", groupID: 42 } }),
    ]);
    expect(doc.ci_access.groups).toEqual([
      { id: "peers/alice", default_namespace: "peers-alice", access_as: { ci_job: {} } },
      { id: "peers/bob", default_namespace: "peers-bob", access_as: { ci_job: {} } },
    ]);
  });
});

describe("splitTenantQuota", () => {
  const ns = ["peers-alice", "peers-alice-staging"];
  const cases: Record<
    string,
    {
      per: Record<string, string>;
      total?: Record<string, string>;
      used: Record<string, Record<string, string>>;
      want: Record<string, Record<string, string>>;
    }
  > = {
    "no total: each namespace gets the per-namespace quota": {
      per: { "requests.memory": "4Gi", pods: "20" },
      used: {},
      want: {
        "peers-alice": { "requests.memory": "4Gi", pods: "20" },
        "peers-alice-staging": { "requests.memory": "4Gi", pods: "20" },
      },
    },
    "idle tenant: the total is split evenly": {
      per: { "requests.memory": "4Gi" },
      total: { "requests.memory": "6Gi" },
      used: {},
      want: {
        "peers-alice": { "requests.memory": "3Gi" },
        "peers-alice-staging": { "requests.memory": "3Gi" },
      },
    },
    "usage keeps what it uses and shares what is left": {
      per: { "requests.memory": "4Gi" },
      total: { "requests.memory": "6Gi" },
      used: { "peers-alice": { "requests.memory": "3Gi" } },
      want: {
        "peers-alice": { "requests.memory": "4Gi" }, // 3Gi + 1.5Gi, capped by the per-namespace 4Gi
        "peers-alice-staging": { "requests.memory": "1536Mi" },
      },
    },
    "over the total: nothing more for anyone": {
      per: {},
      total: { pods: "4" },
      used: { "peers-alice": { pods: "3" }, "peers-alice-staging": { pods: "2" } },
      want: { "peers-alice": { pods: "3" }, "peers-alice-staging": { pods: "2" } },
    },
    "an odd remainder goes to the first namespace": {
      per: {},
      total: { pods: "5" },
      used: {},
      want: { "peers-alice": { pods: "3" }, "peers-alice-staging": { pods: "2" } },
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(splitTenantQuota(ns, c.per, c.total, c.used)).toEqual(c.want));
  }
});
