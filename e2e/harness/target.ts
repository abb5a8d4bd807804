// Which cluster the integration suites run against: our own control plane (the default), or an existing
// cluster named by E2E_KUBECONFIG, or by KUBECONFIG when E2E_USE_EXISTING_CLUSTER=true (e.g. kind).
export function existingClusterKubeconfig(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.E2E_KUBECONFIG) return env.E2E_KUBECONFIG;
  if (env.E2E_USE_EXISTING_CLUSTER === "true") {
    const path = env.KUBECONFIG?.split(":")[0];
    if (!path) throw new Error("E2E_USE_EXISTING_CLUSTER=true needs KUBECONFIG to name a kubeconfig file");
    return path;
  }
  return undefined;
}
