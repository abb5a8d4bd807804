// Everything a cluster without Crossplane's providers and Knative needs before AppVendings can turn
// Ready there: the providers' and Knative's real CRDs (copies in ./crds, see its README), the platform's
// ClusterProviderConfigs the AppVending controller names, and the stand-in's controllers on a Manager.
// Used by the e2e tests and by local mode.
import { readdirSync, readFileSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { DEFAULT_PLATFORM, type VendingPlatform } from "../../controllers/app-vending/desired.ts";
import { KubeClient, type KubeObject, type Manager } from "../../runtime/index.ts";
import { ProviderStandIn, type ProviderStandInOptions } from "./stand-in.ts";

const CRD_DIR = new URL("./crds/", import.meta.url);
const WAIT_MS = 30_000;

type Crd = KubeObject & {
  spec: {
    group: string;
    names: { kind: string };
    versions: { name: string; storage: boolean }[];
    conversion?: { strategy: string };
  };
};

/** Installs the CRDs and waits until every kind is served. */
export async function installStandInCrds(kubeConfig: KubeConfig): Promise<void> {
  const client = new KubeClient(kubeConfig);
  const files = readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"));
  for (const file of files) {
    const crd = parse(readFileSync(new URL(file, CRD_DIR), "utf8")) as Crd;
    // provider-keycloak's Client CRD names a conversion webhook that Crossplane's package manager fills
    // in at install; there is none here, and only the storage version is ever written.
    if (crd.spec.conversion?.strategy === "Webhook") crd.spec.conversion = { strategy: "None" };
    await client.apply(crd);
  }
  for (const file of files) {
    const crd = parse(readFileSync(new URL(file, CRD_DIR), "utf8")) as Crd;
    const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name;
    const gvk = { apiVersion: `${crd.spec.group}/${version}`, kind: crd.spec.names.kind };
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        await client.resourceInfo(gvk);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/** The platform's ClusterProviderConfigs (credentials the stand-in never uses; a real install has its own). */
export async function applyPlatformProviderConfigs(
  kubeConfig: KubeConfig,
  platform: VendingPlatform = DEFAULT_PLATFORM,
  sqlSecret: { namespace: string; name: string } = { namespace: "homelab-system", name: "postgres-admin" },
): Promise<void> {
  const client = new KubeClient(kubeConfig);
  const configs: [string, string, Record<string, unknown>][] = [
    ["aws.m.upbound.io/v1beta1", platform.providerConfigs.s3, { credentials: { source: "None" } }],
    [
      "keycloak.m.crossplane.io/v1beta1",
      platform.providerConfigs.keycloak,
      { credentials: { source: "None" } },
    ],
    [
      "postgresql.sql.m.crossplane.io/v1alpha1",
      platform.providerConfigs.sql,
      { credentials: { source: "PostgreSQLConnectionSecret", connectionSecretRef: sqlSecret } },
    ],
  ];
  for (const [apiVersion, name, spec] of configs) {
    await client.apply({ apiVersion, kind: "ClusterProviderConfig", metadata: { name }, spec } as KubeObject);
  }
}

/**
 * The one call local mode needs, before `manager.start()`: CRDs, ProviderConfigs, and the stand-in's
 * controllers added to `manager`. Returns the stand-in (its `external` record, `failWith`).
 */
export async function startProviderStandIn(
  manager: Manager,
  kubeConfig: KubeConfig,
  opts: ProviderStandInOptions & { platform?: VendingPlatform } = {},
): Promise<ProviderStandIn> {
  await installStandInCrds(kubeConfig);
  await applyPlatformProviderConfigs(kubeConfig, opts.platform);
  const standIn = new ProviderStandIn(opts);
  for (const c of standIn.controllers()) manager.addController(c);
  return standIn;
}
