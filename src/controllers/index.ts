// Every controller the operator runs, registered on one manager.
import type { OperatorConfig } from "../config.ts";
import type { Dial } from "../proxmox/transport.ts";
import type { Manager } from "../runtime/index.ts";
import { dialledConnections, directConnections } from "./homelab-cluster/connections.ts";
import { homelabClusterController } from "./homelab-cluster/controller.ts";
import { peerTenantController } from "./peer-tenant/controller.ts";

/**
 * How controllers reach Proxmox and Talos. `dial` is given to every Proxmox and Talos client they make:
 * unset for a real homelab; local mode's seam to its simulators at the seed's addresses.
 */
export interface Connections {
  dial?: Dial;
}

export function registerControllers(
  manager: Manager,
  config: OperatorConfig,
  connections: Connections = {},
): void {
  manager.addController(
    homelabClusterController({
      namespace: config.namespace,
      connections: connections.dial ? dialledConnections(connections.dial) : directConnections,
    }),
  );
  manager.addController(
    peerTenantController({
      operatorNamespace: config.namespace,
      operatorUsernames: config.operatorUsernames,
      maxConcurrentReconciles: config.maxConcurrentReconciles,
    }),
  );
}
