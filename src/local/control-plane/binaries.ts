// Finds (or builds once, through build-control-plane.sh and build-kwok.sh) the control-plane binaries
// and kwok. The scripts own caching, the pins and the override conventions; this only calls them.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
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
  const script = fileURLToPath(new URL(`./${name}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = out.trim().split("\n").pop();
      if (code !== 0 || !last) reject(new Error(`${name} failed with exit code ${code}`));
      else resolve(last);
    });
  });
}

let controlPlane: Promise<ControlPlaneBinaries> | undefined;
let kwok: Promise<string> | undefined;

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

/** The pinned kwok binary (sigs.k8s.io/kwok). */
export function ensureKwokBinary(): Promise<string> {
  kwok ??= runBuildScript("build-kwok.sh").catch((err: unknown) => {
    kwok = undefined;
    throw err;
  });
  return kwok;
}
