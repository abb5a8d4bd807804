// vitest global setup for the e2e project: one shared control plane for all integration suites (or an
// existing cluster, see target.ts), its kubeconfig handed to tests through `inject("kubeconfigPath")`.
import type { TestProject } from "vitest/node";
import { startControlPlane } from "./control-plane.ts";
import { existingClusterKubeconfig } from "./target.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    /** Folder where test identities' keys and kubeconfigs are written. */
    usersDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = existingClusterKubeconfig();
  if (existing) {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const usersDir = await mkdtemp(join(tmpdir(), "homelab-e2e-users-"));
    project.provide("kubeconfigPath", existing);
    project.provide("usersDir", usersDir);
    return () => rm(usersDir, { recursive: true, force: true });
  }
  // A loaded shared machine has taken more than the default 60 s to bring the API server up.
  const cp = await startControlPlane({ name: "e2e", startTimeoutMs: 240_000 });
  console.log(
    `[e2e] control plane ready at ${cp.server} in ${cp.startupMs} ms (kubeconfig ${cp.kubeconfigPath})`,
  );
  project.provide("kubeconfigPath", cp.kubeconfigPath);
  project.provide("usersDir", `${cp.dir}/users`);
  return () => cp.stop();
}
