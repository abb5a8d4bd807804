// Every controller the operator runs, registered on one manager.
import type { OperatorConfig } from "../config.ts";
import type { Manager } from "../runtime/index.ts";
import { peerTenantController } from "./peer-tenant/controller.ts";

export function registerControllers(manager: Manager, config: OperatorConfig): void {
  manager.addController(
    peerTenantController({
      operatorNamespace: config.namespace,
      operatorUsernames: config.operatorUsernames,
      maxConcurrentReconciles: config.maxConcurrentReconciles,
    }),
  );
}
