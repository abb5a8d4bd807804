// What integration tests use to reach the shared cluster of the e2e global setup.
import { KubeConfig } from "@kubernetes/client-node";
import { inject } from "vitest";
import { kubeConfigForUser, kubeconfigForUser } from "./users.ts";

export function kubeconfigPath(): string {
  return inject("kubeconfigPath");
}

/** A cluster-admin client for the shared cluster. */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** A client authenticated as `user` in `groups` (a real client certificate), subject to RBAC. */
export function impersonating(user: string, groups: string[] = []): Promise<KubeConfig> {
  return kubeConfigForUser(adminKubeConfig(), { dir: inject("usersDir"), user, groups });
}

/** The kubeconfig file of `user` in `groups`, for kubectl. */
export function userKubeconfigPath(user: string, groups: string[] = []): Promise<string> {
  return kubeconfigForUser(adminKubeConfig(), { dir: inject("usersDir"), user, groups });
}
