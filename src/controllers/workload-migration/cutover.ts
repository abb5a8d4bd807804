// Step 4: the routes go live only now, after verification; Manual mode also waits for the
// approve-cutover annotation (one set before a rollback counts only once removed and set again).
// cutoverTime (and the earliest deletion time) are recorded once.

import { approvalGiven, approvalWanted } from "./approval.ts";
import { ownerRefs } from "./deploy.ts";
import { parseDuration } from "./duration.ts";
import { helmRoutes } from "./helm-release.ts";
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
    const routed = run.wm.spec.targets.filter(servesTraffic);
    const helm = await helmRoutes(run, ownerRefs(run));
    if (helm.wait) return helm.wait;
    // Applied on every pass (not only the first), so a deleted route comes back while cut over.
    for (const t of routed) await run.target.apply(routeFor(run.wm, t, ownerRefs(run)));
    for (const route of helm.routes) await run.target.apply(route);
    if (!f.cutoverTime) {
      f.cutoverTime = run.now.toISOString();
      const after = run.wm.spec.decommission.deleteAfter;
      if (after) f.deleteAfterTime = new Date(run.now.getTime() + parseDuration(after)).toISOString();
    }
    return done(
      "RoutesLive",
      routed.length + helm.routes.length
        ? `HTTPRoute(s) ${[...routed.map((t) => t.hostname), ...helm.hostnames].join(", ")} live since ${f.cutoverTime}`
        : `no hostnames to route; cut over at ${f.cutoverTime}`,
    );
  },
};
