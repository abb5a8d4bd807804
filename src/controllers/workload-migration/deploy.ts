// Step 1: the targets exist in their cluster (server-side applied, so the API server validates every
// object) and are Ready: a Deployment or StatefulSet with all replicas ready and available at its
// current generation, a CronJob as soon as it exists.
import { ApiError, type KubeObject, type OwnerReference } from "../../runtime/index.ts";
import { checkHelmTarget, deployHelmTarget, isHelmTarget } from "./helm-release.ts";
import { deployKnative, isKnative, knativeNotServed, knativeObjects } from "./knative-service.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./names.ts";
import { done, failed, type Step, waiting } from "./step.ts";
import { BUILT_KINDS, type Target, targetProblem, workloadObjects } from "./workloads.ts";

interface WorkloadStatus {
  observedGeneration?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  updatedReplicas?: number;
}

export function readiness(t: Target, live: KubeObject | undefined): { ready: boolean; message?: string } {
  if (!live) return { ready: false, message: "not created yet" };
  if (t.kind === "CronJob") return { ready: true };
  const want = (live.spec as { replicas?: number } | undefined)?.replicas ?? 1;
  const s = (live.status ?? {}) as WorkloadStatus;
  if ((s.observedGeneration ?? 0) < (live.metadata?.generation ?? 0))
    return { ready: false, message: "the controller has not observed the latest generation" };
  const ready = s.readyReplicas ?? 0;
  const available = t.kind === "StatefulSet" ? ready : (s.availableReplicas ?? 0);
  if (ready < want || available < want)
    return { ready: false, message: `${ready}/${want} replicas ready, ${available} available` };
  return { ready: true };
}

export function ownerRefs(run: {
  wm: { metadata: { name: string; uid?: string } };
  local: boolean;
}): OwnerReference[] {
  const uid = run.wm.metadata.uid;
  if (!run.local || !uid) return [];
  return [
    {
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "WorkloadMigration",
      name: run.wm.metadata.name,
      uid,
      controller: true,
      blockOwnerDeletion: false,
    },
  ];
}

/**
 * The API server judged the object and said no (as opposed to being unreachable or busy): a 4xx other
 * than not-found and conflict, or server-side apply's refusal of a field the kind's schema lacks,
 * which it reports as a 500 whatever fieldValidation says ("failed to create typed patch object …
 * field not declared in schema"; kubernetes/kubernetes#122480, seen on 1.36).
 */
function refusedByServer(err: unknown): err is ApiError {
  if (!(err instanceof ApiError)) return false;
  if (err.code === 500) return err.message.includes("failed to create typed patch object");
  return err.code >= 400 && err.code < 500 && err.code !== 404 && err.code !== 409;
}

export const deployStep: Step = {
  condition: "Deployed",
  async run(run) {
    const targets = run.wm.spec.targets;
    if (targets.length === 0) return done("NoTargets", "a plain decommission: no targets to deploy");
    const unbuilt = targets.filter((t) => !BUILT_KINDS.has(t.kind) && !isKnative(t) && !isHelmTarget(t));
    if (unbuilt.length)
      return failed(
        "KindNotSupported",
        `this operator builds Deployment, StatefulSet, CronJob, KnativeService and HelmRelease targets; not ${unbuilt.map((t) => `${t.name} (${t.kind})`).join(", ")}`,
      );
    const problems = targets.flatMap((t) => targetProblem(t) ?? []);
    if (problems.length) return failed("TargetRefused", `nothing created: ${problems.join("; ")}`);
    const noKnative = await knativeNotServed(run);
    if (noKnative) return waiting("KnativeNotServed", noKnative, 30_000);
    // A workload cluster starts without the migration's namespace; the management cluster has it.
    if (!run.local)
      await run.target.apply({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: run.wm.metadata.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
      });
    // With data to sync, the targets wait at zero replicas until the final sync succeeded (sync.ts).
    const held = run.wm.spec.dataSync.method !== "None" && !run.fields.finalSyncTime;
    // Every object of every target through the API server's validation and admission first, storing
    // nothing: one refused object means none is created, rather than half a migration deployed.
    const planned = targets.map((t) => ({
      t,
      objects: isKnative(t)
        ? knativeObjects(run, t, ownerRefs(run))
        : workloadObjects(run.wm, t, held ? 0 : 1, ownerRefs(run)),
    }));
    const refused: string[] = [];
    for (const { objects } of planned)
      for (const o of objects)
        try {
          await run.target.apply(o, { dryRun: true });
        } catch (err) {
          if (!refusedByServer(err)) throw err;
          refused.push(`${o.kind} ${o.metadata?.name}: ${err.message}`);
        }
    for (const t of targets.filter(isHelmTarget)) {
      const r = await checkHelmTarget(run, t);
      if (typeof r === "string") refused.push(r);
      else if (r) return r;
    }
    if (refused.length)
      return failed(
        "TargetRefused",
        `the API server refused (dry run; nothing created): ${refused.join("; ")}`,
      );
    const states: { name: string; ready: boolean; message?: string }[] = [];
    for (const { t, objects } of planned) {
      if (isKnative(t)) {
        states.push(await deployKnative(run, t, held, ownerRefs(run)));
        continue;
      }
      let workload: KubeObject | undefined;
      for (const o of objects) {
        const applied = await run.target.apply(o);
        if (o.kind !== "Service" && o.kind !== "PersistentVolumeClaim") workload = applied;
      }
      const r = isHelmTarget(t)
        ? await deployHelmTarget(run, t, held)
        : held
          ? { ready: false, message: "at zero replicas until the final data sync" }
          : readiness(t, workload);
      states.push({ name: t.name, ready: r.ready, ...(r.message ? { message: r.message } : {}) });
    }
    run.fields.targets = states;
    if (held)
      return done(
        "HeldForSync",
        `${states.length} target(s) held until the final data sync (applied at zero replicas; a KnativeService not created)`,
      );
    const notReady = states.filter((s) => !s.ready);
    if (notReady.length)
      return waiting("TargetsNotReady", notReady.map((s) => `${s.name}: ${s.message}`).join("; "));
    return done("TargetsReady", `${states.length} target(s) applied and Ready`);
  },
};
