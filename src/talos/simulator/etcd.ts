// The simulated etcd cluster of one Talos cluster (keyed by the config's cluster.id): formed by
// Bootstrap on one control plane, joined by the others when they run with a config, left or removed.

import { randomBytes } from "node:crypto";
import { status as Status } from "@grpc/grpc-js";
import { SimStatusError } from "./errors.ts";

export interface EtcdMemberState {
  /** uint64 as decimal string */
  id: string;
  nodeName: string;
  hostname: string;
  ip: string;
  isLearner: boolean;
}

/** One Bootstrap call this cluster's etcd answered: who asked, when, and whether it formed the cluster. */
export interface BootstrapRecord {
  nodeName: string;
  at: number;
  accepted: boolean;
}

/** One moment of the membership, recorded at every change (tests read quorum over time from it). */
export interface EtcdRecord {
  at: number;
  /** What happened: "bootstrap talos-a", "join talos-b", "remove talos-c", "talos-a down", ... */
  event: string;
  /** Hostnames of the members, sorted. */
  members: string[];
  /** Members whose machine runs etcd as that member at this moment (up, and its etcd not stopped). */
  running: string[];
}

export class SimulatedEtcd {
  bootstrapped = false;
  /** Every Bootstrap call, refused ones included, kept with the state: what crash tests count. */
  readonly bootstraps: BootstrapRecord[] = [];
  readonly members = new Map<string, EtcdMemberState>();
  leaderId: string | null = null;
  readonly unhealthy = new Set<string>(); // node names
  /** Every membership change and every member machine's power change, in order. */
  readonly history: EtcdRecord[] = [];
  private readonly runsEtcd: (nodeName: string) => boolean;

  /** `runsEtcd`: whether a member's machine is up with its etcd running (for the history). */
  constructor(runsEtcd: (nodeName: string) => boolean = () => true) {
    this.runsEtcd = runsEtcd;
  }

  record(event: string): void {
    const members = [...this.members.values()];
    this.history.push({
      at: Date.now(),
      event,
      members: members.map((m) => m.hostname).sort(),
      running: members
        .filter((m) => this.runsEtcd(m.nodeName))
        .map((m) => m.hostname)
        .sort(),
    });
  }

  private newId(): string {
    // Non-zero uint64 with the top bit set, like etcd's member ids that overflow int64 (exercises uint64).
    return (BigInt(`0x${randomBytes(8).toString("hex")}`) | (1n << 63n)).toString();
  }

  memberOf(nodeName: string): EtcdMemberState | undefined {
    for (const m of this.members.values()) if (m.nodeName === nodeName) return m;
    return undefined;
  }

  bootstrap(nodeName: string, hostname: string, ip: string): EtcdMemberState {
    if (this.bootstrapped || this.memberOf(nodeName)) {
      this.bootstraps.push({ nodeName, at: Date.now(), accepted: false });
      // Talos: AlreadyExists "etcd data directory is not empty" (v1alpha1_server.go Bootstrap).
      throw new SimStatusError(Status.ALREADY_EXISTS, "etcd data directory is not empty");
    }
    this.bootstraps.push({ nodeName, at: Date.now(), accepted: true });
    this.bootstrapped = true;
    const m = this.add(nodeName, hostname, ip);
    this.leaderId = m.id;
    this.record(`bootstrap ${hostname}`);
    return m;
  }

  join(nodeName: string, hostname: string, ip: string): EtcdMemberState | undefined {
    if (!this.bootstrapped) return undefined;
    const existing = this.memberOf(nodeName);
    if (existing) return existing;
    const m = this.add(nodeName, hostname, ip);
    this.record(`join ${hostname}`);
    return m;
  }

  private add(nodeName: string, hostname: string, ip: string): EtcdMemberState {
    const m: EtcdMemberState = { id: this.newId(), nodeName, hostname, ip, isLearner: false };
    this.members.set(m.id, m);
    return m;
  }

  removeById(id: string): EtcdMemberState {
    const member = this.members.get(id);
    if (!member) throw new SimStatusError(Status.NOT_FOUND, `member ${BigInt(id).toString(16)} not found`);
    this.members.delete(id);
    if (this.leaderId === id) this.leaderId = this.members.keys().next().value ?? null;
    this.record(`remove ${member.hostname}`);
    return member;
  }

  leave(nodeName: string): void {
    const m = this.memberOf(nodeName);
    if (!m)
      throw new SimStatusError(Status.FAILED_PRECONDITION, "etcd member not found: node is not a member");
    if (this.members.size === 1) {
      throw new SimStatusError(Status.FAILED_PRECONDITION, "cannot leave: this is the last etcd member");
    }
    this.removeById(m.id);
  }

  /** Moves leadership away from nodeName; returns the leader's hostname afterwards. */
  forfeit(nodeName: string): string {
    const me = this.memberOf(nodeName);
    if (me && this.leaderId === me.id) {
      const next = [...this.members.values()].find((m) => m.id !== me.id && !this.unhealthy.has(m.nodeName));
      if (next) this.leaderId = next.id;
    }
    return this.leaderId ? (this.members.get(this.leaderId)?.hostname ?? "") : "";
  }

  /**
   * Talos refuses a control-plane upgrade without force unless every member is started and healthy
   * (ValidateForUpgrade): a member whose machine is down or rebooting counts as not healthy.
   */
  assertHealthyForUpgrade(running: (nodeName: string) => boolean = () => true): void {
    for (const m of this.members.values()) {
      if (this.unhealthy.has(m.nodeName) || !running(m.nodeName)) {
        throw new SimStatusError(
          Status.FAILED_PRECONDITION,
          `etcd member ${m.hostname} is not healthy; all members must be healthy to perform an upgrade`,
        );
      }
    }
  }

  /** Members that are started and healthy right now. */
  healthyMembers(running: (nodeName: string) => boolean): number {
    let n = 0;
    for (const m of this.members.values()) if (!this.unhealthy.has(m.nodeName) && running(m.nodeName)) n++;
    return n;
  }
}
