// Step 3: every check passes successThreshold times in a row, interval apart, within the timeout
// counted from the first attempt. Past the deadline the migration stops here: nothing is cut over and
// the VM is never touched. Progress lives in status (start time, passes in a row), so a restart resumes.

import { runCheck } from "./checks.ts";
import { parseDuration } from "./duration.ts";
import { done, failed, type Step, waiting } from "./step.ts";

export const verifyStep: Step = {
  condition: "Verified",
  async run(run) {
    const f = run.fields;
    const v = run.wm.spec.verify;
    if (f.verifiedTime) return done("ChecksPassed", `checks passed at ${f.verifiedTime}`);
    const notReady = (f.targets ?? []).filter((t) => !t.ready);
    if (notReady.length)
      return waiting("TargetsNotReady", notReady.map((t) => `${t.name}: ${t.message}`).join("; "), 1_000);
    if (!f.verifyStartedTime) f.verifyStartedTime = run.now.toISOString();
    const deadline = Date.parse(f.verifyStartedTime) + parseDuration(v.timeout);
    const problems: string[] = [];
    for (const c of v.checks) {
      const p = await runCheck(c, run.ctx.signal);
      if (p) problems.push(p);
    }
    if (problems.length) {
      f.verifyPasses = 0;
      if (run.now.getTime() >= deadline)
        return failed(
          "DeadlineExceeded",
          `checks still failing after ${v.timeout}: ${problems.join("; ")}; the VM keeps running`,
        );
      return waiting("ChecksFailing", problems.join("; "), parseDuration(v.interval));
    }
    f.verifyPasses = (f.verifyPasses ?? 0) + 1;
    if (f.verifyPasses < v.successThreshold)
      return waiting(
        "ChecksPassing",
        `${f.verifyPasses}/${v.successThreshold} passes in a row`,
        parseDuration(v.interval),
      );
    f.verifiedTime = run.now.toISOString();
    return done("ChecksPassed", `${v.checks.length} check(s) passed ${v.successThreshold} time(s) in a row`);
  },
};
