// Step 4: the routes go live only now, after verification; Manual mode also waits for the
// approve-cutover annotation (one set before a rollback counts only once removed and set again).
// cutoverTime (and the earliest deletion time) are recorded once.

import { approvalGiven, approvalWanted } from "./approval.ts";
import { ownerRefs } from "./deploy.ts";
import { parseDuration } from "./duration.ts";
import { helmRoutes, isHelmTarget } from "./helm-release.ts";
import { isKnative, knativeHostnameTaken, publishKnative } from "./knative-service.ts";
import { APPROVE_CUTOVER } from "./names.ts";
import { done, type Step, waiting } from "./step.ts";
import { routeFor, servesTraffic } from "./workloads.ts";

export const cutoverStep: Step = {
  condition: "CutOver",
  async run(run) {
    const f = run.fields;
    if (
      !f.cutoverTime &&
      run.wm.spec.cutover.mode === "Manual" &&
      !approvalGiven(run.obj, f, APPROVE_CUTOVER)
    )
      return waiting("AwaitingApproval", approvalWanted(f, APPROVE_CUTOVER), 60_000);
    // A Knative target is routed by its DomainMapping, never by an HTTPRoute to Knative's own Service;
    // a HelmRelease target's route waits for the chart's Service (helmRoutes).
    const routed = run.wm.spec.targets.filter(servesTraffic).filter((t) => !isKnative(t) && !isHelmTarget(t));
    // Blocked before anything goes public: a DomainMapping of a hostname that is not ours.
    const taken = await knativeHostnameTaken(run);
    if (taken) return waiting("DomainMappingTaken", taken, 15_000);
    const helm = await helmRoutes(run, ownerRefs(run));
    if (helm.wait) return helm.wait;
    if (!f.cutoverTime) {
      f.cutoverTime = run.now.toISOString();
      const after = run.wm.spec.decommission.deleteAfter;
      if (after) f.deleteAfterTime = new Date(run.now.getTime() + parseDuration(after)).toISOString();
      // Recorded before anything goes public, so nothing is ever live without a cutoverTime in status.
      await run.save();
    }
    // Applied on every pass (not only the first), so a deleted route comes back while cut over.
    for (const t of routed) await run.target.apply(routeFor(run.wm, t, ownerRefs(run)));
    for (const route of helm.routes) await run.target.apply(route);
    const mapped = await publishKnative(run, ownerRefs(run));
    const hosts = [...routed.map((t) => t.hostname), ...helm.hostnames, ...mapped];
    return done(
      "RoutesLive",
      hosts.length
        ? `HTTPRoute(s) / DomainMapping(s) ${hosts.join(", ")} live since ${f.cutoverTime}`
        : `no hostnames to route; cut over at ${f.cutoverTime}`,
    );
  },
};
