// The operator process. With a kubeconfig or an in-cluster service account it manages that cluster;
// with neither it starts an embedded local control plane, installs the CRDs and runs there.
import { KubeConfig } from "@kubernetes/client-node";
import { loadConfig, type OperatorConfig } from "./config.ts";
import { registerControllers } from "./controllers/index.ts";
import { installCRDs } from "./crds/install.ts";
import { localLogDestination } from "./local/log-file.ts";
import type { Dial } from "./proxmox/transport.ts";
import { createLogger, KubeClient, Manager } from "./runtime/index.ts";

// Local mode on a terminal: JSON logs to a file, progress lines on the terminal (src/local/homelab.ts).
const localLog = localLogDestination(process.env, process.stdout.isTTY === true);
const logger = createLogger({
  name: "homelab-operator",
  ...(localLog ? { destination: localLog.destination } : {}),
});

interface Cluster {
  kubeConfig: KubeConfig;
  /** Local mode's seam to the simulators at the seed's addresses; unset when managing a real homelab. */
  dial?: Dial;
  stop(): Promise<void>;
}

async function connect(config: OperatorConfig): Promise<Cluster> {
  const kubeConfig = new KubeConfig();
  switch (config.cluster.mode) {
    case "kubeconfig":
      kubeConfig.loadFromFile(config.cluster.path);
      logger.info(
        { kubeconfig: config.cluster.path, server: kubeConfig.getCurrentCluster()?.server },
        "Using kubeconfig",
      );
      return { kubeConfig, stop: async () => {} };
    case "in-cluster":
      kubeConfig.loadFromCluster();
      logger.info("Using the in-cluster service account");
      return { kubeConfig, stop: async () => {} };
    case "local": {
      // Imported lazily: only local mode needs the embedded homelab (and Go, on first use).
      const { startLocalHomelab, resetRequested } = await import("./local/homelab.ts");
      logger.info("No kubeconfig and not in a cluster: starting the local homelab");
      const reset = resetRequested(process.argv.slice(2));
      const local = await startLocalHomelab({
        namespace: config.namespace,
        logger,
        reset,
        ...(localLog ? { logFile: localLog.file } : {}),
      });
      return { kubeConfig: local.kubeConfig, dial: local.dial, stop: local.stop };
    }
  }
}

async function ensureNamespace(kubeConfig: KubeConfig, name: string): Promise<void> {
  await new KubeClient(kubeConfig).apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const cluster = await connect(config);
  if (config.installCRDs) {
    await installCRDs(cluster.kubeConfig);
    logger.info("CRDs installed");
  }
  await ensureNamespace(cluster.kubeConfig, config.namespace);
  const manager = new Manager({
    kubeConfig: cluster.kubeConfig,
    logger,
    healthPort: config.healthPort,
    healthHost: config.healthHost,
    maxConcurrentReconciles: config.maxConcurrentReconciles,
    ...(config.leaderElection
      ? { leaderElection: { name: "homelab-operator", namespace: config.namespace } }
      : {}),
  });
  registerControllers(manager, config, { dial: cluster.dial });

  // One shutdown path: stop reconciling (and release the lease), then the local control plane, then exit.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "Shutting down");
    void manager
      .stop()
      .then(() => cluster.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "Shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  await manager.start();
  logger.info({ healthPort: manager.healthPort, mode: config.cluster.mode }, "homelab-operator is running");
  // Rejects at once when the lease is lost (in-flight reconciles are aborted, not drained): exit non-zero
  // so the Deployment restarts us as a fresh standby, as controller-runtime does.
  await manager.done().catch(async (err: unknown) => {
    logger.error({ err }, "Manager stopped with an error");
    await cluster.stop();
    process.exit(1);
  });
}

main().catch((err: unknown) => {
  logger.error({ err }, "homelab-operator failed to start");
  process.exit(1);
});
