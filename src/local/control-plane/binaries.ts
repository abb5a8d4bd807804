// Finds (or builds once, through build-control-plane.sh and build-kwok.sh) the control-plane binaries
// and kwok. The scripts own caching, the pins and the override conventions; this only calls them.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface ControlPlaneBinaries {
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
  /** The pinned kubectl when this folder has one (KUBEBUILDER_ASSETS may not), else kubectl from PATH. */
  kubectl: string;
}

/** Runs a build script and resolves with the last line it prints (the binary or folder it made). */
function runBuildScript(name: string): Promise<string> {
  // From the checkout's src/ even when this module runs from tsc's output in dist/ (scripts/build.ts):
  // the scripts source scripts/lib/ relative to themselves. Both folders sit one level below the root.
  const script = fileURLToPath(new URL(`../../../src/local/control-plane/${name}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", reject);
    // "close", not "exit": stdout may still hold the last line when the process has exited.
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop();
      if (code !== 0 || !last) reject(new Error(`${name} failed with exit code ${code}`));
      else resolve(last);
    });
  });
}

let controlPlane: Promise<ControlPlaneBinaries> | undefined;
export interface KwokBinary {
  binary: string;
  /** kwok's own pod Stages of the pinned version (kwok v0.8 has no built-in stages). */
  podStages: string[];
}

let kwok: Promise<KwokBinary> | undefined;

export function ensureControlPlaneBinaries(): Promise<ControlPlaneBinaries> {
  controlPlane ??= runBuildScript("build-control-plane.sh").then(
    (dir) => ({
      dir,
      kubeApiserver: `${dir}/kube-apiserver`,
      kubeControllerManager: `${dir}/kube-controller-manager`,
      kubeScheduler: `${dir}/kube-scheduler`,
      etcd: `${dir}/etcd`,
      kubectl: existsSync(`${dir}/kubectl`) ? `${dir}/kubectl` : "kubectl",
    }),
    (err: unknown) => {
      controlPlane = undefined;
      throw err;
    },
  );
  return controlPlane;
}

/** The pinned kwok binary (sigs.k8s.io/kwok) and the pod Stages shipped with it. */
export function ensureKwokBinary(): Promise<KwokBinary> {
  kwok ??= runBuildScript("build-kwok.sh").then(
    (binary) => {
      const dir = join(dirname(binary), "stages");
      const podStages = existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => /^pod-.*\.yaml$/.test(f))
            .map((f) => join(dir, f))
        : [];
      if (podStages.length === 0) throw new Error(`no kwok pod stages in ${dir} (see build-kwok.sh)`);
      return { binary, podStages };
    },
    (err: unknown) => {
      kwok = undefined;
      throw err;
    },
  );
  return kwok;
}
