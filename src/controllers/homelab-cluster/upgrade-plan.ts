// Which Talos versions a rolling upgrade passes through, and in which order the nodes go. Pure: the
// controller feeds it what it read (node versions, the Image Factory's version list) and acts on the
// answer. Talos only tests upgrades between adjacent minors and asks for "the latest patch release of
// all intermediate minor releases" (docs: upgrading-talos, "Supported upgrade paths"), so the path is:
// the latest patch of the current minor (when newer), then of each minor in between, then the target.
import type { HomelabClusterNode } from "../../crds/homelab-cluster.ts";
import { parseVersion, type SemVer } from "../../talos/config/version.ts";

export type TalosPath =
  | { ok: true; hops: string[] }
  | { ok: false; reason: "TalosDowngradeRefused" | "TalosVersionUnavailable"; message: string };

function compare(a: SemVer, b: SemVer): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** Released versions only: a pre-release (v1.14.0-beta.1) is never a stop on the way. */
function releases(available: readonly string[]): { text: string; v: SemVer }[] {
  return available
    .filter((t) => /^v\d+\.\d+\.\d+$/.test(t))
    .map((text) => ({ text, v: parseVersion(text) }))
    .sort((a, b) => compare(a.v, b.v));
}

function latestPatch(list: { text: string; v: SemVer }[], major: number, minor: number) {
  return list.filter((r) => r.v.major === major && r.v.minor === minor).at(-1);
}

/**
 * The versions to upgrade through, from `current` to `target`, excluding `current`. `available` is what
 * the Image Factory builds (GET /versions); the target must be among them. Downgrades and major jumps are
 * refused: Talos rolls back by its own A/B boot, not by installing an older image.
 */
export function talosPath(current: string, target: string, available: readonly string[]): TalosPath {
  const from = parseVersion(current);
  const to = parseVersion(target);
  if (compare(to, from) < 0)
    return {
      ok: false,
      reason: "TalosDowngradeRefused",
      message: `talos.version ${target} is older than ${current} running on the nodes; downgrades are not rolled out`,
    };
  if (to.major !== from.major)
    return {
      ok: false,
      reason: "TalosVersionUnavailable",
      message: `no upgrade path from ${current} to ${target} across a major version`,
    };
  if (compare(to, from) === 0) return { ok: true, hops: [] };
  const list = releases(available);
  if (!list.some((r) => r.text === target))
    return {
      ok: false,
      reason: "TalosVersionUnavailable",
      message: `the Image Factory does not list ${target}`,
    };
  const hops: string[] = [];
  for (let minor = from.minor; minor < to.minor; minor++) {
    const latest = latestPatch(list, from.major, minor);
    if (minor === from.minor) {
      if (latest && compare(latest.v, from) > 0) hops.push(latest.text);
      continue;
    }
    if (!latest)
      return {
        ok: false,
        reason: "TalosVersionUnavailable",
        message: `the Image Factory lists no release of v${from.major}.${minor}, needed on the way from ${current} to ${target}`,
      };
    hops.push(latest.text);
  }
  hops.push(target);
  return { ok: true, hops };
}

/** Control planes first (spec order), then workers (spec order): the same order on every pass. */
export function upgradeOrder(nodes: readonly HomelabClusterNode[]): HomelabClusterNode[] {
  return [
    ...nodes.filter((n) => n.role === "controlplane"),
    ...nodes.filter((n) => n.role !== "controlplane"),
  ];
}

/** The lowest of the versions (they all parse). */
export function lowestVersion(versions: readonly string[]): string | undefined {
  return [...versions].sort((a, b) => compare(parseVersion(a), parseVersion(b)))[0];
}
