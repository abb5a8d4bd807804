import { describe, expect, it } from "vitest";
import { PeerTenant } from "../../crds/peer-tenant.ts";
import { networkInside } from "./cidr.ts";
import { enforcementFrom } from "./enforcement.ts";
import { tenantBindingsToRemove } from "./release.ts";

const alice = PeerTenant.schema.parse({
  apiVersion: "homelab.shdr.ch/v1alpha1",
  kind: "PeerTenant",
  metadata: { name: "alice" },
  spec: {
    owners: { users: ["alice"], groups: ["peers-alice"] },
    gitlab: { groupPath: "peers/alice", groupID: 42 },
  },
});

function rb(name: string, ...subjects: { kind: string; name: string; namespace?: string }[]) {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name }, subjects };
}

describe("tenantBindingsToRemove", () => {
  it("finds every binding that gives the tenant access, whoever made it", () => {
    const bindings = [
      rb("tenant-owners", { kind: "User", name: "oidc:alice" }),
      rb("made-by-alice", { kind: "User", name: "alice" }),
      rb("her-group", { kind: "Group", name: "/peers-alice" }),
      rb("ci", { kind: "Group", name: "gitlab:group:42" }),
      rb("robot", { kind: "ServiceAccount", name: "default", namespace: "peers-alice" }),
      rb("all-robots", { kind: "Group", name: "system:serviceaccounts:peers-alice" }),
      rb("everyone", { kind: "Group", name: "system:authenticated" }),
      rb("anonymous", { kind: "User", name: "system:anonymous" }),
      rb("carol", { kind: "User", name: "carol" }),
      rb("foreign-robot", { kind: "ServiceAccount", name: "x", namespace: "elsewhere" }),
    ];
    expect(
      tenantBindingsToRemove(
        bindings,
        alice,
        { usernamePrefix: "oidc:", groupsPrefix: "oidc:" },
        "peers-alice",
      ),
    ).toEqual([
      "tenant-owners",
      "made-by-alice",
      "her-group",
      "ci",
      "robot",
      "all-robots",
      "everyone",
      "anonymous",
    ]);
  });
});

describe("enforcementFrom", () => {
  const ds = (name: string, numberReady: number) => ({ metadata: { name }, status: { numberReady } });
  it("names a ready CNI that implements NetworkPolicy", () => {
    expect(enforcementFrom([ds("kube-proxy", 3), ds("cilium", 3)]).by).toBe("Cilium");
  });
  it("finds none for a CNI without policy support, or one that is not ready", () => {
    expect(enforcementFrom([ds("kube-flannel-ds", 3), ds("calico-node", 0)]).by).toBeUndefined();
  });
});

describe("networkInside", () => {
  it("tells subnets from neighbours", () => {
    expect(networkInside("10.0.0.0/8", "10.0.2.0/24")).toBe(true);
    expect(networkInside("10.0.0.0/8", "10.0.0.0/8")).toBe(true);
    expect(networkInside("10.0.0.0/8", "11.0.0.0/24")).toBe(false);
    expect(networkInside("10.0.2.0/24", "10.0.0.0/8")).toBe(false);
    expect(networkInside("172.16.0.0/12", "172.31.255.0/24")).toBe(true);
    expect(networkInside("172.16.0.0/12", "172.32.0.0/24")).toBe(false);
  });
});
