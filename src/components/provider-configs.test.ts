import { describe, expect, it } from "vitest";
import { DEFAULT_PLATFORM } from "../controllers/app-vending/desired.ts";
import type { PlatformSettings } from "./catalog.ts";
import { PROVIDER_CONFIG_NAMES, providerConfigObjects, providerConfigsMissing } from "./provider-configs.ts";

const platform: PlatformSettings = {
  domain: "home.shdr.ch",
  kubePrismPort: 7445,
  s3Endpoint: "https://rgw.home.shdr.ch",
  postgres: { host: "db.home.shdr.ch", port: 5432, sslMode: "verify-full" },
};
const secrets = {
  "s3-credentials":
    "[default]\naws_access_key_id = AKIA-not-for-spec\naws_secret_access_key = s3-secret-value\n",
  "keycloak-credentials": '{"client_id":"crossplane","client_secret":"kc-secret-value"}',
  "postgres-username": "crossplane",
  "postgres-password": "pg-secret-value",
};

describe("Crossplane ProviderConfigs", () => {
  it("names them as AppVending's managed resources reference them", () => {
    expect(PROVIDER_CONFIG_NAMES).toEqual(DEFAULT_PLATFORM.providerConfigs);
    const names = providerConfigObjects(platform, secrets)
      .filter((o) => o.kind === "ClusterProviderConfig")
      .map((o) => `${o.apiVersion} ${o.metadata?.name}`);
    expect(names).toEqual([
      "aws.m.upbound.io/v1beta1 ceph-rgw",
      "keycloak.m.crossplane.io/v1beta1 keycloak",
      "postgresql.sql.m.crossplane.io/v1alpha1 postgres",
    ]);
  });

  it("puts credentials only into Secrets, which the ProviderConfigs reference by name", () => {
    const objs = providerConfigObjects(platform, secrets);
    for (const o of objs.filter((o) => o.kind !== "Secret")) {
      for (const v of ["s3-secret-value", "kc-secret-value", "pg-secret-value", "AKIA-not-for-spec"]) {
        expect(JSON.stringify(o)).not.toContain(v);
      }
    }
    const pg = objs.find((o) => o.kind === "Secret" && o.metadata?.name === "postgres-connection");
    expect((pg as { stringData: Record<string, string> }).stringData).toEqual({
      endpoint: "db.home.shdr.ch",
      port: "5432",
      username: "crossplane",
      password: "pg-secret-value",
    });
  });

  it("says what is missing, and nothing when all is there", () => {
    expect(providerConfigsMissing(platform, secrets)).toBeUndefined();
    const { "postgres-password": _p, ...noPassword } = secrets;
    expect(providerConfigsMissing({ ...platform, s3Endpoint: undefined }, noPassword)).toBe(
      "needs valuesFrom postgres-password, spec.platform.s3Endpoint",
    );
  });
});
