export { AppVending } from "./app-vending.ts";
export { HomelabCluster } from "./homelab-cluster.ts";
export { API_VERSION, GROUP, VERSION } from "./kind.ts";
export { PeerTenant } from "./peer-tenant.ts";
export { WorkloadMigration } from "./workload-migration.ts";

import { AppVending } from "./app-vending.ts";
import { HomelabCluster } from "./homelab-cluster.ts";
import type { AnyKind } from "./kind.ts";
import { PeerTenant } from "./peer-tenant.ts";
import { WorkloadMigration } from "./workload-migration.ts";

/** Every kind this operator serves, in the order their CRDs are generated and installed. */
export const KINDS: readonly AnyKind[] = [HomelabCluster, PeerTenant, AppVending, WorkloadMigration];
