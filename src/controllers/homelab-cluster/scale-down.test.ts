import { describe, expect, it } from "vitest";
import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import { DRAIN_ANNOTATION } from "./drain.ts";
import { sizeDrift } from "./drift.ts";
import { quorum, quorumLostWithOneDown, STALE_MEMBER_ERROR } from "./etcd-members.ts";
import { cancelledDepartures, orderDeparting, taggedNodeName, upgradeHolding } from "./scale-down.ts";

describe("taggedNodeName", () => {
  it("names the node only for this cluster's tags with exactly one node tag", () => {
    expect(taggedNodeName("homelab-operator;homelab-cluster.k8s;homelab-node.talos-a", "k8s")).toBe(
      "talos-a",
    );
    // Another cluster's VM of the same node name, an untagged VM, a VM with two node tags: not ours.
    expect(
      taggedNodeName("homelab-operator;homelab-cluster.other;homelab-node.talos-a", "k8s"),
    ).toBeUndefined();
    expect(taggedNodeName(undefined, "k8s")).toBeUndefined();
    expect(taggedNodeName("homelab-cluster.k8s;homelab-node.a;homelab-node.b", "k8s")).toBeUndefined();
    // A cluster whose name is a prefix of ours is another cluster.
    expect(taggedNodeName("homelab-cluster.k8s-2;homelab-node.talos-a", "k8s")).toBeUndefined();
  });
});

describe("orderDeparting", () => {
  it("takes nodes without an etcd member first, then members, each by name", () => {
    const order = orderDeparting([
      { name: "cp-b", memberId: "2", kubernetesNode: true },
      { name: "worker-z", kubernetesNode: true },
      { name: "cp-a", memberId: "1", kubernetesNode: true },
      { name: "worker-a", kubernetesNode: false },
    ]).map((n) => n.name);
    expect(order).toEqual(["worker-a", "worker-z", "cp-a", "cp-b"]);
  });
});

describe("upgradeHolding", () => {
  it("holds a scale-down back while a step names a node, draining or upgrading, and only then", () => {
    expect(upgradeHolding(undefined)).toBeUndefined();
    // Between nodes the step is kept without a node: nothing is going down.
    expect(upgradeHolding({ version: "v1.13.1" })).toBeUndefined();
    expect(upgradeHolding({ node: "cp1", stage: "Upgrading", version: "v1.13.1" })).toBe(
      "cp1 is being upgraded for Talos v1.13.1",
    );
    expect(upgradeHolding({ node: "w1", stage: "Draining", version: "v1.13.1" })).toMatch(/w1 is draining/);
  });
});

describe("cancelledDepartures", () => {
  const node = (name: string, marked: boolean) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, ...(marked ? { annotations: { [DRAIN_ANNOTATION]: "2026-12-01T20:00:00Z" } } : {}) },
    spec: { unschedulable: true },
  });
  it("gives back only nodes in the spec that carry the scale-down mark, not the one being upgraded", () => {
    const nodes = [node("w1", true), node("w2", false), node("gone", true), node("cp1", true)];
    // w2 is cordoned by someone else (no mark): left alone. gone is still departing.
    expect(cancelledDepartures(nodes, new Set(["w1", "w2", "cp1"]), undefined)).toEqual(["w1", "cp1"]);
    expect(cancelledDepartures(nodes, new Set(["w1", "w2", "cp1"]), "cp1")).toEqual(["w1"]);
  });
});

describe("quorum", () => {
  it("is etcd's majority", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorum)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });
});

describe("quorumLostWithOneDown", () => {
  it("lets a control plane go down only when the healthy members left still make a quorum", () => {
    expect(quorumLostWithOneDown(3, 3)).toBeUndefined();
    expect(quorumLostWithOneDown(5, 4)).toBeUndefined();
    // Two members: either one down is 1 of 2, no quorum. Three with one already sick: the same.
    expect(quorumLostWithOneDown(2, 2)).toMatch(/1 would be left, fewer than the 2/);
    expect(quorumLostWithOneDown(3, 2)).toMatch(/1 would be left, fewer than the 2/);
    // A departing node's member counts toward the quorum but not as healthy: 4 members, 3 healthy.
    expect(quorumLostWithOneDown(4, 3)).toMatch(/fewer than the 3/);
    expect(quorumLostWithOneDown(1, 1)).toMatch(/single member.*outage/);
  });
});

describe("STALE_MEMBER_ERROR", () => {
  it("matches etcd's ErrPeerURLExist and nothing a booting etcd says", () => {
    expect(STALE_MEMBER_ERROR.test("etcdserver: Peer URLs already exists")).toBe(true);
    expect(STALE_MEMBER_ERROR.test("waiting for etcd bootstrap")).toBe(false);
    expect(STALE_MEMBER_ERROR.test("joining etcd")).toBe(false);
  });
});

describe("sizeDrift", () => {
  const node = { memoryMiB: 16384, cores: 8 } as HomelabClusterNode;
  it("reports memory and cores that differ from the spec", () => {
    expect(sizeDrift({ maxmem: 16384 * 2 ** 20, maxcpu: 8 }, node)).toEqual({});
    expect(sizeDrift({ maxmem: 8192 * 2 ** 20, maxcpu: 4 }, node)).toEqual({
      memoryMiB: { actual: 8192, spec: 16384 },
      cores: { actual: 4, spec: 8 },
    });
  });
  it("says nothing about a size the VM list does not report", () => {
    expect(sizeDrift({}, node)).toEqual({});
  });
});
