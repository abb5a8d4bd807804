// Every name the WorkloadMigration controller gives to things, and the annotations people set. Derived
// from the migration alone, so a restarted operator finds its objects again.
export const MIGRATION_LABEL = "homelab.shdr.ch/migration";
export const TARGET_LABEL = "app.kubernetes.io/name";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "homelab-operator";

export const APPROVE_CUTOVER = "homelab.shdr.ch/approve-cutover";
export const APPROVE_RETIREMENT = "homelab.shdr.ch/approve-retirement";

/** HomelabCluster VMs carry this tag prefix (homelab-cluster.<name>); such a VM is never migrated. */
export const CLUSTER_TAG_PREFIX = "homelab-cluster.";

/** The Gateway every cutover route attaches to (the seed's main-gateway). */
export const GATEWAY = { name: "main-gateway" } as const;

export const CONDITIONS = [
  "DependenciesCutOver",
  "SourceVerified",
  "Deployed",
  "DataSynced",
  "Verified",
  "CutOver",
  "VMStopped",
  "BackedUp",
  "Retired",
] as const;
export type StepCondition = (typeof CONDITIONS)[number];

export function labelsFor(migration: string, target: string): Record<string, string> {
  return { [MIGRATION_LABEL]: migration, [TARGET_LABEL]: target, [MANAGED_BY_LABEL]: MANAGED_BY };
}
