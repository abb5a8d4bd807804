// AppVending: what a tenant asks for in its own namespace — an app (Knative Service + HTTPRoute), an
// S3 bucket, a PostgreSQL database, a Keycloak OIDC client — the seed's "Static Site with Auth + DB"
// Crossplane example as one object. Only names in the same namespace: a tenant can never point it at
// another tenant's resources.
import * as z from "zod";
import {
  deletionPolicy,
  dnsLabel,
  hostname,
  localSecretKeyRef,
  mapListOf,
  matching,
  resourceList,
  setOf,
  text,
  url,
} from "./fields.ts";
import { defineKind } from "./kind.ts";
import { withRules } from "./rules.ts";
import { conditionStatusPath, statusFields } from "./status.ts";

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export const EnvVar = withRules(
  z
    .object({
      name: matching(ENV_NAME, 253, "must be an environment variable name such as LOG_LEVEL").describe(
        "Variable name, e.g. LOG_LEVEL.",
      ),
      value: text(32768).optional().describe("Literal value."),
      secretKeyRef: localSecretKeyRef("Take the value from a key of a Secret in this namespace.").optional(),
    })
    .describe("One environment variable: a literal value or a Secret key, not both."),
  [
    {
      rule: "!(has(self.value) && has(self.secretKeyRef))",
      message: "an env entry takes value or secretKeyRef, not both",
      check: (e) => !(e.value !== undefined && e.secretKeyRef !== undefined),
    },
  ],
);

export const IMAGE_REFERENCE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

export function imageReference() {
  return matching(
    IMAGE_REFERENCE,
    512,
    "must be an image reference such as registry.home.shdr.ch/alice/portfolio:1.0",
  );
}

const Scale = withRules(
  z
    .object({
      min: z
        .number()
        .int()
        .min(0)
        .max(10)
        .default(0)
        .describe("Fewest replicas; 0 scales to zero when idle (default 0)."),
      max: z.number().int().min(1).max(10).default(3).describe("Most replicas under load (default 3)."),
    })
    .default({ min: 0, max: 3 })
    .describe("Autoscaling bounds of the Knative Service."),
  [
    {
      rule: "self.min <= self.max",
      message: "app.scale.min must not exceed app.scale.max",
      check: (s) => s.min <= s.max,
    },
  ],
);

const App = z
  .object({
    image: imageReference().describe("Container image, e.g. registry.home.shdr.ch/alice/portfolio:1.0."),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(8080)
      .describe("Port the container listens on (default 8080)."),
    env: mapListOf(EnvVar, "name", 64).default([]).describe("Environment variables, keyed by name."),
    resources: z
      .object({
        requests: resourceList(8).optional().describe("Requests, e.g. {cpu: 100m, memory: 128Mi}."),
        limits: resourceList(8).optional().describe("Limits, e.g. {memory: 512Mi}."),
      })
      .optional()
      .describe("Container resources; the tenant's LimitRange fills in what is missing."),
    scale: Scale,
    hostname: hostname()
      .optional()
      .describe(
        "Public hostname routed to the app, e.g. portfolio.apps.home.shdr.ch; must end with a domain the tenant may use.",
      ),
  })
  .describe("A container served by Knative (scale to zero) behind a Gateway API HTTPRoute.");

const Bucket = z
  .object({
    acl: z
      .enum(["private", "public-read"])
      .default("private")
      .describe("Canned ACL: private (default) or public-read (anyone may read objects)."),
    versioning: z.boolean().default(false).describe("Keep old object versions (default false)."),
  })
  .describe("An S3 bucket on Ceph RGW, named after this object and its namespace.");

const Database = z
  .object({
    engine: z.enum(["postgresql"]).default("postgresql").describe("Database engine: postgresql."),
    extensions: setOf(
      matching(/^[a-z_][a-z0-9_]*$/, 63, "must be a PostgreSQL extension name such as vector").describe(
        "An extension name.",
      ),
      8,
    )
      .default([])
      .describe("Extensions to create in the database, e.g. [vector]."),
  })
  .describe("A database with its own owner role, named after this object and its namespace.");

const OidcClient = z
  .object({
    realm: dnsLabel().describe("Keycloak realm, e.g. aether."),
    publicClient: z
      .boolean()
      .default(true)
      .describe(
        "A public client (browser apps with PKCE, no secret; default true); false issues a client secret.",
      ),
    rootUrl: url(["https"], "https://portfolio.shdr.ch").describe(
      "Root URL of the app, e.g. https://portfolio.shdr.ch.",
    ),
    redirectUris: setOf(text(2048).min(1).describe("A redirect URI; '*' may end it."), 16)
      .min(1)
      .describe('Allowed redirect URIs, e.g. ["https://portfolio.shdr.ch/*"].'),
    webOrigins: setOf(text(2048).min(1).describe("An origin."), 16)
      .default([])
      .describe("Allowed CORS origins; empty allows the redirect URIs' origins."),
  })
  .describe("A Keycloak OIDC client (standard flow) for the app.");

const ConnectionSecrets = z
  .object({
    bucket: dnsLabel()
      .optional()
      .describe("Secret for the bucket's endpoint and credentials (default <name>-s3)."),
    database: dnsLabel().optional().describe("Secret for the database connection (default <name>-db)."),
    oidcClient: dnsLabel()
      .optional()
      .describe("Secret for the OIDC client id and secret (default <name>-oidc)."),
  })
  .describe("Names of the Secrets this object writes into its namespace.");

const AppVendingSpec = withRules(
  z
    .object({
      app: App.optional(),
      bucket: Bucket.optional(),
      database: Database.optional(),
      oidcClient: OidcClient.optional(),
      connectionSecrets: ConnectionSecrets.optional(),
      deletionPolicy: deletionPolicy(
        "the bucket and the database (the app, its route and the OIDC client always go)",
      ),
    })
    .describe("What to vend; every part is optional but at least one is needed."),
  [
    {
      rule: "has(self.app) || has(self.bucket) || has(self.database) || has(self.oidcClient)",
      message: "an AppVending needs at least one of app, bucket, database or oidcClient",
      check: (s) =>
        s.app !== undefined ||
        s.bucket !== undefined ||
        s.database !== undefined ||
        s.oidcClient !== undefined,
    },
    {
      rule: "!has(self.connectionSecrets) || !has(self.connectionSecrets.bucket) || has(self.bucket)",
      message: "connectionSecrets.bucket is set but no bucket is requested",
      fieldPath: ".connectionSecrets.bucket",
      check: (s) => s.connectionSecrets?.bucket === undefined || s.bucket !== undefined,
    },
    {
      rule: "!has(self.connectionSecrets) || !has(self.connectionSecrets.database) || has(self.database)",
      message: "connectionSecrets.database is set but no database is requested",
      fieldPath: ".connectionSecrets.database",
      check: (s) => s.connectionSecrets?.database === undefined || s.database !== undefined,
    },
    {
      rule: "!has(self.connectionSecrets) || !has(self.connectionSecrets.oidcClient) || has(self.oidcClient)",
      message: "connectionSecrets.oidcClient is set but no oidcClient is requested",
      fieldPath: ".connectionSecrets.oidcClient",
      check: (s) => s.connectionSecrets?.oidcClient === undefined || s.oidcClient !== undefined,
    },
  ],
);

const AppVendingStatus = z
  .object({
    ...statusFields(),
    url: text(2048).optional().describe("URL the app is served at."),
    tenant: text(63).optional().describe("PeerTenant owning this namespace."),
    connectionSecrets: z
      .object({
        bucket: text(253).optional().describe("Secret written for the bucket."),
        database: text(253).optional().describe("Secret written for the database."),
        oidcClient: text(253).optional().describe("Secret written for the OIDC client."),
      })
      .optional()
      .describe("Secrets written so far."),
  })
  .describe("Observed state of the vended resources.");

export const AppVending = defineKind({
  kind: "AppVending",
  plural: "appvendings",
  shortName: "av",
  scope: "Namespaced",
  description:
    "AppVending vends an app (Knative Service + HTTPRoute), an S3 bucket, a PostgreSQL database and a Keycloak client into its namespace, within what the namespace's PeerTenant allows, and writes their connection Secrets next to it.",
  spec: AppVendingSpec,
  status: AppVendingStatus,
  printerColumns: [
    {
      name: "Ready",
      type: "string",
      jsonPath: conditionStatusPath("Ready"),
      description: "Ready condition.",
    },
    { name: "URL", type: "string", jsonPath: ".status.url", description: "Where the app is served." },
    {
      name: "App",
      type: "string",
      jsonPath: conditionStatusPath("App"),
      description: "App condition.",
      priority: 1,
    },
    {
      name: "Bucket",
      type: "string",
      jsonPath: conditionStatusPath("Bucket"),
      description: "Bucket condition.",
      priority: 1,
    },
    {
      name: "Database",
      type: "string",
      jsonPath: conditionStatusPath("Database"),
      description: "Database condition.",
      priority: 1,
    },
    { name: "Image", type: "string", jsonPath: ".spec.app.image", description: "App image.", priority: 1 },
    {
      name: "Age",
      type: "date",
      jsonPath: ".metadata.creationTimestamp",
      description: "Time since creation.",
    },
  ],
});

export type AppVending = z.infer<typeof AppVending.schema>;
export type AppVendingSpec = z.infer<typeof AppVendingSpec>;
export type AppVendingStatus = z.infer<typeof AppVendingStatus>;
