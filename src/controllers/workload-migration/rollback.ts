// Rollback (spec.rollback, any time before the VM is deleted): the routes go, the targets scale to
// zero, the VM runs again (HA back to started). It says plainly when stateful targets served traffic
// after cutover: what they wrote stays in the cluster and is not copied back to the VM.
import { isNotFound } from "../../runtime/index.ts";
import { ownerRefs } from "./deploy.ts";
import { haSid } from "./names.ts";
import { haResourceOf, pollTask, taskAbout } from "./proxmox-tasks.ts";
import { done, failed, type MigrationRun, type StepOutcome, sourceOf, waiting } from "./step.ts";
import { isStateful, routeFor, servesTraffic, workloadObjects } from "./workloads.ts";

export async function rollBack(run: MigrationRun): Promise<StepOutcome> {
  const f = run.fields;
  for (const t of run.wm.spec.targets.filter(servesTraffic)) {
    const route = routeFor(run.wm, t, []);
    try {
      await run.target.delete(
        { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" },
        {
          namespace: route.metadata!.namespace!,
          name: route.metadata!.name!,
        },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const t of run.wm.spec.targets)
    for (const o of workloadObjects(run.wm, t, 0, ownerRefs(run)))
      if (o.kind !== "PersistentVolumeClaim") await run.target.apply(o);
  if (!run.vm) {
    f.rollbackMessage = "Routes removed and targets scaled to zero (no source VM to start).";
    return done("RolledBack", f.rollbackMessage);
  }
  const { vm, proxmox, vmid } = sourceOf(run);
  const ha = await haResourceOf(proxmox, haSid(vmid));
  if (ha && ha.state !== "started") {
    await run.ctx.fence(`set HA state started for VM ${vmid}`);
    await proxmox.updateHaResource(ha.sid, { state: "started" });
  }
  if (vm.status !== "running") {
    if (f.startTask) {
      const t = await pollTask(proxmox, f.startTask);
      if (t.running) return waiting("Starting", `start task ${f.startTask} running`, 2_000);
      f.startTask = undefined;
      if (!t.ok) return failed("StartFailed", `starting VM ${vmid} ended with ${t.exitstatus}`);
      return waiting("Starting", `start task ended; waiting to see VM ${vmid} running`, 1_000);
    }
    const inFlight = await taskAbout(proxmox, vm.node, "qmstart", vmid, "active");
    if (inFlight) {
      f.startTask = inFlight.upid;
      return waiting("Starting", `start task ${inFlight.upid} already running`, 2_000);
    }
    await run.ctx.fence(`start VM ${vmid} (rollback)`);
    const upid = await proxmox.start(vm.node, vmid);
    f.startTask = upid.raw;
    await run.save();
    return waiting("Starting", `VM ${vmid} start requested (task ${upid.raw})`, 2_000);
  }
  f.startTask = undefined;
  const stateful = run.wm.spec.targets.filter(isStateful).map((t) => t.name);
  const writes =
    f.cutoverTime && stateful.length
      ? ` Targets ${stateful.join(", ")} are stateful and served traffic from ${f.cutoverTime}: what they wrote since stays in the cluster's volumes and is NOT on the VM.`
      : "";
  f.rollbackMessage = `Routes removed, targets scaled to zero, VM ${vmid} running on ${vm.node}.${writes}`;
  return done("RolledBack", f.rollbackMessage);
}
