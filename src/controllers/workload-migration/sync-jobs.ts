// The data sync Jobs a migration runs in the target cluster: pure functions of the spec and the phase,
// so a restarted operator builds (and finds) the same Job again. Rsync mounts every target volume the
// paths name and copies each VM directory into it over SSH; the final run first stops the VM's services
// (ssh.stopCommand) and afterwards proves the copy: a checksum dry-run of the same rsync must find
// nothing left to change. A user's Job runs as written, told its phase by SYNC_PHASE.
import { createHash } from "node:crypto";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { KubeObject, OwnerReference } from "../../runtime/index.ts";
import { parseDuration } from "./duration.ts";
import { labelsFor, MIGRATION_LABEL } from "./names.ts";

export type SyncPhase = "initial" | "final" | "resume" | "reverse";
export const SYNC_PHASE_LABEL = "homelab.shdr.ch/sync-phase";
/** The migration (uid) and generation a Job was made for: a Job of another one is never trusted. */
export const SYNC_OWNER_ANNOTATION = "homelab.shdr.ch/migration-uid";
export const SYNC_GENERATION_ANNOTATION = "homelab.shdr.ch/migration-generation";
const KEY_PATH = "/etc/sync-ssh/key";
export const KNOWN_HOSTS_PATH = "/tmp/known_hosts";

/**
 * 8 hex digits of the migration's uid in every name: names are cut to 40 characters of the migration's
 * name, and two migrations sharing that prefix (or a redone migration of the same name) must not meet
 * at the same Job. The longest name, `<40>-<8>-sync-reverse`, is 62 characters (a Job's limit is 63).
 */
const uidTag = (wm: WorkloadMigration) =>
  createHash("sha256")
    .update(wm.metadata.uid ?? "")
    .digest("hex")
    .slice(0, 8);
export const syncJobName = (wm: WorkloadMigration, phase: SyncPhase) =>
  `${wm.metadata.name.slice(0, 40)}-${uidTag(wm)}-sync-${phase}`;
/** The copy of the SSH key in the target cluster (a workload cluster cannot read the original). */
export const syncKeySecretName = (wm: WorkloadMigration) =>
  `${wm.metadata.name.slice(0, 40)}-${uidTag(wm)}-sync-ssh`;

/** Made by this migration (its uid in the owner annotation); only such a Job is ever deleted. */
export const isOwnSyncJob = (wm: WorkloadMigration, job: KubeObject) =>
  job.metadata?.annotations?.[SYNC_OWNER_ANNOTATION] === (wm.metadata.uid ?? "") && Boolean(wm.metadata.uid);

/** The claim a target's volume is bound to, as the Deployment or StatefulSet (replica 0) names it. */
export function claimOf(wm: WorkloadMigration, target: string, volume: string): string {
  const t = wm.spec.targets.find((x) => x.name === target);
  return t?.kind === "StatefulSet" ? `${volume}-${target}-0` : `${target}-${volume}`;
}

/** Single-quoted for sh: every ' closed, escaped and reopened. */
export const shQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** The sh script of an Rsync Job in `phase`. */
export function rsyncScript(wm: WorkloadMigration, phase: SyncPhase): string {
  const d = wm.spec.dataSync;
  const ssh = d.ssh!;
  const remote = `${ssh.user}@${ssh.host}`;
  // With the VM's keys given, ssh refuses any other (a man in the middle would get the copy and could
  // feed the cluster its own data); without them, the Job's first connection records the key it is
  // shown and its later connections hold to it (trust on first use).
  const checking = ssh.knownHosts ? "yes" : "accept-new";
  const sshCmd = `ssh -i ${KEY_PATH} -o BatchMode=yes -o StrictHostKeyChecking=${checking} -o UserKnownHostsFile=${KNOWN_HOSTS_PATH}`;
  const lines = ["set -eu"];
  if (ssh.knownHosts) lines.push(`printf '%s\\n' ${shQuote(ssh.knownHosts.trimEnd())} > ${KNOWN_HOSTS_PATH}`);
  lines.push(`SSH=${shQuote(sshCmd)}`);
  if (phase === "resume") {
    lines.push(`$SSH ${shQuote(remote)} ${shQuote(ssh.startCommand ?? "true")}`);
    return lines.join("\n");
  }
  if (phase === "final") lines.push(`$SSH ${shQuote(remote)} ${shQuote(ssh.stopCommand!)}`);
  for (const p of d.paths) {
    const from = shQuote(`${remote}:${p.from.replace(/\/*$/, "/")}`);
    const to = shQuote(`/sync/${p.target}/${p.volume}/`);
    lines.push(`rsync -aHAX --numeric-ids --delete -e "$SSH" ${from} ${to}`);
    if (phase === "final")
      lines.push(
        `left=$(rsync -aHAXn --numeric-ids --delete --checksum --itemize-changes -e "$SSH" ${from} ${to})`,
        `if [ -n "$left" ]; then echo ${shQuote(`${p.from} still differs after the copy:`)}; echo "$left"; exit 1; fi`,
      );
  }
  return lines.join("\n");
}

function rsyncPodSpec(wm: WorkloadMigration, phase: SyncPhase, keySecret: string) {
  const d = wm.spec.dataSync;
  const mounts = phase === "resume" ? [] : d.paths;
  return {
    restartPolicy: "Never",
    containers: [
      {
        name: "rsync",
        image: d.image,
        command: ["sh", "-c", rsyncScript(wm, phase)],
        volumeMounts: [
          { name: "ssh-key", mountPath: "/etc/sync-ssh", readOnly: true },
          ...mounts.map((p, i) => ({ name: `data-${i}`, mountPath: `/sync/${p.target}/${p.volume}` })),
        ],
      },
    ],
    volumes: [
      {
        name: "ssh-key",
        secret: {
          secretName: keySecret,
          defaultMode: 0o400,
          items: [{ key: d.ssh!.privateKeySecretRef.key, path: "key" }],
        },
      },
      ...mounts.map((p, i) => ({
        name: `data-${i}`,
        persistentVolumeClaim: { claimName: claimOf(wm, p.target, p.volume) },
      })),
    ],
  };
}

interface JobSpecLike {
  activeDeadlineSeconds?: number;
  template?: {
    metadata?: { labels?: Record<string, string> };
    spec?: { containers?: { env?: unknown[]; [k: string]: unknown }[]; [k: string]: unknown };
  };
  [k: string]: unknown;
}

/**
 * The user's Job spec (dataSync.reverseJob for the reverse phase, dataSync.job otherwise) with
 * SYNC_PHASE on every container.
 */
function userJobSpec(wm: WorkloadMigration, phase: SyncPhase): JobSpecLike {
  const d = wm.spec.dataSync;
  const spec = structuredClone((phase === "reverse" ? d.reverseJob : d.job) ?? {}) as JobSpecLike;
  for (const c of spec.template?.spec?.containers ?? [])
    c.env = [
      ...(c.env ?? []).filter((e) => (e as { name?: string }).name !== "SYNC_PHASE"),
      { name: "SYNC_PHASE", value: phase },
    ];
  return spec;
}

/** The Job of `phase`; for Rsync, `keySecret` names the SSH key Secret in the Job's namespace. */
export function syncJob(
  wm: WorkloadMigration,
  phase: SyncPhase,
  keySecret: string,
  owner: OwnerReference[],
): KubeObject {
  const labels = { ...labelsFor(wm.metadata.name, `sync-${phase}`), [SYNC_PHASE_LABEL]: phase };
  const deadline = Math.max(1, Math.round(parseDuration(wm.spec.dataSync.timeout) / 1000));
  const base: JobSpecLike =
    wm.spec.dataSync.method === "Rsync" && phase !== "reverse"
      ? { backoffLimit: 2, template: { spec: rsyncPodSpec(wm, phase, keySecret) } }
      : userJobSpec(wm, phase);
  const template = base.template ?? {};
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: syncJobName(wm, phase),
      namespace: wm.metadata.namespace,
      labels,
      annotations: {
        [SYNC_OWNER_ANNOTATION]: wm.metadata.uid ?? "",
        [SYNC_GENERATION_ANNOTATION]: String(wm.metadata.generation ?? 0),
      },
      ...(owner.length ? { ownerReferences: owner } : {}),
    },
    spec: {
      ...base,
      activeDeadlineSeconds: base.activeDeadlineSeconds ?? deadline,
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          labels: { ...template.metadata?.labels, [MIGRATION_LABEL]: wm.metadata.name },
        },
      },
    },
  };
}
