// Phase TalosUpToDate: a rolling Talos upgrade (a new talos.version or schematic), one node at a time.
// For each node in a stable order, and only while every etcd member is healthy: cordon and drain it
// (Eviction API, so PodDisruptionBudgets hold; a drain that takes longer than healthTimeout pauses, it
// is never forced), forfeit etcd leadership, request the upgrade to the nocloud installer image, wait
// for the node back on the new version with etcd healthy and its Node Ready, uncordon. Progress lives
// in status.upgrade.talos, written before the upgrade request leaves, and every decision is taken from
// what the node reports (its version and boot time), so a restarted operator resumes and never sends a
// node a second upgrade to the version it already runs.
import type { KubeObject } from "../../runtime/index.ts";
import { TalosApiError } from "../../talos/client/errors.ts";
import { installerImage } from "../../talos/config/machine-config.ts";
import { parseDuration } from "../workload-migration/duration.ts";
import { drainPass, setUnschedulable } from "./drain.ts";
import { quorumLostWithOneDown } from "./etcd-members.ts";
import { controlPlanes } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, nodeStatus, type Scope } from "./scope.ts";
import { adminClient, withClient } from "./talos.ts";
import { lowestVersion, talosPath, upgradeOrder } from "./upgrade-plan.ts";
import { setUpgradePart } from "./upgrade-status.ts";

type Rollout = NonNullable<NonNullable<Scope["previous"]["upgrade"]>["talos"]>;
type SpecNode = Scope["spec"]["nodes"][number];

/** The node whose upgrade was requested and is not confirmed back: health checks must not go through it. */
export function nodeBeingUpgraded(scope: Scope): string | undefined {
  const r = scope.previous.upgrade?.talos;
  return r?.stage === "Upgrading" ? r.node : undefined;
}

/** The control plane the cluster's health is read through: the first in spec order not being upgraded. */
export function healthCheckNode(scope: Scope): SpecNode {
  const busy = nodeBeingUpgraded(scope);
  const cps = controlPlanes(scope.spec);
  return cps.find((n) => n.name !== busy) ?? cps[0]!;
}

function imageFor(scope: Scope, version: string): string {
  const { schematic, imageFactory } = scope.spec.talos;
  return installerImage({ schematic, imageFactory, talosVersion: version });
}

function setRollout(scope: Scope, rollout: Rollout | undefined): void {
  setUpgradePart(scope, "talos", rollout);
}

async function factoryVersions(scope: Scope): Promise<string[]> {
  const url = `${scope.spec.talos.imageFactory.replace(/\/+$/, "")}/versions`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  const list = (await res.json()) as unknown;
  if (!Array.isArray(list)) throw new Error(`GET ${url}: not a list of versions`);
  return list.filter((v): v is string => typeof v === "string");
}

interface LiveNode {
  reachable: boolean;
  version?: string;
  /** When machined's events begin: the node's last boot. */
  bootedAt?: Date;
  why?: string;
}

async function readNode(scope: Scope, node: SpecNode): Promise<LiveNode> {
  try {
    return await withClient(adminClient(scope, node.ip), async (c) => {
      const v = await c.version();
      const machined = (await c.serviceList()).find((s) => s.id === "machined");
      return { reachable: true, version: v.tag, bootedAt: machined?.since };
    });
  } catch (err) {
    if (!(err instanceof TalosApiError)) throw err;
    return { reachable: false, why: `Talos API at ${node.ip} ${err.kind}` };
  }
}

interface EtcdHealth {
  /** What is wrong: a control plane's etcd not healthy (or not answering), a control plane without a member. */
  problems: string[];
  /** Members etcd lists (a departing node's member still counts toward the quorum). */
  members: number;
  /** Members of control planes in the spec whose etcd service is healthy. */
  healthy: number;
}

/**
 * etcd as an upgrade sees it: every control plane's etcd service healthy and a member per control plane.
 * A member of a node no longer in the spec (a scale-down under way) is not a problem, but only counts as
 * a member, never as a healthy one.
 */
async function etcdHealth(scope: Scope): Promise<EtcdHealth> {
  const cps = controlPlanes(scope.spec);
  const problems: string[] = [];
  const healthyCps = new Set<string>();
  for (const cp of cps) {
    try {
      const bad = await withClient(adminClient(scope, cp.ip), (c) => c.unhealthyServices(["etcd"]));
      if (bad.length) problems.push(`etcd on ${cp.name} is not healthy`);
      else healthyCps.add(cp.name);
    } catch (err) {
      if (!(err instanceof TalosApiError)) throw err;
      problems.push(`${cp.name}: Talos API ${err.kind}`);
    }
  }
  const through = cps.find((cp) => healthyCps.has(cp.name));
  if (!through) return { problems, members: 0, healthy: 0 };
  const members = await withClient(adminClient(scope, through.ip), (c) => c.etcdMemberList());
  const names = new Set(members.map((m) => m.hostname));
  const missing = cps.filter((cp) => !names.has(cp.name)).map((cp) => cp.name);
  if (missing.length)
    problems.push(
      `etcd has ${members.length} member(s) for ${cps.length} control plane(s); no member for ${missing.join(", ")}`,
    );
  const healthy = [...healthyCps].filter((n) => names.has(n)).length;
  return { problems, members: members.length, healthy };
}

async function etcdProblems(scope: Scope): Promise<string[]> {
  return (await etcdHealth(scope)).problems;
}

type K8sNode = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };

/**
 * Nodes that are not Ready. A cluster where no Node is Ready has no CNI yet (Talos' nodes stay NotReady
 * without one), so readiness says nothing there and is not waited for; registration still is.
 */
async function notReadyNodes(scope: Scope): Promise<{ notReady: string[]; readinessMatters: boolean }> {
  const client = scope.workload(scope.kubeconfig ?? "");
  const list = await client.list<K8sNode>({ apiVersion: "v1", kind: "Node" });
  const ready = new Set(
    list.items
      .filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
      .map((n) => n.metadata?.name ?? ""),
  );
  const notReady = scope.spec.nodes.map((n) => n.name).filter((n) => !ready.has(n));
  return { notReady, readinessMatters: ready.size > 0 };
}

export async function upgradeTalos(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const target = spec.talos.version;
  const poll = scope.opts.timings.pollMs;
  const rollout = scope.previous.upgrade?.talos ? { ...scope.previous.upgrade.talos } : undefined;

  // What each node runs, as configureNodes read it this pass; the installed image as last confirmed
  // (a node without one was installed from the spec's schematic: provisioning used it).
  for (const n of spec.nodes) {
    const s = nodeStatus(scope, n.name);
    if (!s.installImage && s.talosVersion && n.name !== rollout?.node)
      s.installImage = imageFor(scope, s.talosVersion);
  }

  const inFlight = rollout?.node ? spec.nodes.find((n) => n.name === rollout.node) : undefined;
  // A node only drained (or whose request was refused) for a rollout the spec no longer asks for (a new
  // version or schematic) has had nothing done to it yet: let it go and plan again. One whose upgrade
  // was requested finishes.
  if (
    inFlight &&
    rollout &&
    (rollout.stage === "Draining" || !rollout.requestedTime) &&
    (rollout.target !== target || rollout.image !== imageFor(scope, rollout.version))
  ) {
    await setUnschedulable(scope.workload(scope.kubeconfig ?? ""), inFlight.name, false);
    setRollout(scope, undefined);
    return waiting(
      "Upgrading",
      `${inFlight.name}: drain for ${rollout.image} stopped, the spec changed; planning again`,
      poll,
    );
  }
  if (inFlight && rollout) return continueNode(scope, rollout, inFlight);

  const versions = spec.nodes.map((n) => scope.nodes.get(n.name)?.talosVersion ?? "");
  if (versions.some((v) => !v))
    return waiting("WaitingForTalos", "not every node reported its Talos version", poll);
  const lowest = lowestVersion(versions)!;
  const targetImage = imageFor(scope, target);
  const upToDate = spec.nodes.every((n) => {
    const s = scope.nodes.get(n.name);
    return s?.talosVersion === target && s.installImage === targetImage;
  });
  if (upToDate) {
    setRollout(scope, undefined);
    return done("UpToDate", `${spec.nodes.length} node(s) on Talos ${target} (${targetImage})`);
  }

  let available: string[] = [];
  if (lowest !== target) {
    try {
      available = await factoryVersions(scope);
    } catch (err) {
      return waiting(
        "ImageFactoryUnreachable",
        `listing Talos versions: ${(err as Error).message}`,
        scope.opts.timings.blockedMs,
      );
    }
  }
  const path = talosPath(lowest, target, available);
  if (!path.ok) return blocked(path.reason, path.message, scope.opts.timings.blockedMs);
  const version = path.hops[0] ?? target;
  const image = imageFor(scope, version);
  const step = `step ${version} of ${[...path.hops].join(" → ") || target}`;

  // The next node, in a stable order: below this step's version, or on it from another image. A node
  // already past the step (a rollout that changed target) waits for the others.
  const order = upgradeOrder(spec.nodes);
  const next = order.find((n) => {
    const s = scope.nodes.get(n.name);
    const cmp = lowestVersion([s?.talosVersion ?? "", version]);
    return (
      (s?.talosVersion !== version && cmp === s?.talosVersion) ||
      (s?.talosVersion === version && s.installImage !== image)
    );
  });
  if (!next) {
    setRollout(scope, undefined);
    return waiting("Upgrading", `${step}: every node done`, poll);
  }
  if (spec.upgrade.paused)
    return waiting(
      "UpgradePaused",
      `upgrade.paused is set; ${next.name} is next for Talos ${version} (${step})`,
      scope.opts.timings.blockedMs,
    );

  const etcd = await etcdHealth(scope);
  if (etcd.problems.length)
    return waiting("EtcdUnhealthy", `not starting ${next.name}: ${etcd.problems.join("; ")}`, poll);
  // Refused before the drain: a control plane that cannot go down without losing quorum is not touched.
  const risk = next.role === "controlplane" ? quorumLostWithOneDown(etcd.members, etcd.healthy) : undefined;
  if (risk)
    return blocked("QuorumAtRisk", `not upgrading ${next.name}: ${risk}`, scope.opts.timings.blockedMs);
  const { notReady, readinessMatters } = await notReadyNodes(scope);
  if (readinessMatters && notReady.length)
    return waiting(
      "NodesNotReady",
      `not starting ${next.name}: Node(s) not Ready: ${notReady.join(", ")}`,
      poll,
    );

  const started: Rollout = {
    target,
    version,
    image,
    node: next.name,
    stage: "Draining",
    startedTime: new Date().toISOString(),
  };
  setRollout(scope, started);
  // Recorded before the cordon: a restart finds the node it cordoned even if the spec changed meanwhile.
  await scope.writeProgress();
  milestone(scope, "NodeUpgradeStarted", "Upgrade", `${next.name}: draining for Talos ${version} (${step})`);
  return continueNode(scope, started, next);
}

/**
 * TalosUpToDate while a scale-down waits for the upgrade in flight (NodesRemoved is not done, so the
 * normal phase does not run): only the node already in the step moves on. One whose upgrade was not
 * sent yet (draining, or refused), or that is itself leaving the spec, is given up, so the scale-down
 * goes first and the rollout plans again after it; no other node is started here.
 */
export async function finishInFlightUpgrade(scope: Scope): Promise<Outcome> {
  const rollout = scope.previous.upgrade?.talos ? { ...scope.previous.upgrade.talos } : undefined;
  const poll = scope.opts.timings.pollMs;
  if (!rollout?.node) return waiting("WaitingForScaleDown", "a scale-down runs first", poll);
  const node = scope.spec.nodes.find((n) => n.name === rollout.node);
  if (node && rollout.stage === "Upgrading" && rollout.requestedTime)
    return continueNode(scope, rollout, node);
  // Its upgrade was never sent: nothing was done to it but the cordon (a departing node stays cordoned
  // for its own drain).
  if (node) await setUnschedulable(scope.workload(scope.kubeconfig ?? ""), node.name, false);
  setRollout(scope, { target: rollout.target, version: rollout.version, image: rollout.image });
  return waiting(
    "WaitingForScaleDown",
    `${rollout.node}: upgrade to Talos ${rollout.version} not sent yet, given up until the scale-down is done`,
    poll,
  );
}

/**
 * Whether a node that reports the step's version has booted into it. A step that changes the version
 * is told by the version alone: the node cannot report it before it rebooted, and its boot time would
 * hang the answer on the two clocks agreeing (a node whose clock runs behind would be upgraded twice).
 * Only a step that keeps the version (another schematic) needs the boot time, read as machined's start,
 * and assumes the clocks within a second. `installedImage` is the image confirmed before the step.
 */
export function rebootedIntoStep(
  live: { bootedAt?: Date },
  version: string,
  requestedMs: number,
  installedImage: string | undefined,
): boolean {
  const changesVersion = !installedImage?.endsWith(`:${version}`);
  if (changesVersion) return true;
  return live.bootedAt ? live.bootedAt.getTime() >= requestedMs - 1_000 : true;
}

async function continueNode(scope: Scope, rollout: Rollout, node: SpecNode): Promise<Outcome> {
  const timeoutMs = parseDuration(scope.spec.upgrade.healthTimeout);
  const poll = scope.opts.timings.pollMs;
  const elapsed = Date.now() - Date.parse(rollout.startedTime ?? new Date().toISOString());
  setRollout(scope, rollout);

  if (rollout.stage === "Draining") {
    const pass = await drainPass(scope.workload(scope.kubeconfig ?? ""), node.name);
    if (pass.remaining.length) {
      const why = pass.blocked.length
        ? `eviction refused: ${pass.blocked.map((b) => `${b.pod} (${b.message})`).join("; ")}`
        : `${pass.remaining.length} pod(s) still terminating`;
      if (elapsed > timeoutMs)
        return blocked(
          "DrainTimeout",
          `${node.name} not drained within ${scope.spec.upgrade.healthTimeout}: ${why}; still trying, never forcing`,
          poll,
        );
      return waiting("Draining", `${node.name}: ${why}`, poll);
    }
    return requestUpgrade(scope, rollout, node);
  }

  // Upgrading. Not requested (refused or failed before): ask again, once etcd is healthy.
  if (!rollout.requestedTime) return requestUpgrade(scope, rollout, node);
  const requested = Date.parse(rollout.requestedTime);
  const live = await readNode(scope, node);
  const booted = rebootedIntoStep(
    live,
    rollout.version,
    requested,
    nodeStatus(scope, node.name).installImage,
  );
  let why: string;
  if (!live.reachable) why = live.why ?? "not answering";
  else if (live.version !== rollout.version) why = `reports Talos ${live.version}, not ${rollout.version}`;
  else if (!booted) why = `has not rebooted since its upgrade was requested`;
  else {
    const status = nodeStatus(scope, node.name);
    status.talosVersion = live.version;
    const etcd = node.role === "controlplane" ? await etcdProblems(scope) : [];
    const { notReady, readinessMatters } = await notReadyNodes(scope);
    if (etcd.length) why = `back on ${live.version}, but ${etcd.join("; ")}`;
    else if (readinessMatters && notReady.includes(node.name))
      why = `back on ${live.version}, Node not Ready yet`;
    else {
      await setUnschedulable(scope.workload(scope.kubeconfig ?? ""), node.name, false);
      status.installImage = rollout.image;
      milestone(
        scope,
        "NodeUpgraded",
        "Upgrade",
        `${node.name} runs Talos ${live.version} (${rollout.image})`,
      );
      setRollout(scope, { target: rollout.target, version: rollout.version, image: rollout.image });
      return waiting("Upgrading", `${node.name} upgraded to Talos ${live.version}; next node`, poll);
    }
    if (Date.now() - requested > timeoutMs)
      return blocked(
        "UpgradeStalled",
        `${node.name} not healthy within ${scope.spec.upgrade.healthTimeout} of its upgrade: ${why}`,
        poll,
      );
    return waiting("WaitingForNode", `${node.name} ${why}`, poll);
  }
  if (Date.now() - requested <= timeoutMs) return waiting("WaitingForNode", `${node.name} ${why}`, poll);
  // Past the timeout and still on the old system: the upgrade did not take. Asking again is safe (the
  // node runs and does not have the new version); the rollout stays on this node until it does.
  if (live.reachable) {
    const outcome = await requestUpgrade(scope, rollout, node);
    if (outcome.done || outcome.reason !== "Upgrading") return outcome;
    return blocked(
      "UpgradeStalled",
      `${node.name} ${why} ${scope.spec.upgrade.healthTimeout} after its upgrade was requested; requested again`,
      poll,
    );
  }
  return blocked(
    "UpgradeStalled",
    `${node.name} not back within ${scope.spec.upgrade.healthTimeout} of its upgrade to ${rollout.version}: ${why}`,
    poll,
  );
}

async function requestUpgrade(scope: Scope, rollout: Rollout, node: SpecNode): Promise<Outcome> {
  const poll = scope.opts.timings.pollMs;
  // Never with fewer than all members healthy: with three, the node going down leaves two.
  const etcd = await etcdHealth(scope);
  if (etcd.problems.length) {
    setRollout(scope, { ...rollout, requestedTime: undefined });
    return waiting("EtcdUnhealthy", `not upgrading ${node.name}: ${etcd.problems.join("; ")}`, poll);
  }
  // And never a control plane whose reboot leaves fewer healthy members than a quorum (one or two
  // members): decided from the live member list right before the request, not from the spec.
  const risk = node.role === "controlplane" ? quorumLostWithOneDown(etcd.members, etcd.healthy) : undefined;
  if (risk) {
    setRollout(scope, { ...rollout, requestedTime: undefined });
    return blocked("QuorumAtRisk", `not upgrading ${node.name}: ${risk}`, scope.opts.timings.blockedMs);
  }
  const now = new Date().toISOString();
  const requestedRollout: Rollout = { ...rollout, stage: "Upgrading", startedTime: now, requestedTime: now };
  // The long deadline: the request pulls and installs the image before it returns (talos.ts).
  return withClient(adminClient(scope, node.ip, "upgrade"), async (c) => {
    // An etcd leader going down costs an election; handing leadership over first does not.
    if (node.role === "controlplane") await c.etcdForfeitLeadership();
    // In status before it is sent: a crash after this line finds the request and decides from the node.
    setRollout(scope, requestedRollout);
    await scope.writeProgress();
    await scope.ctx.fence(`upgrade Talos on ${node.name}`);
    try {
      const { method } = await c.upgrade(rollout.image);
      milestone(
        scope,
        "NodeUpgradeRequested",
        "Upgrade",
        `${node.name}: upgrade to ${rollout.image} requested (${method} API)`,
      );
      return waiting(
        "Upgrading",
        `${node.name}: upgrade to ${rollout.version} requested, waiting for it back`,
        poll,
      );
    } catch (err) {
      if (!(err instanceof TalosApiError) || err.retryable) throw err; // may have reached it: the node decides
      // Refused or failed before any reboot: nothing was changed, so the request is forgotten.
      setRollout(scope, { ...requestedRollout, requestedTime: undefined });
      return blocked(
        err.kind === "failed-precondition" ? "UpgradeRefused" : "UpgradeFailed",
        `${node.name}: ${err.message}`,
        scope.opts.timings.blockedMs,
      );
    }
  });
}
