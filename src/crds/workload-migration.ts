// WorkloadMigration: moves the services of one seed VM into the cluster and retires the VM — deploy the
// targets, sync data, verify health, cut the route over, stop the VM, back it up, delete it after a
// grace period and an approval. Shaped after Forklift's Plan (source + per-workload targets + cutover +
// recorded source state for rollback). One VM often hosts several services (the seed's AI tool stack
// runs five), so targets is a list.
import * as z from "zod";
import { EnvVar, imageReference } from "./app-vending.ts";
import {
  dnsLabel,
  duration,
  freeForm,
  hostname,
  localSecretKeyRef,
  mapListOf,
  matching,
  quantity,
  resourceList,
  secretRef,
  setOf,
  text,
  url,
} from "./fields.ts";
import { defineKind } from "./kind.ts";
import { immutable, withRules } from "./rules.ts";
import { conditionStatusPath, statusFields } from "./status.ts";

export const TARGET_KINDS = [
  "KnativeService",
  "Deployment",
  "StatefulSet",
  "HelmRelease",
  "CronJob",
] as const;

const Volume = z
  .object({
    name: dnsLabel().describe("Volume name, referenced by dataSync.paths[].volume."),
    mountPath: matching(/^\/[^\0]*$/, 1024, "must be an absolute path such as /data").describe(
      "Where the volume is mounted in the container, e.g. /data.",
    ),
    size: quantity().describe("Size of the PersistentVolumeClaim, e.g. 5Gi."),
    storageClassName: dnsLabel()
      .optional()
      .describe("StorageClass of the claim; the cluster default when unset."),
  })
  .describe("A persistent volume of the target.");

const Template = z
  .object({
    image: imageReference().describe("Container image, e.g. brandawg93/peanut:latest."),
    port: z.number().int().min(1).max(65535).optional().describe("Port the container serves on, e.g. 8080."),
    command: z.array(text(4096).describe("An argument.")).max(32).optional().describe("Entrypoint override."),
    args: z
      .array(text(4096).describe("An argument."))
      .max(64)
      .optional()
      .describe("Arguments to the entrypoint."),
    env: mapListOf(EnvVar, "name", 64).default([]).describe("Environment variables, keyed by name."),
    volumes: mapListOf(Volume, "name", 8).default([]).describe("Persistent volumes, keyed by name."),
    resources: z
      .object({
        requests: resourceList(8).optional().describe("Requests, e.g. {cpu: 100m, memory: 128Mi}."),
        limits: resourceList(8).optional().describe("Limits, e.g. {memory: 512Mi}."),
      })
      .optional()
      .describe("Container resources."),
    schedule: matching(
      /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/,
      128,
      "must be a cron schedule such as 0 3 * * 1 or @weekly",
    )
      .optional()
      .describe("Cron schedule, for kind CronJob only, e.g. 0 3 * * 1."),
  })
  .describe("The workload's single container (or give manifest instead), for every kind except HelmRelease.");

const Helm = z
  .object({
    repository: url(["https", "oci"], "https://charts.example.org").describe(
      "Chart repository URL (https:// index or oci:// registry).",
    ),
    chart: matching(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 253, "must be a chart name such as synapse").describe(
      "Chart name.",
    ),
    version: text(64).min(1).describe("Chart version, e.g. 1.2.3."),
    values: freeForm().optional().describe("Helm values for the release."),
  })
  .describe("A Helm release, for kind HelmRelease only.");

const labelKey = matching(
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
  316,
  "must be a label or annotation key such as app.kubernetes.io/part-of",
);

const Manifest = z
  .object({
    labels: z
      .record(labelKey, text(63))
      .meta({ maxProperties: 32 })
      .optional()
      .describe(
        "Labels of the workload object and its pod template (the operator adds its own, which win over these).",
      ),
    annotations: z
      .record(labelKey, text(4096))
      .meta({ maxProperties: 32 })
      .optional()
      .describe("Annotations of the workload object."),
    spec: freeForm().describe(
      "The object's complete spec, as in its own manifest: a DeploymentSpec, StatefulSetSpec, CronJobSpec or Knative ServiceSpec (serving.knative.dev/v1). The API server validates it (server-side dry run; an unknown field or invalid value refuses the migration) before anything is created. The operator sets the name, namespace, owner and its labels (on the object and the pod template, its own keys winning), a selector only when none is given, and owns replicas (Deployment, StatefulSet: 0 while held for a data sync or rolled back, else this spec's replicas or 1) and suspend (CronJob).",
    ),
  })
  .describe(
    "A complete workload instead of template, for what one container cannot say: several containers, node pins, devices, NFS or host volumes, extra ports, probes, security contexts.",
  );

const Backend = z
  .object({
    service: dnsLabel()
      .optional()
      .describe(
        "Service the hostname routes to; the target's name when unset. Only a HelmRelease may name another (its chart's Service, e.g. gitlab-webservice-default): a manifest target routes to the Service the operator makes for it.",
      ),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .describe(
        "Service port the hostname routes to, e.g. 8096; for a manifest target one of its named TCP containerPorts.",
      ),
  })
  .describe(
    "For a manifest target: the operator makes a Service named after the target exposing every named containerPort of the pod template (same number and protocol), and the hostname routes to port. For a HelmRelease: the chart's Service and port the hostname routes to. (A template target routes to its own Service at template.port.)",
  );

const Target = withRules(
  z
    .object({
      name: dnsLabel().describe("Name of the created workload (and its Service), e.g. peanut."),
      kind: z.enum(TARGET_KINDS).describe(`What to create: ${TARGET_KINDS.join(", ")}.`),
      template: Template.optional(),
      manifest: Manifest.optional(),
      helm: Helm.optional(),
      backend: Backend.optional(),
      hostname: hostname()
        .optional()
        .describe("Hostname routed to the target at cutover, e.g. peanut.apps.home.shdr.ch."),
      healthCheck: z
        .object({
          path: matching(/^\/[^\s]*$/, 1024, "must be a URL path such as /healthz")
            .default("/")
            .describe("HTTP path that must answer 2xx or 3xx (default /)."),
          port: z
            .number()
            .int()
            .min(1)
            .max(65535)
            .optional()
            .describe("Port to probe; the template's port when unset."),
        })
        .optional()
        .describe("HTTP check proving the target works before cutover."),
    })
    .describe("One workload that replaces a service of the source VM."),
  [
    {
      rule: "self.kind == 'HelmRelease' ? (has(self.helm) && !has(self.template) && !has(self.manifest)) : (!has(self.helm) && has(self.template) != has(self.manifest))",
      message:
        "a target of kind HelmRelease takes helm only; every other kind takes exactly one of template or manifest",
      check: (t) =>
        t.kind === "HelmRelease"
          ? t.helm !== undefined && t.template === undefined && t.manifest === undefined
          : t.helm === undefined && (t.template !== undefined) !== (t.manifest !== undefined),
    },
    {
      rule: "!has(self.backend) || ((has(self.manifest) || has(self.helm)) && self.kind != 'KnativeService' && self.kind != 'CronJob')",
      message:
        "backend is for a manifest or HelmRelease target of a serving kind (a template target routes to template.port, a KnativeService through its own hostname)",
      fieldPath: ".backend",
      check: (t) =>
        t.backend === undefined ||
        ((t.manifest !== undefined || t.helm !== undefined) &&
          t.kind !== "KnativeService" &&
          t.kind !== "CronJob"),
    },
    {
      rule: "!has(self.backend) || !has(self.backend.service) || has(self.helm) || self.backend.service == self.name",
      message:
        "backend.service may name another Service only for a HelmRelease; a manifest target's Service is named after the target",
      fieldPath: ".backend.service",
      check: (t) => t.backend?.service === undefined || t.helm !== undefined || t.backend.service === t.name,
    },
    {
      rule: "!has(self.hostname) || self.kind == 'KnativeService' || (has(self.template) ? has(self.template.port) : has(self.backend))",
      message:
        "a hostname needs somewhere to route: template.port for a template target, backend for a manifest or HelmRelease target",
      fieldPath: ".hostname",
      check: (t) =>
        t.hostname === undefined ||
        t.kind === "KnativeService" ||
        (t.template !== undefined ? t.template.port !== undefined : t.backend !== undefined),
    },
    {
      rule: "self.kind != 'KnativeService' || !has(self.template) || !has(self.template.volumes) || size(self.template.volumes) == 0",
      message:
        "a KnativeService target cannot have template.volumes: Knative Serving mounts PersistentVolumeClaims only with its kubernetes.podspec-persistent-volume-claim feature flag, which a default install leaves disabled; give a workload with state a Deployment or StatefulSet target, or a KnativeService manifest with configMap or secret volumes",
      fieldPath: ".template.volumes",
      check: (t) => t.kind !== "KnativeService" || (t.template?.volumes ?? []).length === 0,
    },
    {
      rule: "self.kind != 'CronJob' || !has(self.template) || has(self.template.schedule)",
      message: "a CronJob target needs template.schedule (or manifest.spec.schedule)",
      check: (t) => t.kind !== "CronJob" || t.template === undefined || t.template.schedule !== undefined,
    },
    {
      rule: "!has(self.hostname) || self.kind != 'CronJob'",
      message: "a CronJob target cannot have a hostname",
      fieldPath: ".hostname",
      check: (t) => t.hostname === undefined || t.kind !== "CronJob",
    },
  ],
);

const DataSync = withRules(
  z
    .object({
      method: z
        .enum(["None", "Rsync", "Job"])
        .default("None")
        .describe(
          "None (stateless), Rsync (copy directories from the VM over SSH into the targets' volumes) or Job (run your own Job, e.g. a database dump and restore).",
        ),
      ssh: z
        .object({
          host: text(253).min(1).describe("Address of the source VM, e.g. 10.0.2.20."),
          user: matching(/^[a-z_][a-z0-9_-]*$/, 32, "must be a Unix user name such as root")
            .default("root")
            .describe("SSH user (default root)."),
          privateKeySecretRef: localSecretKeyRef("Secret with the SSH private key.", "ssh-privatekey"),
          knownHosts: matching(
            /^\S+ (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?(\n\S+ (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?)*\n?$/,
            8192,
            "must be known_hosts lines such as 10.0.2.20 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…",
          )
            .optional()
            .describe(
              "The VM's SSH host keys as known_hosts lines (ssh-keyscan -t ed25519 10.0.2.20 prints one). Set: every sync connection checks the VM's key against them and refuses any other. Unset: the first connection of each Job trusts whatever key it is shown (trust on first use).",
            ),
          stopCommand: text(2048)
            .min(1)
            .optional()
            .describe(
              "Run on the VM over SSH right before the final sync, to stop what writes to the copied directories (e.g. docker compose -f /opt/app/compose.yaml stop). Required for Rsync.",
            ),
          startCommand: text(2048)
            .min(1)
            .optional()
            .describe(
              "Run on the VM over SSH on rollback after the final sync began, to start the services again (e.g. docker compose -f /opt/app/compose.yaml start).",
            ),
        })
        .optional()
        .describe("How to reach the source VM for Rsync."),
      image: imageReference()
        .default("instrumentisto/rsync-ssh:latest")
        .describe("Image with rsync and an SSH client that runs the Rsync Jobs."),
      paths: mapListOf(
        z
          .object({
            from: matching(/^\/[^\0]*$/, 1024, "must be an absolute path such as /srv/data").describe(
              "Directory on the VM, e.g. /srv/litellm.",
            ),
            target: dnsLabel().describe("Name of the target that owns the volume."),
            volume: dnsLabel().describe("Name of the target's volume to copy into."),
          })
          .describe("One directory to copy."),
        "from",
        16,
      )
        .default([])
        .describe("Directories to copy, keyed by source path."),
      job: freeForm()
        .optional()
        .describe(
          "For method Job: a batch/v1 Job spec, run twice in the target cluster (env SYNC_PHASE=initial while the VM serves, SYNC_PHASE=final before cutover); it must verify what it copied and fail otherwise.",
        ),
      reverseJob: freeForm()
        .optional()
        .describe(
          "A batch/v1 Job spec run on rollback after cutover, in the target cluster, once the Deployment and StatefulSet targets report no replicas (a HelmRelease's workloads are scaled to zero in the same pass but not waited for) and the VM runs again (env SYNC_PHASE=reverse): it copies back to the VM what the targets wrote since cutover, and must verify what it copied and fail otherwise. The VM's services may have started at its boot: a Job that overwrites their data stops them first (over SSH) and starts them after. The rollback completes only after it succeeded; a failed one leaves the writes in the targets' volumes and says so. For any method.",
        ),
      timeout: duration("1h")
        .default("1h")
        .describe("How long one sync Job may run (its activeDeadlineSeconds, default 1h)."),
    })
    .default({ method: "None", image: "instrumentisto/rsync-ssh:latest", paths: [], timeout: "1h" })
    .describe(
      "How data moves from the VM into the targets' volumes before cutover: a first sync while the VM serves, then a final one after its services stopped, each a Job; the targets start only after the final sync succeeded.",
    ),
  [
    {
      rule: "self.method != 'Rsync' || (has(self.ssh) && has(self.ssh.stopCommand) && size(self.paths) > 0)",
      message:
        "dataSync.method Rsync needs dataSync.ssh with stopCommand and at least one dataSync.paths entry",
      check: (d) => d.method !== "Rsync" || (d.ssh?.stopCommand !== undefined && d.paths.length > 0),
    },
    {
      rule: "(self.method == 'Job') == has(self.job)",
      message: "dataSync.job is set exactly when dataSync.method is Job",
      check: (d) => (d.method === "Job") === (d.job !== undefined),
    },
  ],
);

const Decommission = withRules(
  z
    .object({
      stopVM: z
        .boolean()
        .default(true)
        .describe("Stop the VM after cutover (default true); it restarts on rollback."),
      backup: z
        .object({
          storage: text(64).min(1).describe("Proxmox backup storage, e.g. pbs."),
          mode: z
            .enum(["snapshot", "stop"])
            .default("stop")
            .describe("vzdump mode (default stop: the VM is already off)."),
        })
        .optional()
        .describe("Back the VM up (vzdump) after it is stopped."),
      deleteAfter: duration("168h")
        .optional()
        .describe("Delete the VM this long after cutover (e.g. 168h); never deleted when unset."),
      requireApproval: z
        .boolean()
        .default(true)
        .describe(
          "Wait for the annotation homelab.shdr.ch/approve-retirement=true before deleting the VM (default true).",
        ),
    })
    .default({ stopVM: true, requireApproval: true })
    .describe("What happens to the source VM once the targets serve its traffic."),
  [
    {
      rule: "!has(self.deleteAfter) || (self.stopVM && has(self.backup))",
      message: "decommission.deleteAfter needs stopVM: true and a backup, so the VM can be restored",
      fieldPath: ".deleteAfter",
      check: (d) => d.deleteAfter === undefined || (d.stopVM && d.backup !== undefined),
    },
  ],
);

const Check = withRules(
  z
    .object({
      name: dnsLabel().describe("Check name, e.g. peanut-ui."),
      http: z
        .object({
          url: url(["http", "https"], "http://peanut.infra.svc:8080/").describe("URL to GET."),
          status: z.number().int().min(100).max(599).default(200).describe("Expected status (default 200)."),
          bodyContains: text(1024).optional().describe("Text the body must contain."),
        })
        .optional()
        .describe("An HTTP GET that must answer with this status (and body)."),
      tcp: z
        .object({
          host: text(253).min(1).describe("Host to connect to, e.g. nut-server.infra.svc."),
          port: z.number().int().min(1).max(65535).describe("Port, e.g. 3493."),
        })
        .optional()
        .describe("A TCP connection that must be accepted."),
    })
    .describe("One check run by the operator before cutover."),
  [
    {
      rule: "has(self.http) != has(self.tcp)",
      message: "a check is either http or tcp",
      check: (c) => (c.http !== undefined) !== (c.tcp !== undefined),
    },
  ],
);

const ProxmoxConnection = withRules(
  z
    .object({
      endpoint: url(["https"], "https://pve.home.shdr.ch:8006").describe("Base URL of the Proxmox VE API."),
      credentialsRef: secretRef("Secret with the API token: keys tokenID and secret."),
      caBundleRef: secretRef("Secret whose key ca.crt holds the PEM CA of the API certificate.").optional(),
      fingerprint: matching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, 95, "must be a SHA-256 fingerprint")
        .optional()
        .describe("Trust exactly this certificate, by SHA-256 fingerprint."),
    })
    .describe("Proxmox API connection, when no HomelabCluster provides one."),
  [
    {
      rule: "has(self.caBundleRef) != has(self.fingerprint)",
      message: "set exactly one of proxmox.caBundleRef or proxmox.fingerprint",
      check: (p) => (p.caBundleRef !== undefined) !== (p.fingerprint !== undefined),
    },
  ],
);

const WorkloadMigrationSpec = withRules(
  z
    .object({
      clusterRef: z
        .object({
          name: immutable(dnsLabel(), "clusterRef.name cannot change after creation").describe(
            "Name of the HomelabCluster; immutable.",
          ),
        })
        .optional()
        .describe(
          "HomelabCluster whose workload cluster runs the targets (through its <name>-kubeconfig Secret) and whose Proxmox connection reaches the VM, unless proxmox is set. Unset: the targets run in this (the management) cluster.",
        ),
      proxmox: ProxmoxConnection.optional(),
      source: z
        .object({
          vmid: immutable(
            z.number().int().min(100).max(999999999),
            "source.vmid cannot change; create a new WorkloadMigration for another VM",
          ).describe("Proxmox VM id of the VM being retired, e.g. 1010; immutable."),
          name: immutable(
            matching(
              /^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$/,
              63,
              "must be a Proxmox VM name such as ups-stack",
            ),
            "source.name cannot change; create a new WorkloadMigration for another VM",
          ).describe(
            "Name of the VM in Proxmox, e.g. ups-stack; immutable. The operator touches the VM only while its live id and name both match.",
          ),
          type: immutable(
            z.enum(["qemu", "lxc"]),
            "source.type cannot change; create a new WorkloadMigration for another guest",
          )
            .default("qemu")
            .describe(
              "Guest type: qemu (a VM) or lxc (a container); immutable. The operator touches the guest only while its live type, id and name all match.",
            ),
          proxmoxNode: matching(
            /^[a-zA-Z][-a-zA-Z0-9_.]*[a-zA-Z0-9]$/,
            64,
            "must be a Proxmox node id such as niobe",
          )
            .optional()
            .describe(
              "Proxmox node the VM ran on when the migration was written, for people only: the operator looks the node up live (HA may move the VM).",
            ),
          serviceURL: url(["http", "https"], "http://10.0.2.20:8080")
            .optional()
            .describe("Where the VM serves today, used to compare answers before cutover."),
        })
        .optional()
        .describe(
          "The VM being retired; unset for a new workload that replaces no VM (e.g. the Nuclei CronJob).",
        ),
      targets: mapListOf(Target, "name", 16)
        .default([])
        .describe("Workloads that replace the VM's services, keyed by name; none for a plain decommission."),
      dataSync: DataSync,
      verify: z
        .object({
          successThreshold: z
            .number()
            .int()
            .min(1)
            .max(100)
            .default(3)
            .describe("Consecutive passing health checks required (default 3)."),
          interval: duration("10s").default("10s").describe("Time between health checks (default 10s)."),
          timeout: duration("10m")
            .default("10m")
            .describe(
              "Give up after this long (default 10m): the migration stops there and the VM keeps running.",
            ),
          checks: mapListOf(Check, "name", 16)
            .default([])
            .describe("Checks that must all pass, besides every target being Ready, keyed by name."),
        })
        .default({ successThreshold: 3, interval: "10s", timeout: "10m", checks: [] })
        .describe("How the targets are verified before cutover."),
      cutover: z
        .object({
          mode: z
            .enum(["Manual", "Automatic"])
            .default("Manual")
            .describe(
              "Manual (default) waits for the annotation homelab.shdr.ch/approve-cutover=true; Automatic cuts over once verified.",
            ),
        })
        .default({ mode: "Manual" })
        .describe("When the route switches from the VM to the targets."),
      decommission: Decommission,
      dependsOn: setOf(dnsLabel().describe("Name of a WorkloadMigration in this namespace."), 16)
        .default([])
        .describe("WorkloadMigrations in this namespace that must be cut over first."),
      rollback: z
        .boolean()
        .default(false)
        .describe(
          "Set true to roll back (any step before the VM is deleted): start the VM again, remove the routes, scale the targets to zero.",
        ),
    })
    .describe("Desired migration of one VM's services into the cluster."),
  [
    {
      rule: "!has(self.source) || has(self.clusterRef) || has(self.proxmox)",
      message: "set clusterRef or proxmox, so the operator can reach the VM's Proxmox",
      check: (s) => s.source === undefined || s.clusterRef !== undefined || s.proxmox !== undefined,
    },
    {
      rule: "has(self.source) || (size(self.targets) > 0 && !has(self.decommission.backup) && !has(self.decommission.deleteAfter))",
      message: "without source there is no VM to back up or delete, and at least one target is needed",
      check: (s) =>
        s.source !== undefined ||
        (s.targets.length > 0 &&
          s.decommission.backup === undefined &&
          s.decommission.deleteAfter === undefined),
    },
    {
      rule: "self.dataSync.paths.all(p, self.targets.exists(t, t.name == p.target && has(t.template) && t.template.volumes.exists(v, v.name == p.volume)))",
      message: "every dataSync.paths entry must name a target and one of that target's template.volumes",
      fieldPath: ".dataSync.paths",
      check: (s) =>
        s.dataSync.paths.every((p) =>
          s.targets.some(
            (t) => t.name === p.target && (t.template?.volumes ?? []).some((v) => v.name === p.volume),
          ),
        ),
    },
  ],
);

export const WorkloadMigrationPhase = z.enum([
  "Pending",
  "Deploying",
  "Syncing",
  "Verifying",
  "AwaitingCutover",
  "CutOver",
  "VMStopped",
  "BackedUp",
  "Decommissioned",
  "RolledBack",
  "Failed",
]);

const WorkloadMigrationStatus = z
  .object({
    ...statusFields(),
    phase: WorkloadMigrationPhase.optional().describe("Where the migration stands."),
    sourceVMState: text(32)
      .optional()
      .describe("Power state of the VM when the migration started, for rollback."),
    targets: mapListOf(
      z
        .object({
          name: dnsLabel().describe("Target name."),
          ready: z.boolean().default(false).describe("Whether the workload is ready."),
          url: text(2048).optional().describe("Where the target answers."),
          message: text(1024).optional().describe("What the target is waiting for."),
        })
        .describe("Observed state of one target."),
      "name",
      16,
    )
      .optional()
      .describe("Per-target state."),
    cutoverTime: z.iso.datetime({ offset: true }).optional().describe("When traffic moved to the targets."),
    deleteAfterTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Earliest time the VM may be deleted."),
    backupVolumeID: text(512).optional().describe("Proxmox volume id of the VM backup."),
    proxmoxNode: text(64).optional().describe("Proxmox node the VM was last seen on (looked up live)."),
    verifyStartedTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When verification started; its timeout counts from here."),
    verifyPasses: z.number().int().min(0).optional().describe("Consecutive passing check rounds."),
    verifiedTime: z.iso.datetime({ offset: true }).optional().describe("When every check first passed."),
    stoppedTime: z.iso.datetime({ offset: true }).optional().describe("When the VM was seen stopped."),
    stopTask: text(512).optional().describe("UPID of the shutdown task while it runs."),
    deleteTask: text(512).optional().describe("UPID of the VM delete task while it runs."),
    startTask: text(512).optional().describe("UPID of the rollback's start task while it runs."),
    backupTask: text(512)
      .optional()
      .describe("UPID of the vzdump task, so a restart waits on it, never repeats it."),
    backupFailedTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When the last vzdump failed; the next one starts a minute later, not at once."),
    approvedBy: text(512)
      .optional()
      .describe("Field manager that set the approve-retirement annotation (from managedFields)."),
    retiredTime: z.iso.datetime({ offset: true }).optional().describe("When the VM was deleted."),
    diskFreedGiB: z.number().min(0).optional().describe("Disk the deleted VM occupied, in GiB."),
    rollbackMessage: text(2048).optional().describe("What rollback did and left, said plainly."),
    initialSyncTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When the first data sync Job succeeded (the VM still serving)."),
    finalSyncStartedTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When the final data sync Job was created (it stops the VM's services first)."),
    finalSyncTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When the final data sync Job succeeded; the targets start only after it."),
    rollbackSyncNote: text(512)
      .optional()
      .describe("What rollback did about the VM services the final sync stopped."),
    rolledBackTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe(
        "When the last rollback completed; everything verified, cut over, stopped or backed up before it is forgotten.",
      ),
    staleApprovals: z
      .array(text(128))
      .max(2)
      .optional()
      .describe(
        "Approve annotations that were set when the rollback completed: they count again only after being removed and set anew.",
      ),
    ramFreedMiB: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Memory returned to Proxmox by stopping the VM, in MiB."),
  })
  .describe("Observed state of the migration.");

export const WorkloadMigration = defineKind({
  kind: "WorkloadMigration",
  plural: "workloadmigrations",
  shortName: "wm",
  scope: "Namespaced",
  description:
    "WorkloadMigration moves the services of one Proxmox VM into the cluster: deploy targets, sync data, verify, cut the route over, stop, back up and finally delete the VM. Every step until deletion can be rolled back.",
  spec: WorkloadMigrationSpec,
  status: WorkloadMigrationStatus,
  rootRules: [
    {
      rule: "!(self.metadata.name in self.spec.dependsOn)",
      message: "a WorkloadMigration cannot depend on itself",
      fieldPath: ".spec.dependsOn",
      check: (o) => !o.spec.dependsOn.includes(o.metadata.name),
    },
  ],
  printerColumns: [
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Where the migration stands." },
    {
      name: "Ready",
      type: "string",
      jsonPath: conditionStatusPath("Ready"),
      description: "Ready condition.",
    },
    { name: "VM", type: "integer", jsonPath: ".spec.source.vmid", description: "Source VM id." },
    {
      name: "Node",
      type: "string",
      jsonPath: ".spec.source.proxmoxNode",
      description:
        "Node the VM ran on when the migration was written; the operator's live view is status.proxmoxNode.",
    },
    {
      name: "RAM Freed",
      type: "integer",
      jsonPath: ".status.ramFreedMiB",
      description: "MiB returned to Proxmox.",
    },
    {
      name: "Age",
      type: "date",
      jsonPath: ".metadata.creationTimestamp",
      description: "Time since creation.",
    },
  ],
});

export type WorkloadMigration = z.infer<typeof WorkloadMigration.schema>;
export type WorkloadMigrationSpec = z.infer<typeof WorkloadMigrationSpec>;
export type WorkloadMigrationStatus = z.infer<typeof WorkloadMigrationStatus>;
