// Step 5: the VM is stopped after cutover: HA told to keep it stopped (state stopped, so it is not
// restarted), then an ACPI shutdown that Proxmox turns into a hard stop after the timeout. Decided from
// the live power state; the shutdown task is remembered so a restart never sends a second one while
// the first still runs.
import { guestLabel, HA_TASK_TYPES, haSidOf, shutdownGuest, TASK_TYPES } from "./guest.ts";
import { haResourceOf, pollTask, taskAbout } from "./proxmox-tasks.ts";
import { done, failed, type Step, sourceOf, waiting } from "./step.ts";

/** Seconds the guest gets to shut down before Proxmox stops it. */
export const SHUTDOWN_TIMEOUT_SECONDS = 180;

export const stopVmStep: Step = {
  condition: "VMStopped",
  async run(run) {
    const f = run.fields;
    const { vm, proxmox, vmid, type } = sourceOf(run);
    const label = guestLabel(type, vmid);
    if (!run.wm.spec.decommission.stopVM)
      return waiting("NotRequested", "decommission.stopVM is false: the VM keeps running", 3_600_000);
    const ha = await haResourceOf(proxmox, haSidOf(type, vmid));
    if (ha && ha.state !== "stopped") {
      await run.ctx.fence(`set HA state stopped for ${label}`);
      await proxmox.updateHaResource(ha.sid, { state: "stopped" });
    }
    if (vm.status === "stopped") {
      f.stopTask = undefined;
      if (!f.stoppedTime) f.stoppedTime = run.now.toISOString();
      return done("Stopped", `${label} stopped on ${vm.node}${ha ? "; HA state stopped" : ""}`);
    }
    if (f.stopTask) {
      const t = await pollTask(proxmox, f.stopTask);
      if (t.running) return waiting("ShuttingDown", `shutdown task ${f.stopTask} still running`, 2_000);
      f.stopTask = undefined;
      if (!t.ok) return failed("ShutdownFailed", `shutdown of ${label} ended with ${t.exitstatus}`);
      // The task ended but the live read (taken before) still said running: read again next pass.
      return waiting(
        "ShuttingDown",
        `shutdown task ended (${t.exitstatus}); waiting to see ${label} stopped`,
        1_000,
      );
    }
    const inFlight =
      (await taskAbout(proxmox, vm.node, TASK_TYPES[type].shutdown, vmid, "active")) ??
      (ha ? await taskAbout(proxmox, vm.node, HA_TASK_TYPES.shutdown, vmid, "active") : undefined);
    if (inFlight) {
      f.stopTask = inFlight.upid;
      return waiting("ShuttingDown", `shutdown task ${inFlight.upid} already running`, 2_000);
    }
    await run.ctx.fence(`shut down ${label}`);
    const upid = await shutdownGuest(proxmox, type, vm.node, vmid, {
      timeoutSeconds: SHUTDOWN_TIMEOUT_SECONDS,
      forceStop: true,
    });
    f.stopTask = upid.raw;
    await run.save();
    return waiting("ShuttingDown", `shutdown of ${label} requested (task ${upid.raw})`, 2_000);
  },
};
