// What one AppVending converges to, as plain objects: Crossplane v2 namespaced managed resources (the
// `.m.` API groups) for the bucket, the database and the OIDC client, and a Knative Service (plus a
// DomainMapping for a custom hostname) for the app. Pure functions of the spec and the platform's
// settings, so the unit tests can hold them against the seed's own YAML.
import type { AppVending } from "../../crds/app-vending.ts";
import type { KubeObject } from "../../runtime/index.ts";
import { controllerReference } from "../../runtime/index.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "../peer-tenant/labels.ts";
import { externalNames, managedName, passwordSecretName } from "./names.ts";

export const APP_VENDING_LABEL = "homelab.shdr.ch/appvending";
export const EXTERNAL_NAME = "crossplane.io/external-name";

export const GVK = {
  appVending: { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "AppVending" },
  bucket: { apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "Bucket" },
  bucketAcl: { apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "BucketACL" },
  database: { apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1", kind: "Database" },
  role: { apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1", kind: "Role" },
  // v1alpha2 is the storage version at provider-keycloak v3.0.0; writing it needs no conversion.
  oidcClient: { apiVersion: "openidclient.keycloak.m.crossplane.io/v1alpha2", kind: "Client" },
  knativeService: { apiVersion: "serving.knative.dev/v1", kind: "Service" },
  domainMapping: { apiVersion: "serving.knative.dev/v1beta1", kind: "DomainMapping" },
  lease: { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
} as const;

/** The platform's side of vending: set by the operator's configuration, never by a tenant. */
export interface VendingPlatform {
  /** ClusterProviderConfig names: the seed's `ceph-rgw` and `keycloak`, and the PostgreSQL one. */
  providerConfigs: { s3: string; sql: string; keycloak: string };
  /** Region the AWS provider signs with; Ceph RGW accepts any, upjet requires one. */
  s3Region: string;
  /** The RGW endpoint apps reach the bucket at (the Bucket MR publishes no connection details). */
  s3Endpoint: string;
}

export const DEFAULT_PLATFORM: VendingPlatform = {
  providerConfigs: { s3: "ceph-rgw", sql: "postgres", keycloak: "keycloak" },
  s3Region: "us-east-1",
  s3Endpoint: "https://s3.home.shdr.ch",
};

/**
 * Namespaced MRs have no deletionPolicy (crossplane apis/core/v2/resource_namespace.go): leaving `Delete`
 * out of managementPolicies is how the provider is told to orphan the external resource.
 */
export const RETAIN_POLICIES = ["Create", "Observe", "Update", "LateInitialize"];
export const ALL_POLICIES = ["*"];

type Obj = KubeObject & Record<string, unknown>;

export interface ConnectionSecretNames {
  bucket: string;
  database: string;
  oidcClient: string;
}

export function connectionSecretNames(av: AppVending): ConnectionSecretNames {
  const n = av.metadata.name;
  const c = av.spec.connectionSecrets;
  return {
    bucket: c?.bucket ?? `${n}-s3`,
    database: c?.database ?? `${n}-db`,
    oidcClient: c?.oidcClient ?? `${n}-oidc`,
  };
}

function meta(av: AppVending, owner: Obj, name: string, externalName?: string): Record<string, unknown> {
  return {
    name,
    namespace: av.metadata.namespace,
    // A label value has at most 63 characters; the managed name is the AppVending's name fitted to that.
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [APP_VENDING_LABEL]: managedName(av.metadata.name) },
    ...(externalName ? { annotations: { [EXTERNAL_NAME]: externalName } } : {}),
    ownerReferences: [controllerReference(owner)],
  };
}

function providerConfigRef(name: string) {
  // A ClusterProviderConfig: tenants cannot create or change cluster-scoped objects, and the namespaced
  // ProviderConfig kinds are refused in tenant namespaces by the vending guardrail.
  return { kind: "ClusterProviderConfig", name };
}

function dataPolicies(av: AppVending): string[] {
  return av.spec.deletionPolicy === "Delete" ? ALL_POLICIES : RETAIN_POLICIES;
}

/** The Bucket and, for public-read, the BucketACL that grants it (v1beta1 Bucket has no acl field). */
export function desiredBucket(av: AppVending, owner: Obj, platform: VendingPlatform): Obj[] {
  if (!av.spec.bucket) return [];
  const ns = av.metadata.namespace as string;
  const name = managedName(av.metadata.name);
  const ext = externalNames(ns, av.metadata.name);
  const bucket: Obj = {
    ...GVK.bucket,
    metadata: meta(av, owner, name, ext.bucket),
    spec: {
      forProvider: { region: platform.s3Region },
      providerConfigRef: providerConfigRef(platform.providerConfigs.s3),
      managementPolicies: dataPolicies(av),
      writeConnectionSecretToRef: { name: connectionSecretNames(av).bucket },
    },
  } as Obj;
  if (av.spec.bucket.acl !== "public-read") return [bucket];
  // On RGW a canned ACL is enough: unlike AWS since 2023 it has no BucketOwnershipControls default that
  // disables ACLs, and no account-level public access block to lift first.
  const acl: Obj = {
    ...GVK.bucketAcl,
    metadata: meta(av, owner, name),
    spec: {
      forProvider: { region: platform.s3Region, acl: "public-read", bucketRef: { name } },
      providerConfigRef: providerConfigRef(platform.providerConfigs.s3),
      // The ACL is configuration of the bucket, not data: it always goes with the AppVending.
      managementPolicies: ALL_POLICIES,
    },
  } as Obj;
  return [bucket, acl];
}

/** The owner Role (it publishes the connection details) and the Database it owns. */
export function desiredDatabase(av: AppVending, owner: Obj, platform: VendingPlatform): Obj[] {
  if (!av.spec.database) return [];
  const ns = av.metadata.namespace as string;
  const name = managedName(av.metadata.name);
  const pg = externalNames(ns, av.metadata.name).postgres;
  const common = {
    providerConfigRef: providerConfigRef(platform.providerConfigs.sql),
    managementPolicies: dataPolicies(av),
  };
  const role: Obj = {
    ...GVK.role,
    metadata: meta(av, owner, name, pg),
    spec: {
      // No superuser, no createdb/createrole: the tenant gets a login that owns one database.
      // The password is the operator's (password-secret.ts): a re-vended role keeps it.
      forProvider: {
        privileges: { login: true },
        passwordSecretRef: { name: passwordSecretName(av.metadata.name), key: "password" },
      },
      ...common,
      writeConnectionSecretToRef: { name: connectionSecretNames(av).database },
    },
  } as Obj;
  const database: Obj = {
    ...GVK.database,
    metadata: meta(av, owner, name, pg),
    spec: { forProvider: { owner: pg }, ...common },
  } as Obj;
  return [role, database];
}

export function desiredOidcClient(av: AppVending, owner: Obj, platform: VendingPlatform): Obj[] {
  const o = av.spec.oidcClient;
  if (!o) return [];
  const ns = av.metadata.namespace as string;
  return [
    {
      ...GVK.oidcClient,
      metadata: meta(av, owner, managedName(av.metadata.name)),
      spec: {
        forProvider: {
          clientId: externalNames(ns, av.metadata.name).clientId,
          realmId: o.realm,
          accessType: o.publicClient ? "PUBLIC" : "CONFIDENTIAL",
          standardFlowEnabled: true,
          rootUrl: o.rootUrl,
          validRedirectUris: o.redirectUris,
          ...(o.webOrigins.length > 0 ? { webOrigins: o.webOrigins } : {}),
          // A public client has no secret: PKCE is what keeps its codes from being replayed.
          ...(o.publicClient ? { pkceCodeChallengeMethod: "S256" } : {}),
        },
        providerConfigRef: providerConfigRef(platform.providerConfigs.keycloak),
        managementPolicies: ALL_POLICIES,
        writeConnectionSecretToRef: { name: connectionSecretNames(av).oidcClient },
      },
    } as Obj,
  ];
}

export const AUTOSCALING = {
  min: "autoscaling.knative.dev/min-scale",
  max: "autoscaling.knative.dev/max-scale",
} as const;

/**
 * The app as a Knative Service: scale bounds as autoscaling annotations on the revision template (min 0
 * is scale to zero), env from the tenant's list and from the connection Secrets of the parts it asked
 * for, each under its own prefix so keys of two Secrets never shadow each other.
 */
export function desiredKnativeService(av: AppVending, owner: Obj, platform: VendingPlatform): Obj[] {
  const app = av.spec.app;
  if (!app) return [];
  const secrets = connectionSecretNames(av);
  const env: Record<string, unknown>[] = app.env.map((e) =>
    e.secretKeyRef
      ? { name: e.name, valueFrom: { secretKeyRef: { name: e.secretKeyRef.name, key: e.secretKeyRef.key } } }
      : { name: e.name, value: e.value ?? "" },
  );
  const envFrom: Record<string, unknown>[] = [];
  if (av.spec.bucket) {
    const ns = av.metadata.namespace as string;
    env.push({ name: "S3_BUCKET", value: externalNames(ns, av.metadata.name).bucket });
    env.push({ name: "S3_ENDPOINT", value: platform.s3Endpoint });
    env.push({ name: "S3_REGION", value: platform.s3Region });
    envFrom.push({ prefix: "S3_", secretRef: { name: secrets.bucket } });
  }
  if (av.spec.database) envFrom.push({ prefix: "DB_", secretRef: { name: secrets.database } });
  if (av.spec.oidcClient) envFrom.push({ prefix: "OIDC_", secretRef: { name: secrets.oidcClient } });
  const container: Record<string, unknown> = {
    name: "app",
    image: app.image,
    ports: [{ containerPort: app.port }],
    ...(env.length > 0 ? { env } : {}),
    ...(envFrom.length > 0 ? { envFrom } : {}),
    ...(app.resources ? { resources: app.resources } : {}),
    // Tenant namespaces enforce Pod Security "restricted".
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
  return [
    {
      ...GVK.knativeService,
      metadata: meta(av, owner, av.metadata.name),
      spec: {
        template: {
          metadata: {
            annotations: {
              [AUTOSCALING.min]: String(app.scale.min),
              [AUTOSCALING.max]: String(app.scale.max),
            },
          },
          spec: { containers: [container] },
        },
      },
    } as Obj,
  ];
}

/**
 * A custom hostname the Knative way: a DomainMapping named after the host, pointing at the Service in the
 * same namespace. net-gateway-api turns it into an HTTPRoute on the Gateway its config-gateway names
 * (the platform's main-gateway).
 */
export function desiredDomainMapping(av: AppVending, owner: Obj): Obj[] {
  const host = av.spec.app?.hostname;
  if (!host) return [];
  return [
    {
      ...GVK.domainMapping,
      metadata: meta(av, owner, host),
      spec: {
        ref: {
          apiVersion: GVK.knativeService.apiVersion,
          kind: GVK.knativeService.kind,
          name: av.metadata.name,
          namespace: av.metadata.namespace,
        },
      },
    } as Obj,
  ];
}
