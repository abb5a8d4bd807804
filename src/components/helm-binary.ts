// Which Helm binary the components controller runs, and what was looked at to find it. The operator image
// sets HOMELAB_OPERATOR_HELM (Dockerfile); a laptop (local mode, `npm start` with a kubeconfig) finds the
// pinned binary deploy/helm/build-helm.sh left in the peer cache, or a helm on PATH. When none is there the
// controller says so in ComponentsReady instead of failing each component with a spawn error. A helm on
// PATH is anybody's: it is taken only when it says it is Helm v4 (the driver uses v4's flags and its
// server-side apply), so a Helm v3 there is skipped and named rather than used silently.
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";

/** The pin of deploy/helm/build-helm.sh (a unit test keeps the two equal). */
export const PINNED_HELM_VERSION = "v4.3.1";

export interface HelmLookup {
  /** The binary to run; undefined when none was found. */
  path?: string;
  /** Each place looked at and what was found there, for the Condition when nothing is. */
  checked: string[];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The folder scripts/lib/peer-build.sh caches peers in (same variables, same order). */
export function peerCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.HOMELAB_OPERATOR_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "homelab-operator")
  );
}

export function findHelm(env: NodeJS.ProcessEnv = process.env): HelmLookup {
  const checked: string[] = [];
  const explicit = env.HOMELAB_OPERATOR_HELM;
  if (explicit) {
    // Set on purpose: never fall back to another binary behind the user's back.
    if (executable(explicit)) return { path: explicit, checked: [`HOMELAB_OPERATOR_HELM=${explicit}`] };
    return { checked: [`HOMELAB_OPERATOR_HELM=${explicit} (not an executable file)`] };
  }
  checked.push("HOMELAB_OPERATOR_HELM (unset)");
  const cached = join(peerCacheRoot(env), `helm-${PINNED_HELM_VERSION}`, "helm");
  if (executable(cached)) return { path: cached, checked: [...checked, cached] };
  checked.push(`${cached} (absent; deploy/helm/build-helm.sh builds it)`);
  let skipped = false;
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const onPath = join(dir, "helm");
    if (!executable(onPath)) continue;
    const version = helmVersion(onPath);
    if (version?.startsWith(`${HELM_MAJOR}.`))
      return { path: onPath, checked: [...checked, `${onPath} (${version})`] };
    checked.push(
      `${onPath} (${version ?? "no version answer"}: not Helm ${HELM_MAJOR}, the pin is ${PINNED_HELM_VERSION})`,
    );
    skipped = true;
  }
  if (!skipped) checked.push("helm on PATH (absent)");
  return { checked };
}

const HELM_MAJOR = PINNED_HELM_VERSION.split(".")[0] as string;

/** What `helm version` prints as its version (v4.3.1), or undefined when it does not answer in time. */
function helmVersion(path: string): string | undefined {
  try {
    const out = execFileSync(path, ["version", "--template", "{{.Version}}"], {
      encoding: "utf8",
      timeout: 10_000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}
