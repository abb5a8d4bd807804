// The test harness's control plane: the product's launcher (src/local/control-plane) plus what only
// tests need, clients for arbitrary users. See README "A real control plane for tests".
import type { KubeConfig } from "@kubernetes/client-node";
import {
  type ControlPlaneOptions,
  type ControlPlane as ProductControlPlane,
  startControlPlane as startProductControlPlane,
} from "../../src/local/control-plane/control-plane.ts";
import { kubeConfigForUser } from "./users.ts";

export { DEFAULT_CONTROLLERS } from "../../src/local/control-plane/control-plane.ts";
export type { ControlPlaneOptions };

export interface ControlPlane extends ProductControlPlane {
  /** A client authenticated (by client certificate) as `user` in `groups`, subject to RBAC. */
  userKubeConfig(user: string, groups?: string[]): Promise<KubeConfig>;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const cp = await startProductControlPlane(options);
  return {
    ...cp,
    // `server` is set once the control plane is up, which it is here.
    userKubeConfig(user, groups = []) {
      return kubeConfigForUser(cp.kubeConfig(), { dir: `${cp.dir}/users`, user, groups });
    },
  };
}
