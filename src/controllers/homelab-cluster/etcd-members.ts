// etcd as the scaling steps see it, always from live reads: the member list through a control plane that
// stays, and each member's etcd service health from its own Talos API. Nothing here is remembered
// between reconciles, so a decision is never made on a membership that has changed since.
import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import { TalosApiError } from "../../talos/client/errors.ts";
import type { EtcdMember } from "../../talos/client/talos-client.ts";
import { controlPlanes } from "./names.ts";
import type { Scope } from "./scope.ts";
import { adminClient, withClient } from "./talos.ts";

/** Members an etcd cluster of `members` needs up to commit anything (etcd's majority). */
export function quorum(members: number): number {
  return Math.floor(members / 2) + 1;
}

/**
 * Why taking one more healthy member down (a control plane's upgrade reboots it) would cost etcd its
 * quorum, or undefined when the healthy members left still make one. A single member can never go down
 * without an outage, two members lose quorum with either down (2 − 1 < 2), three survive one.
 */
export function quorumLostWithOneDown(members: number, healthy: number): string | undefined {
  if (healthy - 1 >= quorum(members)) return undefined;
  if (members === 1)
    return "etcd has a single member: upgrading its only control plane takes etcd and the Kubernetes API down (an outage; no opt-in exists for that). Add control planes (three keep quorum through an upgrade) or upgrade this node by hand with talosctl";
  return `etcd has ${healthy} healthy of ${members} member(s); with one more down ${healthy - 1} would be left, fewer than the ${quorum(members)} a quorum of ${members} needs`;
}

/** etcd's ErrMemberRemoved: this node's member was removed, and etcd never takes it back with its data. */
export const REMOVED_MEMBER_ERROR = /member has been permanently removed from the cluster/;

/**
 * What a control plane without an etcd member says about it when its member was removed (it will not
 * get one by waiting), else undefined (it may still be joining, or not answer). Read from the node's
 * own etcd service, the same live signal the stale-member case uses; read only for a node without a
 * member, so the steady state costs nothing.
 */
export async function removedMemberMessage(
  scope: Scope,
  cp: HomelabClusterNode,
): Promise<string | undefined> {
  const services = await withClient(adminClient(scope, cp.ip), (c) => c.serviceList()).catch(
    (err: unknown) => {
      if (err instanceof TalosApiError) return [];
      throw err;
    },
  );
  const said = services.find((s) => s.id === "etcd")?.lastMessage ?? "";
  return REMOVED_MEMBER_ERROR.test(said) ? said : undefined;
}

/** etcd's ErrPeerURLExist: a node with an empty data directory finds a member with its peer URL. */
export const STALE_MEMBER_ERROR = /Peer URLs already exists/;

export function memberHex(member: EtcdMember): string {
  return BigInt(member.id).toString(16);
}

/**
 * The member list, read through the first control plane of the spec (never one named in `except`, the
 * node being taken out) that answers. Throws the last Talos error when none does.
 */
export async function liveMembers(
  scope: Scope,
  except: readonly string[] = [],
): Promise<{ through: HomelabClusterNode; members: EtcdMember[] }> {
  let last: unknown = new Error("no control plane to read the etcd members through");
  for (const cp of controlPlanes(scope.spec)) {
    if (except.includes(cp.name)) continue;
    try {
      const members = await withClient(adminClient(scope, cp.ip), (c) => c.etcdMemberList());
      return { through: cp, members };
    } catch (err) {
      if (!(err instanceof TalosApiError)) throw err;
      last = err;
    }
  }
  throw last;
}

/** Why each of `nodes` does not run a healthy etcd (empty: all do), from its Talos service list. */
export async function unhealthyEtcd(
  scope: Scope,
  nodes: readonly HomelabClusterNode[],
): Promise<Map<string, string>> {
  const sick = new Map<string, string>();
  for (const node of nodes) {
    try {
      const services = await withClient(adminClient(scope, node.ip), (c) => c.serviceList());
      const etcd = services.find((s) => s.id === "etcd");
      if (!etcd) sick.set(node.name, "no etcd service");
      else if (etcd.state !== "Running" || !etcd.healthy)
        sick.set(node.name, `etcd ${etcd.state}${etcd.lastMessage ? ` (${etcd.lastMessage})` : ""}`);
    } catch (err) {
      if (!(err instanceof TalosApiError)) throw err;
      sick.set(node.name, `Talos API not answering (${err.kind})`);
    }
  }
  return sick;
}

export function describeSick(sick: Map<string, string>): string {
  return [...sick].map(([name, why]) => `${name}: ${why}`).join("; ");
}
