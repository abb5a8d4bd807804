// deploy/ is what runs in a cluster: the Helm chart lints, deploy/manifests/operator.yaml is its current
// rendering, the API server accepts every object, and the RBAC is enough for the operator.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderManifests } from "../../scripts/generate-manifests.ts";
import { peerTenantController } from "../../src/controllers/peer-tenant/controller.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { ensureControlPlaneBinaries } from "../../src/local/control-plane/binaries.ts";
import { createLogger, Manager } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath } from "../harness/test-cluster.ts";
import { statusOf, waitFor } from "../harness/wait.ts";
import { condition, RUN, tenants, waitReady } from "../peer-tenant/tenant-fixtures.ts";

const run = promisify(execFile);
const chart = (file: string) =>
  fileURLToPath(new URL(`../../deploy/helm/homelab-operator/${file}`, import.meta.url));
const manifests = (file: string) => fileURLToPath(new URL(`../../deploy/manifests/${file}`, import.meta.url));
const SERVICE_ACCOUNT = "system:serviceaccount:homelab-system:homelab-operator";

async function kubectl(...args: string[]): Promise<string> {
  const { kubectl } = await ensureControlPlaneBinaries();
  const { stdout } = await run(kubectl, ["--kubeconfig", kubeconfigPath(), ...args]);
  return stdout;
}

/** A kubeconfig that authenticates with a bound token of the operator's ServiceAccount. */
async function serviceAccountKubeConfig(admin: KubeConfig): Promise<KubeConfig> {
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: "homelab-operator",
    namespace: "homelab-system",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: cluster.name, server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: "homelab-operator", token: token.status!.token }],
    contexts: [{ name: "operator", cluster: cluster.name, user: "homelab-operator" }],
    currentContext: "operator",
  });
  return kc;
}

let manager: Manager | undefined;

afterAll(async () => {
  await manager?.stop();
});

describe("deploy/manifests", () => {
  beforeAll(async () => {
    await installCRDs(adminKubeConfig());
    await kubectl(
      "apply",
      "--server-side",
      "-f",
      manifests("namespace.yaml"),
      "-f",
      manifests("operator.yaml"),
    );
  });

  it("renders from a chart that lints, and the committed rendering is current", async () => {
    const helm = (await run("bash", [chart("../build-helm.sh")])).stdout.trim().split("\n").pop()!;
    const lint = await run(helm, ["lint", "--strict", chart("")]);
    expect(lint.stdout).toContain("0 chart(s) failed");
    expect(readFileSync(manifests("operator.yaml"), "utf8")).toBe(renderManifests());
  });

  it("has a Deployment and Service the API server accepts", async () => {
    const out = await kubectl(
      "get",
      "-n",
      "homelab-system",
      "deployment/homelab-operator",
      "service/homelab-operator-metrics",
      "-o",
      "name",
    );
    expect(out.split("\n").filter(Boolean)).toEqual([
      "deployment.apps/homelab-operator",
      "service/homelab-operator-metrics",
    ]);
  });

  it("grants the operator's ServiceAccount all the PeerTenant controller needs", async () => {
    const admin = adminKubeConfig();
    const kc = await serviceAccountKubeConfig(admin);
    manager = new Manager({
      kubeConfig: kc,
      logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
      leaderElection: { name: `homelab-operator-rbac-${RUN}`, namespace: "homelab-system" },
      watchBackoff: { initialMs: 100, maxMs: 2_000 },
    });
    manager.addController(
      peerTenantController({ operatorNamespace: "homelab-system", operatorUsernames: [SERVICE_ACCOUNT] }),
    );
    await manager.start();
    await waitFor("leadership", async () => (manager!.isLeader() ? true : undefined));

    const name = `rbac-${RUN}`;
    await tenants(admin).create(name, {
      owners: { users: [name], groups: [`peers-${name}`] },
      quota: { perNamespace: { pods: "10" } },
      limits: { default: { memory: "256Mi" } },
      requiredLabels: ["owner"],
      gitlab: { groupPath: `peers/${name}`, groupID: 7 },
      deletionPolicy: "Delete",
    });
    const ready = await waitReady(admin, name);
    expect(condition(ready, "AccessReady")?.status).toBe("True");

    await tenants(admin).delete(name);
    await waitFor(
      "the tenant and its namespace to be deleted by the ServiceAccount",
      async () => {
        const err = await admin
          .makeApiClient(CoreV1Api)
          .readNamespace({ name: `peers-${name}` })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        return statusOf(err) === 404 ? true : undefined;
      },
      60_000,
    );
  });
});
