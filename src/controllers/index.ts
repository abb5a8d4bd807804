// Every controller the operator runs, registered on one manager.
import type { OperatorConfig } from "../config.ts";
import type { Manager } from "../runtime/index.ts";
import { appVendingController } from "./app-vending/controller.ts";
import { peerTenantController } from "./peer-tenant/controller.ts";
import { vendingQuotaController } from "./peer-tenant/vending-quota.ts";

export function registerControllers(manager: Manager, config: OperatorConfig): void {
  manager.addController(
    peerTenantController({
      operatorNamespace: config.namespace,
      operatorUsernames: config.operatorUsernames,
    }),
  );
  manager.addController(vendingQuotaController());
  manager.addController(
    appVendingController({
      operatorNamespace: config.namespace,
      operatorUsernames: config.operatorUsernames,
    }),
  );
}
