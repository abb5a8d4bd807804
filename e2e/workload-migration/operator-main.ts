// The operator as its own process for the WorkloadMigration crash test (kill -9 must hit a real
// process): the real runtime and controller, nothing else. Env: KUBECONFIG, HEALTH_PORT, LOG_LEVEL.
import { KubeConfig } from "@kubernetes/client-node";
import { workloadMigrationController } from "../../src/controllers/workload-migration/controller.ts";
import { createLogger, Manager } from "../../src/runtime/index.ts";

if (process.argv[1] === import.meta.filename) {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG ?? "");
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? "info", name: "homelab-operator" });
  const manager = new Manager({
    kubeConfig: kc,
    logger,
    healthPort: Number(process.env.HEALTH_PORT ?? 0),
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(workloadMigrationController({ operatorNamespace: "homelab-system" }));
  process.on("SIGTERM", () => void manager.stop().then(() => process.exit(0)));
  await manager.start();
  logger.info("operator running");
}
