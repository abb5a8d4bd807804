// Step 2: data sync. This version moves stateless workloads only: a migration that declares Rsync is
// stopped here, before its VM is touched, rather than cut over without its data.
import { done, failed, type Step } from "./step.ts";

export const syncStep: Step = {
  condition: "DataSynced",
  async run(run) {
    if (run.wm.spec.dataSync.method === "None")
      return done("NoData", "dataSync.method None: nothing to copy");
    return failed(
      "SyncNotSupported",
      "this operator version does not run rsync Jobs yet; the migration stops before cutover and the VM keeps running",
    );
  },
};
