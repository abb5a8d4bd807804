// Local mode's stand-in for Crossplane's package manager (src/local/package-manager.ts) on the e2e
// control plane: nothing before a crossplane pod runs, a known package Installed and then Healthy only
// once its real CRDs are Established, a package it has no CRDs for refused, never Healthy.
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { applyWorkloadCrd } from "../../src/local/container-stand-ins.ts";
import { PACKAGE_CRDS, packageManagerRound } from "../../src/local/package-manager.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";

const PROVIDER = { apiVersion: "pkg.crossplane.io/v1", kind: "Provider" };
type Condition = { type: string; status: string; reason?: string; message?: string };
const conditionsOf = (p: KubeObject | undefined) =>
  ((p?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];

let client: KubeClient;
const suffix = randomBytes(3).toString("hex");

beforeAll(async () => {
  client = new KubeClient(adminKubeConfig());
  await applyWorkloadCrd(client, "pkg.crossplane.io_providers.yaml");
  await waitFor("Provider kind served", async () => {
    try {
      return await client.resourceInfo(PROVIDER);
    } catch {
      return undefined;
    }
  });
}, 120_000);

async function provider(name: string, pkg: string): Promise<void> {
  await client.create({ ...PROVIDER, metadata: { name }, spec: { package: pkg } });
}

describe("local mode: Crossplane's package manager stand-in", () => {
  it("does nothing while no crossplane pod runs", async () => {
    const name = `pm-idle-${suffix}`;
    await provider(name, "xpkg.upbound.io/crossplane-contrib/provider-sql:v0.16.0");
    await packageManagerRound(client, false);
    expect(conditionsOf(await client.get(PROVIDER, { name }))).toEqual([]);
  });

  it("installs provider-sql's real CRDs, Installed, then Healthy once they are Established", async () => {
    const name = `pm-sql-${suffix}`;
    await provider(name, "xpkg.upbound.io/crossplane-contrib/provider-sql:v0.16.0");
    const got = await waitFor(
      "provider-sql Healthy",
      async () => {
        await packageManagerRound(client, true);
        const p = await client.get(PROVIDER, { name });
        return conditionsOf(p).some((c) => c.type === "Healthy" && c.status === "True") ? p : undefined;
      },
      60_000,
      500,
    );
    expect(conditionsOf(got).find((c) => c.type === "Installed")).toMatchObject({
      status: "True",
      reason: "ActivePackageRevision",
    });
    // Healthy was written only after every CRD of the package was Established.
    for (const file of PACKAGE_CRDS["xpkg.upbound.io/crossplane-contrib/provider-sql:v0.16.0"] ?? []) {
      const crd = await client.get<KubeObject>(
        { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
        { name: `${file.split("_")[1]?.replace(/\.yaml$/, "")}.${file.split("_")[0]}` },
      );
      const c = conditionsOf(crd);
      expect(c.find((x) => x.type === "Established")?.status, file).toBe("True");
    }
  });

  it("installs provider-keycloak's CRDs with the conversion webhook the real one points at its service cleared", async () => {
    const name = `pm-keycloak-${suffix}`;
    await provider(name, "xpkg.crossplane.io/crossplane-contrib/provider-keycloak:v3.0.0");
    await waitFor(
      "provider-keycloak Healthy",
      async () => {
        await packageManagerRound(client, true);
        const p = await client.get(PROVIDER, { name });
        return conditionsOf(p).some((c) => c.type === "Healthy" && c.status === "True");
      },
      60_000,
      500,
    );
    const crd = await client.get<KubeObject & { spec: { conversion?: { strategy: string } } }>(
      { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
      { name: "clients.openidclient.keycloak.m.crossplane.io" },
    );
    expect(crd.spec.conversion?.strategy).toBe("None");
  });

  it("refuses a package version it has no CRDs for: Installed=False, never Healthy", async () => {
    const name = `pm-aws-${suffix}`;
    // The catalog's pin of provider-aws-s3: the vendored provider-upjet-aws CRDs are v2.6.0's, not v2.0.0's.
    await provider(name, "xpkg.crossplane.io/crossplane-contrib/provider-aws-s3:v2.0.0");
    await packageManagerRound(client, true);
    await packageManagerRound(client, true);
    const c = conditionsOf(await client.get(PROVIDER, { name }));
    expect(c.find((x) => x.type === "Installed")).toMatchObject({ status: "False" });
    expect(c.find((x) => x.type === "Installed")?.message).toContain("provider-aws-s3:v2.0.0");
    expect(c.some((x) => x.type === "Healthy" && x.status === "True")).toBe(false);
  });
});
