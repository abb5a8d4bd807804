// The operator process. With a kubeconfig or an in-cluster service account it manages that cluster;
// with neither it starts an embedded local control plane, installs the CRDs and runs there.
// Type-only: the client-node package is loaded only where it is needed (CRD install, local mode), since
// importing it costs ~80 MiB RSS (src/runtime/kubeconfig.ts).
import type { KubeConfig } from "@kubernetes/client-node";
import { loadConfig, type OperatorConfig } from "./config.ts";
import { type Connections, registerControllers } from "./controllers/index.ts";
import { localLogDestination } from "./local/log-file.ts";
import type { Dial } from "./proxmox/transport.ts";
import { createLogger, KubeClient, Manager } from "./runtime/index.ts";
import {
  inClusterConfig,
  loadKubeconfigFile,
  type RestConfig,
  UnsupportedKubeconfigError,
} from "./runtime/kubeconfig.ts";

// Local mode on a terminal: JSON logs to a file, progress lines on the terminal (src/local/homelab.ts).
const localLog = localLogDestination(process.env, process.stdout.isTTY === true);
const logger = createLogger({
  name: "homelab-operator",
  ...(localLog ? { destination: localLog.destination } : {}),
});

interface Cluster {
  /** What the Manager and clients use. */
  kubeConfig: RestConfig | KubeConfig;
  /** client-node's KubeConfig of the same cluster, for the few callers built on its API clients. */
  clientNode(): Promise<KubeConfig>;
  /** Local mode's seam to the simulators at the seed's addresses; unset when managing a real homelab. */
  dial?: Dial;
  /** Local mode's chart mirror (HOMELAB_LOCAL_CHARTS), when started with one. */
  chartMirror?: Connections["chartMirror"];
  stop(): Promise<void>;
}

async function clientNodeConfig(load: (kc: KubeConfig) => void): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  load(kc);
  return kc;
}

async function connect(config: OperatorConfig): Promise<Cluster> {
  switch (config.cluster.mode) {
    case "kubeconfig": {
      const path = config.cluster.path;
      const clientNode = () => clientNodeConfig((kc) => kc.loadFromFile(path));
      let kubeConfig: RestConfig | KubeConfig;
      try {
        kubeConfig = loadKubeconfigFile(path);
      } catch (err) {
        if (!(err instanceof UnsupportedKubeconfigError)) throw err;
        logger.info({ feature: err.message }, "Kubeconfig needs client-node's loader");
        kubeConfig = await clientNode();
      }
      logger.info({ kubeconfig: path, server: new KubeClient(kubeConfig).server }, "Using kubeconfig");
      return { kubeConfig, clientNode, stop: async () => {} };
    }
    case "in-cluster":
      logger.info("Using the in-cluster service account");
      return {
        kubeConfig: inClusterConfig(),
        clientNode: () => clientNodeConfig((kc) => kc.loadFromCluster()),
        stop: async () => {},
      };
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
      const kubeConfig = local.kubeConfig;
      return {
        kubeConfig,
        clientNode: async () => kubeConfig,
        dial: local.dial,
        ...(local.chartMirror ? { chartMirror: local.chartMirror } : {}),
        stop: local.stop,
      };
    }
  }
}

async function ensureNamespace(kubeConfig: RestConfig | KubeConfig, name: string): Promise<void> {
  await new KubeClient(kubeConfig).apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const cluster = await connect(config);
  if (config.installCRDs) {
    const { installCRDs } = await import("./crds/install.ts");
    await installCRDs(await cluster.clientNode());
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
  registerControllers(manager, config, {
    ...(cluster.dial ? { dial: cluster.dial } : {}),
    ...(cluster.chartMirror ? { chartMirror: cluster.chartMirror } : {}),
  });
  if (config.cluster.mode === "local") {
    // Local mode plays the Crossplane providers (and Knative's readiness) so AppVendings turn Ready there.
    const { startProviderStandIn } = await import("./local/provider-stand-in/setup.ts");
    await startProviderStandIn(manager, await cluster.clientNode());
  }

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
