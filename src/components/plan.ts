// Dependency order and blocking, as pure functions so every rule is unit-tested.
import type { CatalogEntry } from "./catalog.ts";

/** Kahn's algorithm, ties broken by catalog order so the plan is stable between reconciles. */
export function installOrder(entries: readonly CatalogEntry[]): CatalogEntry[] {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const placed = new Set<string>();
  const out: CatalogEntry[] = [];
  while (out.length < entries.length) {
    const next = entries.find(
      (e) => !placed.has(e.name) && e.dependsOn.every((d) => placed.has(d) || !byName.has(d)),
    );
    if (!next) {
      const rest = entries.filter((e) => !placed.has(e.name)).map((e) => e.name);
      throw new Error(`dependency cycle among ${rest.join(", ")}`);
    }
    placed.add(next.name);
    out.push(next);
  }
  return out;
}

/**
 * The dependencies of `entry` that are not ready, enabled or not. A disabled dependency blocks too:
 * installing Knative without Cilium would only produce pods that never start.
 */
export function blockers(entry: CatalogEntry, ready: ReadonlySet<string>): string[] {
  return entry.dependsOn.filter((d) => !ready.has(d));
}

/** Enabled components that depend on `name`: it may not be removed while any exists. */
export function dependents(name: string, enabled: readonly CatalogEntry[]): string[] {
  return enabled.filter((e) => e.dependsOn.includes(name)).map((e) => e.name);
}
