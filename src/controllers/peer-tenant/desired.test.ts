import { describe, expect, it } from "vitest";
import { PeerTenant } from "../../crds/peer-tenant.ts";
import { DEFAULT_TENANT_DEFAULTS } from "./defaults.ts";
import {
  apiserverUsernamePrefix,
  desiredCiliumClusterwidePolicy,
  desiredGitlabRoleBinding,
  desiredLimitRange,
  desiredNamespace,
  desiredNetworkPolicies,
  desiredOwnerRoleBinding,
  effectivePerNamespace,
  gitlabCiAccess,
  ownerGroupSubjects,
  ownerSubjects,
  quotaDemand,
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
  const lr = (spec: Record<string, unknown>) =>
    desiredLimitRange(tenant("alice", spec), "peers-alice", DEFAULT_TENANT_DEFAULTS) as unknown as {
      spec: { limits: Record<string, unknown>[] };
    };
  it("fills container defaults and bounds PVC size from the operator's defaults", () => {
    expect(lr({}).spec.limits).toEqual([
      {
        type: "Container",
        default: { cpu: "500m", memory: "512Mi" },
        defaultRequest: { cpu: "100m", memory: "128Mi" },
      },
      { type: "PersistentVolumeClaim", max: { storage: "20Gi" } },
    ]);
  });
  it("writes out what the API server would default (a missing default takes max)", () => {
    const limits = lr({
      limits: { default: { memory: "512Mi" }, max: { memory: "1Gi", cpu: "2" }, maxVolumeSize: "5Gi" },
    }).spec.limits;
    expect(limits[0]).toEqual({
      type: "Container",
      default: { memory: "512Mi", cpu: "2" },
      // The spec names no defaultRequest: the operator's, which the API server then keeps as written.
      defaultRequest: { cpu: "100m", memory: "128Mi" },
      max: { memory: "1Gi", cpu: "2" },
    });
    expect(limits[1]).toEqual({ type: "PersistentVolumeClaim", max: { storage: "5Gi" } });
  });
});

describe("effectivePerNamespace", () => {
  it("fills every resource the spec leaves out from the operator's defaults", () => {
    const per = effectivePerNamespace(
      tenant("alice", { quota: { perNamespace: { "requests.memory": "4Gi" } } }),
      DEFAULT_TENANT_DEFAULTS,
    );
    expect(per["requests.memory"]).toBe("4Gi");
    for (const k of [
      "requests.cpu",
      "requests.storage",
      "persistentvolumeclaims",
      "requests.ephemeral-storage",
      "count/secrets",
      "count/configmaps",
    ]) {
      expect(per[k], k).toBeDefined();
    }
  });
});

describe("desiredCiliumClusterwidePolicy", () => {
  const spec = (extra: Record<string, unknown> = {}) =>
    (
      desiredCiliumClusterwidePolicy(
        tenant("alice", extra),
        ["peers-alice"],
        DEFAULT_TENANT_DEFAULTS,
      ) as unknown as {
        spec: {
          egressDeny: {
            toCIDRSet?: { cidr: string; except?: string[] }[];
            toEntities?: string[];
            toEndpoints?: unknown[];
          }[];
          ingressDeny: { fromEndpoints: { matchExpressions: Record<string, unknown>[] }[] }[];
          enableDefaultDeny: unknown;
        };
      }
    ).spec;
  it("denies every private range except the cluster's own networks and what the spec allows", () => {
    const deny = spec({ network: { egress: { cidrs: ["10.0.2.0/24", "192.168.1.0/24"] } } });
    const sets = deny.egressDeny[0]!.toCIDRSet!;
    expect(sets.find((s) => s.cidr === "10.0.0.0/8")?.except).toEqual([
      "10.0.2.0/24",
      "10.244.0.0/16",
      "10.96.0.0/12",
    ]);
    expect(sets.find((s) => s.cidr === "192.168.0.0/16")?.except).toEqual(["192.168.1.0/24"]);
    expect(sets.find((s) => s.cidr === "172.16.0.0/12")?.except).toBeUndefined();
    expect(deny.egressDeny[1]!.toEntities).toEqual(["host", "remote-node"]);
    // Pods of other namespaces, and everything in kube-system but DNS.
    expect(deny.egressDeny[2]!.toEndpoints).toEqual([
      {
        matchExpressions: [
          { key: "k8s:io.kubernetes.pod.namespace", operator: "Exists" },
          {
            key: "k8s:io.kubernetes.pod.namespace",
            operator: "NotIn",
            values: ["kube-system", "peers-alice"],
          },
        ],
      },
      {
        matchExpressions: [
          { key: "k8s:io.kubernetes.pod.namespace", operator: "In", values: ["kube-system"] },
          { key: "k8s:k8s-app", operator: "NotIn", values: ["kube-dns"] },
        ],
      },
    ]);
    // Deny-only: the namespace's own NetworkPolicies still decide what is allowed.
    expect(deny.enableDefaultDeny).toEqual({ ingress: false, egress: false });
  });
  it("denies ingress from pods of other namespaces, never from identities without a namespace", () => {
    const expr = spec({ network: { allowIngressFromNamespaces: ["knative-serving"] } }).ingressDeny[0]!
      .fromEndpoints[0]!.matchExpressions;
    expect(expr).toEqual([
      { key: "k8s:io.kubernetes.pod.namespace", operator: "Exists" },
      {
        key: "k8s:io.kubernetes.pod.namespace",
        operator: "NotIn",
        values: ["knative-serving", "peers-alice"],
      },
    ]);
  });
});

describe("quotaDemand", () => {
  it("reads what a refused namespace needs from the API server's message", () => {
    expect(
      quotaDemand(
        'pods "big-1" is forbidden: exceeded quota: tenant-quota, requested: limits.memory=4Gi,requests.memory=4Gi, used: limits.memory=0,requests.memory=512Mi, limited: limits.memory=3Gi,requests.memory=3Gi',
        "tenant-quota",
      ),
    ).toEqual({ "limits.memory": "4Gi", "requests.memory": "4608Mi" });
  });
  it("ignores other quotas and other messages", () => {
    expect(
      quotaDemand("exceeded quota: other, requested: pods=1, used: pods=1, limited: pods=1", "tenant-quota"),
    ).toBeUndefined();
    expect(quotaDemand("pods is forbidden: violates PodSecurity", "tenant-quota")).toBeUndefined();
  });
});

describe("ownerSubjects", () => {
  it("prefixes users and groups the way the cluster's authentication names them", () => {
    const names = ownerSubjects(tenant("alice"), {
      usernamePrefix: "oidc:",
      groupsPrefix: "oidc:",
    }).map((s) => `${s.kind}:${s.name}`);
    expect(names).toEqual(["User:oidc:alice", "Group:oidc:/peers-alice", "Group:oidc:peers-alice"]);
  });
  it("follows kube-apiserver's default username prefix: <issuer># unless the claim is email", () => {
    expect(apiserverUsernamePrefix("https://idp.example", "preferred_username")).toBe("https://idp.example#");
    expect(apiserverUsernamePrefix("https://idp.example", "email")).toBe("");
    expect(apiserverUsernamePrefix("https://idp.example", "sub", "-")).toBe("");
    expect(apiserverUsernamePrefix("https://idp.example", "sub", "oidc:")).toBe("oidc:");
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
        // 3Gi + 1.5Gi, capped by the per-namespace 4Gi; what the cap leaves goes to the other namespace.
        "peers-alice": { "requests.memory": "4Gi" },
        "peers-alice-staging": { "requests.memory": "2Gi" },
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
  it("serves the namespace that asked first: a 4Gi pod lands in 6Gi over two idle namespaces", () => {
    const per = { "requests.memory": "4Gi" };
    const total = { "requests.memory": "6Gi" };
    expect(
      splitTenantQuota(ns, per, total, {}, { "peers-alice-staging": { "requests.memory": "4Gi" } }),
    ).toEqual({
      "peers-alice": { "requests.memory": "2Gi" },
      "peers-alice-staging": { "requests.memory": "4Gi" },
    });
    // A demand beyond the namespace's own cap gets the cap, never more.
    expect(
      splitTenantQuota(ns, per, total, {}, { "peers-alice": { "requests.memory": "5Gi" } })["peers-alice"],
    ).toEqual({ "requests.memory": "4Gi" });
  });
  it("never hands out more than the total, whatever the usage, caps and demands", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const three = ["a", "b", "c"];
    for (let i = 0; i < 500; i++) {
      const total = 1 + rand(20);
      const per: Record<string, string> = rand(3) === 0 ? {} : { pods: String(1 + rand(12)) };
      const used = Object.fromEntries(three.map((n) => [n, { pods: String(rand(6)) }]));
      const usedSum = three.reduce((a, n) => a + Number(used[n]!.pods), 0);
      const demands = rand(2) ? { [three[rand(3)]!]: { pods: String(rand(15)) } } : {};
      const split = splitTenantQuota(three, per, { pods: String(total) }, used, demands);
      const sum = three.reduce((a, n) => a + Number(split[n]!.pods), 0);
      // Usage already over the total stays (quota never evicts), but nothing is added on top of it.
      expect(sum, JSON.stringify({ total, per, used, demands, split })).toBeLessThanOrEqual(
        Math.max(total, usedSum),
      );
      for (const n of three) {
        expect(Number(split[n]!.pods)).toBeGreaterThanOrEqual(Number(used[n]!.pods));
      }
    }
  });
});
