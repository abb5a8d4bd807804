// The operator as its own process for the HomelabCluster suites (kill -9 must hit a real process): the
// real runtime and controller, with the homelab's addresses mapped onto the simulators (the seam local
// mode also uses). Env: KUBECONFIG, HOMELAB_ADDRESSES (JSON AddressMap), HEALTH_PORT, LOG_LEVEL.
import { KubeConfig } from "@kubernetes/client-node";
import type { Connections } from "../../src/controllers/homelab-cluster/connections.ts";
import { homelabClusterController } from "../../src/controllers/homelab-cluster/controller.ts";
import { createLogger, Manager } from "../../src/runtime/index.ts";
import type { AddressMap } from "./homelab.ts";

export const OPERATOR_NAMESPACE = "homelab-system";

export function mappedConnections(map: AddressMap): Connections {
  const talos = (ip: string) => {
    const endpoint = map.talos[ip];
    if (!endpoint) throw new Error(`no simulated machine at ${ip}`);
    return endpoint;
  };
  return {
    proxmoxUrl: () => map.proxmoxUrl,
    talosEndpoint: talos,
    probeTargets: (ip) => {
      const [host, port] = talos(ip).split(":");
      return [{ host: host!, port: Number(port) }];
    },
  };
}

if (process.argv[1] === import.meta.filename) {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG ?? "");
  const map = JSON.parse(process.env.HOMELAB_ADDRESSES ?? "{}") as AddressMap;
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? "info", name: "homelab-operator" });
  const manager = new Manager({
    kubeConfig: kc,
    logger,
    healthPort: Number(process.env.HEALTH_PORT ?? 0),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(
    homelabClusterController({
      namespace: OPERATOR_NAMESPACE,
      connections: mappedConnections(map),
      timings: {
        pollMs: Number(process.env.POLL_MS ?? 150),
        blockedMs: 1_000,
        resyncMs: Number(process.env.RESYNC_MS ?? 3_000),
      },
      maxBackoffMs: 2_000,
    }),
  );
  process.on("SIGTERM", () => void manager.stop().then(() => process.exit(0)));
  await manager.start();
  logger.info("operator running");
}
