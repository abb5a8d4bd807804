// Starts the PeerTenant controller in-process against the shared test cluster, as the operator would.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import {
  type PeerTenantControllerOptions,
  peerTenantController,
} from "../../src/controllers/peer-tenant/controller.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { createLogger, Manager } from "../../src/runtime/index.ts";
import { statusOf } from "../harness/wait.ts";

export const OPERATOR_NAMESPACE = "homelab-system";

export async function startPeerTenantOperator(
  kc: KubeConfig,
  extra: Partial<PeerTenantControllerOptions> = {},
): Promise<Manager> {
  await installCRDs(kc);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch((err: unknown) => {
    if (statusOf(err) !== 409) throw err;
  });
  const manager = new Manager({
    kubeConfig: kc,
    logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
    // Short reconnect backoff so a test never waits long on a watch restart.
    watchBackoff: { initialMs: 100, maxMs: 2_000 },
  });
  manager.addController(
    peerTenantController({ operatorNamespace: OPERATOR_NAMESPACE, operatorUsernames: [], ...extra }),
  );
  await manager.start();
  return manager;
}
