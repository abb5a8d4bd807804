// The seed's Crossplane ProviderConfigs ("Configure ProviderConfigs (Ceph RGW, Keycloak, SurrealDB)"):
// one ClusterProviderConfig per provider, named as AppVending's managed resources reference them
// (src/controllers/app-vending/desired.ts: ceph-rgw, postgres, keycloak). Their credentials come from
// Secrets in the operator's namespace (the component's valuesFrom) and are copied into Secrets in
// crossplane-system, the only place they are written; spec and status only ever name them.
// Shapes: the providers' ClusterProviderConfig CRDs (../../shared/reference/crds/provider-*).
import type { KubeObject } from "../runtime/object.ts";
import type { PlatformSettings } from "./catalog.ts";

export const PROVIDER_CONFIG_NAMES = { s3: "ceph-rgw", sql: "postgres", keycloak: "keycloak" } as const;
const NAMESPACE = "crossplane-system";

/** The valuesFrom names the component reads (documented in the README's components table). */
export const PROVIDER_CONFIG_SECRETS = {
  /** An AWS shared-credentials file ([default] aws_access_key_id/aws_secret_access_key) for Ceph RGW. */
  s3: "s3-credentials",
  /** provider-keycloak's JSON credentials (client_id, client_secret, url, realm, …). */
  keycloak: "keycloak-credentials",
  postgresUsername: "postgres-username",
  postgresPassword: "postgres-password",
} as const;

/** The ClusterProviderConfig kinds (they exist once the providers are Healthy). */
export const PROVIDER_CONFIG_CRDS = [
  "clusterproviderconfigs.aws.m.upbound.io",
  "clusterproviderconfigs.keycloak.m.crossplane.io",
  "clusterproviderconfigs.postgresql.sql.m.crossplane.io",
];

/**
 * What is missing for the three ProviderConfigs, or undefined when all can be written. All three are
 * required: the seed's apps need a bucket, a database and an OIDC client, and a missing one would only
 * show later as every AppVending of that kind failing.
 */
export function providerConfigsMissing(
  p: PlatformSettings,
  secrets: Readonly<Record<string, string>>,
): string | undefined {
  const missing = [
    ...Object.values(PROVIDER_CONFIG_SECRETS)
      .filter((k) => secrets[k] === undefined)
      .map((k) => `valuesFrom ${k}`),
    ...(p.s3Endpoint ? [] : ["spec.platform.s3Endpoint"]),
    ...(p.postgres ? [] : ["spec.platform.postgres"]),
  ];
  return missing.length > 0 ? `needs ${missing.join(", ")}` : undefined;
}

function secret(name: string, stringData: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { namespace: NAMESPACE, name },
    type: "Opaque",
    stringData,
  };
}

/**
 * The Secrets and ClusterProviderConfigs. Written only once providerConfigsMissing finds nothing missing;
 * with values absent (removal lists only kinds and names) the fields are empty.
 */
export function providerConfigObjects(
  p: PlatformSettings,
  secrets: Readonly<Record<string, string>>,
): KubeObject[] {
  const s = PROVIDER_CONFIG_SECRETS;
  const postgres = p.postgres ?? { host: "", port: 5432, sslMode: "verify-full" };
  const ref = (name: string, key: string) => ({ namespace: NAMESPACE, name, key });
  return [
    secret("ceph-rgw-credentials", { credentials: secrets[s.s3] ?? "" }),
    secret("keycloak-credentials", { credentials: secrets[s.keycloak] ?? "" }),
    secret("postgres-connection", {
      endpoint: postgres.host,
      port: String(postgres.port),
      username: secrets[s.postgresUsername] ?? "",
      password: secrets[s.postgresPassword] ?? "",
    }),
    {
      apiVersion: "aws.m.upbound.io/v1beta1",
      kind: "ClusterProviderConfig",
      metadata: { name: PROVIDER_CONFIG_NAMES.s3 },
      spec: {
        credentials: { source: "Secret", secretRef: ref("ceph-rgw-credentials", "credentials") },
        // Ceph RGW is one static endpoint for every service, addressed path-style (virtual-host style
        // fails signature checks there), with no AWS account, region list or metadata API behind it.
        endpoint: { url: { type: "Static", static: p.s3Endpoint ?? "" }, hostnameImmutable: true },
        s3_use_path_style: true,
        skip_credentials_validation: true,
        skip_metadata_api_check: true,
        skip_region_validation: true,
        skip_requesting_account_id: true,
      },
    },
    {
      apiVersion: "keycloak.m.crossplane.io/v1beta1",
      kind: "ClusterProviderConfig",
      metadata: { name: PROVIDER_CONFIG_NAMES.keycloak },
      spec: { credentials: { source: "Secret", secretRef: ref("keycloak-credentials", "credentials") } },
    },
    {
      apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1",
      kind: "ClusterProviderConfig",
      metadata: { name: PROVIDER_CONFIG_NAMES.sql },
      spec: {
        credentials: {
          source: "PostgreSQLConnectionSecret",
          connectionSecretRef: { namespace: NAMESPACE, name: "postgres-connection" },
        },
        sslMode: postgres.sslMode,
      },
    },
  ];
}
