// Every controller the operator runs, registered on one manager.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CatalogEntry } from "../components/catalog.ts";
import { findHelm } from "../components/helm-binary.ts";
import type { OperatorConfig } from "../config.ts";
import type { Dial } from "../proxmox/transport.ts";
import type { Manager } from "../runtime/index.ts";
import { appVendingController } from "./app-vending/controller.ts";
import { dialledConnections, directConnections } from "./homelab-cluster/connections.ts";
import { homelabClusterController } from "./homelab-cluster/controller.ts";
import { peerTenantController } from "./peer-tenant/controller.ts";
import { vendingQuotaController } from "./peer-tenant/vending-quota.ts";
import { platformComponentsController } from "./platform-components/controller.ts";
import { workloadMigrationController } from "./workload-migration/controller.ts";

/**
 * How controllers reach Proxmox and Talos. `dial` is given to every Proxmox and Talos client they make:
 * unset for a real homelab; local mode's seam to its simulators at the seed's addresses.
 */
export interface Connections {
  dial?: Dial;
  /** Local mode's loopback chart mirror (src/local/chart-mirror.ts), when it was started with one. */
  chartMirror?: (entry: CatalogEntry, version: string) => string | undefined;
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
      ownerNaming: config.peerTenantOwnerNaming,
      watchCilium: config.peerTenantWatchCilium,
    }),
  );
  // The image ships the pinned binary at HOMELAB_OPERATOR_HELM (Dockerfile); a laptop (local mode too)
  // finds build-helm.sh's cached build or a helm on PATH.
  const helm = findHelm();
  manager.addController(
    platformComponentsController({
      helmPath: helm.path,
      helmChecked: helm.checked,
      ...(connections.chartMirror ? { mirrorFor: connections.chartMirror } : {}),
      helmStateDir: join(tmpdir(), "homelab-operator-helm"),
      operatorNamespace: config.namespace,
    }),
  );
  manager.addController(vendingQuotaController());
  manager.addController(
    appVendingController({
      operatorNamespace: config.namespace,
      operatorUsernames: config.operatorUsernames,
    }),
  );
  manager.addController(
    workloadMigrationController({
      operatorNamespace: config.namespace,
      maxConcurrentReconciles: config.maxConcurrentReconciles,
      ...(connections.dial ? { dial: connections.dial } : {}),
      // The same binary for HelmRelease targets ("" records that the lookup found none).
      helm: { path: helm.path ?? "", checked: helm.checked },
    }),
  );
}
