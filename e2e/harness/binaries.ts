// Finds (or builds once, through build-control-plane.sh) the kube-apiserver, kube-controller-manager,
// kubectl and etcd binaries. The script owns caching and the KUBEBUILDER_ASSETS convention; this only calls it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface ControlPlaneBinaries {
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  etcd: string;
  /** The pinned kubectl when this folder has one (KUBEBUILDER_ASSETS may not), else kubectl from PATH. */
  kubectl: string;
}

let pending: Promise<ControlPlaneBinaries> | undefined;

export function ensureControlPlaneBinaries(): Promise<ControlPlaneBinaries> {
  pending ??= buildOrReuse();
  return pending;
}

function buildOrReuse(): Promise<ControlPlaneBinaries> {
  const script = fileURLToPath(new URL("./build-control-plane.sh", import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const dir = out.trim().split("\n").pop();
      if (code !== 0 || !dir) {
        pending = undefined;
        reject(new Error(`build-control-plane.sh failed with exit code ${code}`));
        return;
      }
      resolve({
        dir,
        kubeApiserver: `${dir}/kube-apiserver`,
        kubeControllerManager: `${dir}/kube-controller-manager`,
        etcd: `${dir}/etcd`,
        kubectl: existsSync(`${dir}/kubectl`) ? `${dir}/kubectl` : "kubectl",
      });
    });
  });
}
