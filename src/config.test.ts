import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";

describe("loadConfig: PeerTenant settings", () => {
  it("binds owners without prefixes and does not watch Cilium unless told", () => {
    const c = loadConfig({ HOMELAB_LOCAL: "true" });
    expect(c.peerTenantOwnerNaming).toEqual({ usernamePrefix: "", groupsPrefix: "" });
    expect(c.peerTenantWatchCilium).toBe(false);
  });
  it("takes the cluster's OIDC prefixes and the Cilium watch from the environment", () => {
    const c = loadConfig({
      HOMELAB_LOCAL: "true",
      PEER_TENANT_USERNAME_PREFIX: "oidc:",
      PEER_TENANT_GROUPS_PREFIX: "oidc:",
      PEER_TENANT_WATCH_CILIUM: "true",
    });
    expect(c.peerTenantOwnerNaming).toEqual({ usernamePrefix: "oidc:", groupsPrefix: "oidc:" });
    expect(c.peerTenantWatchCilium).toBe(true);
  });
});
