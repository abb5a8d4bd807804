// status.upgrade holds one part per rollout (talos, kubernetes); each phase sets its own part and keeps
// the other's. A part that is done is left out, and an empty block is left out entirely (the status
// apply then drops the field; an empty object would not).
import type { HomelabClusterStatus } from "../../crds/homelab-cluster.ts";
import type { Scope } from "./scope.ts";

type Upgrade = NonNullable<HomelabClusterStatus["upgrade"]>;

/** The block as this pass has it so far: what a phase set, else what the last status said. */
export function currentUpgrade(scope: Scope): Upgrade | undefined {
  return "upgrade" in scope.status ? scope.status.upgrade : scope.previous.upgrade;
}

export function setUpgradePart<K extends keyof Upgrade>(
  scope: Scope,
  part: K,
  value: Upgrade[K] | undefined,
) {
  const next: Upgrade = { ...currentUpgrade(scope) };
  if (value === undefined) delete next[part];
  else next[part] = value;
  scope.status.upgrade = Object.keys(next).length ? next : undefined;
}
