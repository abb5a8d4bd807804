// Replacement: a control plane whose VM was destroyed (by hand, or broken and recreated) comes back
// under the same name from the image, gets its config again (the VMs and Talos phases do that), and
// then finds its old etcd member still registered with its peer URL: etcd refuses it a second member
// (ErrPeerURLExist) until the stale one is removed. The node itself says so in its etcd service; that
// live signal, not a guess from timing, is what makes its member stale — a node that merely reboots
// keeps its data and rejoins as the same member, and its member is never touched here.
import { TalosApiError } from "../../talos/client/errors.ts";
import { describeSick, liveMembers, memberHex, STALE_MEMBER_ERROR, unhealthyEtcd } from "./etcd-members.ts";
import { controlPlanes } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";
import { adminClient, withClient } from "./talos.ts";

export async function removeStaleMembers(scope: Scope): Promise<Outcome> {
  const cps = controlPlanes(scope.spec);
  const kept: string[] = [];
  for (const cp of cps) {
    // A node not answering (rebooting, powered off) says nothing about a stale member: the health
    // phase after this one waits for it.
    const services = await withClient(adminClient(scope, cp.ip), (c) => c.serviceList()).catch(
      (err: unknown) => {
        if (err instanceof TalosApiError) return [];
        throw err;
      },
    );
    const etcd = services.find((s) => s.id === "etcd");
    if (etcd && etcd.state !== "Running" && STALE_MEMBER_ERROR.test(etcd.lastMessage)) kept.push(cp.name);
  }
  if (kept.length === 0)
    return done("NoStaleMembers", `no control plane of ${cps.length} is kept out of etcd by a stale member`);

  // One at a time, in spec order: each removal changes the membership the next one is judged on.
  const name = kept[0]!;
  const { through, members } = await liveMembers(scope, [name]);
  const stale = members.find((m) => m.hostname === name);
  if (!stale)
    return waiting(
      "EtcdRejoining",
      `${name}: no member of its name left; waiting for it to join etcd`,
      scope.opts.timings.pollMs,
    );
  // The stale member does not run; the others must all be healthy, so that removing it leaves a quorum.
  const others = cps.filter((n) => n.name !== name && members.some((m) => m.hostname === n.name));
  const sick = await unhealthyEtcd(scope, others);
  if (sick.size > 0)
    return blocked(
      "EtcdUnhealthy",
      `${name} is kept out of etcd by its stale member ${memberHex(stale)}, not removed while etcd is unhealthy elsewhere: ${describeSick(sick)}`,
      scope.opts.timings.blockedMs,
    );
  await scope.ctx.fence(`remove stale etcd member ${memberHex(stale)}`);
  await withClient(adminClient(scope, through.ip), (c) => c.etcdRemoveMemberById(stale.id));
  milestone(
    scope,
    "StaleEtcdMemberRemoved",
    "Replace",
    `${name} came back with an empty disk; its stale etcd member ${memberHex(stale)} removed through ${through.name}, so it rejoins as a new member`,
  );
  return waiting(
    "StaleMemberRemoved",
    `${name}: stale etcd member ${memberHex(stale)} removed through ${through.name}; waiting for it to rejoin`,
    scope.opts.timings.pollMs,
  );
}
