// Crossplane's package manager, played in local mode's workload cluster where KWOK runs the crossplane
// pod but no container: for each Provider it installs the package's CRDs (the providers' real CRDs
// vendored in ./provider-stand-in/crds, not the whole package: only the kinds the platform uses), and
// reports what the real one reports on the Provider: Installed once the package's objects are applied,
// Healthy once every CRD is Established. A package it has no CRDs for (another version, another
// provider) is refused with Installed=False, as a package that cannot be pulled is. It runs only while a
// crossplane pod runs, and only from local mode (workload-cluster.ts).
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import type { KubeClient, KubeObject } from "../runtime/index.ts";

const CRD_DIR = new URL("./provider-stand-in/crds/", import.meta.url);
const PROVIDER = { apiVersion: "pkg.crossplane.io/v1", kind: "Provider" };
const CRD = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" };

/** Package reference (with its tag) → the CRD files of that package version vendored here. */
export const PACKAGE_CRDS: Readonly<Record<string, readonly string[]>> = {
  "xpkg.upbound.io/crossplane-contrib/provider-sql:v0.16.0": [
    "postgresql.sql.m.crossplane.io_clusterproviderconfigs.yaml",
    "postgresql.sql.m.crossplane.io_providerconfigs.yaml",
    "postgresql.sql.m.crossplane.io_databases.yaml",
    "postgresql.sql.m.crossplane.io_roles.yaml",
  ],
  "xpkg.crossplane.io/crossplane-contrib/provider-keycloak:v3.0.0": [
    "keycloak.m.crossplane.io_clusterproviderconfigs.yaml",
    "keycloak.m.crossplane.io_providerconfigs.yaml",
    "openidclient.keycloak.m.crossplane.io_clients.yaml",
  ],
};

type Condition = { type: string; status: string; reason: string; message?: string };
type Crd = KubeObject & { spec: { conversion?: { strategy: string } } };

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function established(crd: KubeObject | undefined): boolean {
  const c = (crd?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
  return (c ?? []).some((x) => x.type === "Established" && x.status === "True");
}

async function installCrds(client: KubeClient, files: readonly string[]): Promise<boolean> {
  let allEstablished = true;
  for (const file of files) {
    const crd = parse(await readFile(new URL(file, CRD_DIR), "utf8")) as Crd;
    // provider-keycloak's Client CRD names a conversion webhook the real package manager points at the
    // provider's service; there is none here and only the storage version is written (setup.ts does the same).
    if (crd.spec.conversion?.strategy === "Webhook") crd.spec.conversion = { strategy: "None" };
    await client.apply(crd, { force: true });
    const live = await client.getOrUndefined(CRD, { name: crd.metadata?.name ?? "" });
    if (!established(live)) allEstablished = false;
  }
  return allEstablished;
}

function sameConditions(obj: KubeObject, want: Condition[]): boolean {
  const have = (obj.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
  return want.every((w) =>
    have.some((h) => h.type === w.type && h.status === w.status && h.reason === w.reason),
  );
}

/** One round over every Provider; nothing happens while no crossplane pod runs. */
export async function packageManagerRound(client: KubeClient, crossplaneRuns: boolean): Promise<void> {
  if (!crossplaneRuns) return;
  // Crossplane's init container has just applied the Provider CRD: no list before the kind is served.
  if (!established(await client.getOrUndefined(CRD, { name: "providers.pkg.crossplane.io" }))) return;
  const providers = await client.list<KubeObject & { spec?: { package?: string } }>(PROVIDER);
  for (const provider of providers.items) {
    const pkg = provider.spec?.package ?? "";
    const files = PACKAGE_CRDS[pkg];
    let want: Condition[];
    if (!files) {
      want = [
        {
          type: "Installed",
          status: "False",
          reason: "UnpackPackage",
          message: `local mode has no CRDs for package ${pkg}`,
        },
      ];
    } else {
      const healthy = await installCrds(client, files);
      want = [
        { type: "Installed", status: "True", reason: "ActivePackageRevision" },
        healthy
          ? { type: "Healthy", status: "True", reason: "HealthyPackageRevision" }
          : {
              type: "Healthy",
              status: "False",
              reason: "UnhealthyPackageRevision",
              message: "the package's CRDs are not Established yet",
            },
      ];
    }
    if (sameConditions(provider, want)) continue;
    await client.patchStatus(
      PROVIDER,
      { name: provider.metadata?.name ?? "" },
      { conditions: want.map((c) => ({ ...c, lastTransitionTime: now() })) },
    );
  }
}
