// `npm start` with no cluster configured: a whole homelab on this machine. The management cluster the
// operator runs in, the workload cluster the Talos machines "run" (with KWOK as their kubelets), and
// the Proxmox VE and Talos simulators at the seed's addresses (through one dial seam). Everything is
// kept under the user's data folder, so a stopped or killed `npm start` resumes where it was;
// `npm start -- --reset` (or HOMELAB_LOCAL_RESET=true) starts from nothing. See README "Local mode".
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import type { CatalogEntry } from "../components/catalog.ts";
import { findHelm } from "../components/helm-binary.ts";
import type { Dial } from "../proxmox/transport.ts";
import { KubeClient, type Logger } from "../runtime/index.ts";
import { applyApprovalPolicy } from "./approval-policy.ts";
import { type LocalChartMirror, mirrorRepositoryFor, startLocalChartMirror } from "./chart-mirror.ts";
import { type ControlPlane, startControlPlane } from "./control-plane/control-plane.ts";
import { killStaleProcesses } from "./control-plane/stale.ts";
import { watchLocalCredentials } from "./credentials.ts";
import { printProgress } from "./progress.ts";
import { type LocalSimulators, startLocalSimulators } from "./simulators.ts";
import { localStateDir } from "./state-dir.ts";
import { startWorkloadCluster, type WorkloadCluster } from "./workload-cluster.ts";

export { localStateDir, resetRequested } from "./state-dir.ts";

export interface LocalHomelab {
  stateDir: string;
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  workloadKubeconfigPath: string;
  simulators: LocalSimulators;
  /** Where connections to the seed's addresses go (pass to the Proxmox and Talos clients). */
  dial: Dial;
  /** With HOMELAB_LOCAL_CHARTS: the loopback mirror's repository for a component it serves. */
  chartMirror?: (entry: CatalogEntry, version: string) => string | undefined;
  stop(): Promise<void>;
}

export async function startLocalHomelab(options: {
  namespace: string;
  logger: Logger;
  reset: boolean;
  stateDir?: string;
  /** Where the JSON logs go when not to stdout (said on the terminal). */
  logFile?: string;
  /** The terminal: progress lines and how to reach the clusters. Default: stderr. */
  terminal?: (line: string) => void;
}): Promise<LocalHomelab> {
  const terminal = options.terminal ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const { logger, namespace } = options;
  const stateDir = options.stateDir ?? localStateDir();
  const dirs = {
    management: join(stateDir, "management"),
    workload: join(stateDir, "workload"),
    simulators: join(stateDir, "simulators"),
  };
  if (options.reset) {
    // Processes a killed earlier run left on this data go first, then the data.
    // A folder still in use by a running `npm start` is refused here (never deleted under it).
    for (const dir of [dirs.management, dirs.workload]) {
      await killStaleProcesses(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
    await rm(stateDir, { recursive: true, force: true });
    logger.info({ stateDir }, "Local homelab reset: starting from nothing");
  }
  await mkdir(dirs.simulators, { recursive: true, mode: 0o700 });
  logger.info({ stateDir }, "Starting the local homelab (management and workload control planes)");

  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
  };
  try {
    const [management, workload] = await Promise.all([
      startControlPlane({ name: "management", dir: dirs.management, handleSignals: false }).then(
        (cp: ControlPlane) => {
          started.push(cp);
          return cp;
        },
      ),
      startWorkloadCluster({
        dir: dirs.workload,
        apiAddresses: ["10.0.3.16", "10.0.3.17", "10.0.3.18", "10.0.3.19"],
        onError: (err) => logger.warn({ err }, "Workload cluster: CNI readiness sync failed"),
      }).then((w: WorkloadCluster) => {
        started.push(w);
        return w;
      }),
    ]);
    logger.info(
      { server: workload.controlPlane.server },
      `Workload cluster (what the Talos machines run) ready: ${workload.controlPlane.kubeconfigPath}`,
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(management.kubeconfigPath);
    const client = new KubeClient(kubeConfig);
    await client.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    await restrictApprovals(client, logger);

    const simulators = await startLocalSimulators({
      dir: dirs.simulators,
      workload,
      log: (line) => logger.debug({ component: "talos-simulator" }, line),
    });
    started.push(simulators);
    const credentials = watchLocalCredentials(client, namespace, simulators, logger);
    started.push(credentials);
    await credentials.ready;
    logger.info(
      { proxmox: simulators.proxmox.url, talos: simulators.talosEndpoints },
      `Proxmox VE and Talos simulators running at the seed's addresses; credentials in ${namespace}/proxmox-token and ${namespace}/proxmox-ca`,
    );
    logger.info(
      { server: management.server, stateDir },
      `Local control plane ready; use it with: export KUBECONFIG=${management.kubeconfigPath}`,
    );
    terminal(
      [
        `Local homelab ready (state in ${stateDir}; \`npm start -- --reset\` starts from nothing).`,
        `  Management cluster:  export KUBECONFIG=${management.kubeconfigPath}`,
        `  Workload cluster:    ${workload.controlPlane.kubeconfigPath} (what the Talos machines run)`,
        `  Proxmox VE: https://pve.home.shdr.ch:8006, Talos: 10.0.3.16-18 (simulated, reached through local mode)`,
        ...(options.logFile ? [`  JSON logs:           ${options.logFile}`] : []),
        "Progress of HomelabClusters, PeerTenants, AppVendings and WorkloadMigrations:",
      ].join("\n"),
    );
    started.push(printProgress(client, terminal));
    const mirror = await startMirror(logger);
    if (mirror) started.push(mirror);
    return {
      stateDir,
      kubeConfig,
      kubeconfigPath: management.kubeconfigPath,
      workloadKubeconfigPath: workload.controlPlane.kubeconfigPath,
      simulators,
      dial: simulators.dial,
      ...(mirror
        ? {
            chartMirror: (entry: CatalogEntry, version: string) =>
              mirrorRepositoryFor(mirror, entry, version),
          }
        : {}),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Who may approve a migration, as the chart has it (see approval-policy.ts); said when it cannot be. */
async function restrictApprovals(client: KubeClient, logger: Logger): Promise<void> {
  const helm = findHelm();
  if (!helm.path) {
    logger.warn(
      { checked: helm.checked },
      "No Helm binary: the chart's migration-approval policy is not applied, so any user who may patch a WorkloadMigration can approve it here",
    );
    return;
  }
  const applied = await applyApprovalPolicy(client, helm.path);
  logger.info({ applied }, "Migration approvals restricted to the chart's migrationApprovers.groups");
}

/**
 * HOMELAB_LOCAL_CHARTS names a folder of unpacked charts (`<chart>-<version>/`, the layout of
 * ../shared/reference/charts): served on loopback, so the components install without internet. Unset:
 * none, and the components controller pulls from upstream (offline it says so per component).
 */
async function startMirror(logger: Logger): Promise<LocalChartMirror | undefined> {
  const dir = process.env.HOMELAB_LOCAL_CHARTS;
  if (!dir) return undefined;
  const helm = findHelm();
  if (!helm.path) {
    logger.warn(
      { checked: helm.checked },
      "HOMELAB_LOCAL_CHARTS is set but no Helm binary was found: no chart mirror",
    );
    return undefined;
  }
  const mirror = await startLocalChartMirror(helm.path, dir);
  logger.info(
    { url: mirror.url, charts: Object.fromEntries(mirror.charts), skipped: mirror.skipped },
    `Chart mirror for the platform components on ${mirror.url} (from ${dir})`,
  );
  return mirror;
}
