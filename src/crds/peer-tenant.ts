// PeerTenant: a peer's isolated slice of the cluster (the seed's "Multi-Tenancy Model": peers-<name>
// namespaces, ResourceQuota, Cilium isolation, Keycloak OIDC groups, GitLab group -> namespace).
// Shaped after Capsule's Tenant (owners, namespace quota, tenant-wide quota, required metadata), with
// the guardrails owned by the operator, never by the tenant.
import * as z from "zod";
import {
  deletionPolicy,
  dnsLabel,
  ipv4Network,
  matching,
  quantity,
  resourceList,
  setOf,
  text,
} from "./fields.ts";
import { defineKind } from "./kind.ts";
import { withRules } from "./rules.ts";
import { conditionStatusPath, statusFields } from "./status.ts";

/** `peers-<name>` plus a suffix such as `-staging` must stay a 63-character namespace name. */
export const PEER_TENANT_NAME_MAX = 30;
export const PRIMARY_NAMESPACE_PREFIX = "peers-";

/** The default primary namespace of a tenant, `peers-<name>`. */
export function primaryNamespace(tenantName: string): string {
  return `${PRIMARY_NAMESPACE_PREFIX}${tenantName}`;
}

/** The primary namespace a tenant really has: the chosen `namespaces.primary`, else `peers-<name>`. */
export function tenantPrimaryNamespace(t: {
  metadata: { name: string };
  spec: { namespaces: { primary?: string | undefined } };
}): string {
  return t.spec.namespaces.primary ?? primaryNamespace(t.metadata.name);
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const Owners = withRules(
  z
    .object({
      users: setOf(text(253).min(1).describe("An OIDC user name (e.g. preferred_username)."), 32)
        .default([])
        .describe("OIDC users who administer the tenant's namespaces, e.g. [alice]."),
      groups: setOf(text(253).min(1).describe("An OIDC group name."), 32)
        .default([])
        .describe("OIDC groups whose members administer the tenant's namespaces, e.g. [peers-alice]."),
    })
    .describe("Who owns the tenant: they get admin inside its namespaces and nothing outside them."),
  [
    {
      rule: "size(self.users) + size(self.groups) >= 1",
      message: "owners needs at least one user or group",
      check: (o) => o.users.length + o.groups.length >= 1,
    },
    {
      // Kubernetes' own identities (system:masters, system:serviceaccounts, system:authenticated, nodes,
      // controllers) all start with system:; binding one of them would hand the tenant to everyone in it.
      rule: "self.users.all(u, !u.startsWith('system:')) && self.groups.all(g, !g.startsWith('system:') && !g.startsWith('/system:'))",
      message:
        "owners must be people: system:* users and groups (Kubernetes' own identities, service accounts and their groups) cannot own a tenant",
      check: (o) =>
        o.users.every((u) => !u.startsWith("system:")) &&
        o.groups.every((g) => !g.startsWith("system:") && !g.startsWith("/system:")),
    },
  ],
);

const Namespaces = withRules(
  z
    .object({
      additional: setOf(dnsLabel().describe("A namespace name."), 16)
        .default([])
        .describe("Namespaces besides the primary peers-<name>, each named peers-<name>-<suffix>."),
      max: z
        .number()
        .int()
        .min(1)
        .max(17)
        .default(3)
        .describe("Most namespaces the tenant may have, the primary included (default 3)."),
      primary: dnsLabel()
        .optional()
        .describe(
          "Name of the primary namespace when it is not peers-<name>, e.g. infra or projects for the seed's own tenants. Additional namespaces are then named <primary>-<suffix>.",
        ),
      adopt: setOf(dnsLabel().describe("A namespace name."), 17)
        .default([])
        .describe(
          "Namespaces of this tenant that another tenant released (deletionPolicy Retain) and this one may take over; without it a released namespace is a NamespaceConflict.",
        ),
    })
    .default({ additional: [], max: 3, adopt: [] })
    .describe("The tenant's namespaces; the primary one, peers-<name>, always exists."),
  [
    {
      rule: "!has(self.primary) || !(self.primary.startsWith('kube-') || self.primary in ['default', 'homelab-system'])",
      message: "namespaces.primary cannot be default, homelab-system or a kube-* namespace",
      fieldPath: ".primary",
      check: (n) =>
        n.primary === undefined ||
        !(n.primary.startsWith("kube-") || ["default", "homelab-system"].includes(n.primary)),
    },
    {
      rule: "size(self.additional) + 1 <= self.max",
      message: "namespaces.additional plus the primary namespace exceed namespaces.max",
      fieldPath: ".additional",
      check: (n) => n.additional.length + 1 <= n.max,
    },
  ],
);

const Quota = z
  .object({
    perNamespace: resourceList()
      .default({})
      .describe(
        "ResourceQuota hard limits for each namespace, e.g. {requests.memory: 4Gi, limits.memory: 8Gi, pods: 20}.",
      ),
    tenantTotal: resourceList()
      .optional()
      .describe("Limits summed over all the tenant's namespaces, e.g. {requests.memory: 6Gi}."),
  })
  .default({ perNamespace: {} })
  .describe("Resource quotas of the tenant.");

const Limits = z
  .object({
    defaultRequest: resourceList(8)
      .optional()
      .describe("Requests given to containers that set none, e.g. {cpu: 100m, memory: 128Mi}."),
    default: resourceList(8)
      .optional()
      .describe("Limits given to containers that set none, e.g. {cpu: 500m, memory: 512Mi}."),
    max: resourceList(8).optional().describe("Largest limits a single container may set."),
    maxVolumeSize: quantity()
      .optional()
      .describe(
        "Largest storage request of a single PersistentVolumeClaim, e.g. 20Gi (default: the operator's setting).",
      ),
  })
  .describe("LimitRange defaults for containers in the tenant's namespaces.");

const Network = z
  .object({
    allowIngressFromNamespaces: setOf(dnsLabel().describe("A namespace name."), 16)
      .default(["knative-serving"])
      .describe(
        "Namespaces whose pods may connect to the tenant's pods (default [knative-serving], whose activator serves scaled-to-zero apps). Matched by kubernetes.io/metadata.name, which tenants cannot forge.",
      ),
    allowFromGateway: z
      .boolean()
      .default(true)
      .describe("Admit traffic from Cilium's Gateway API proxy (the reserved ingress entity; default true)."),
    egress: z
      .object({
        internet: z
          .boolean()
          .default(true)
          .describe("Allow connections to addresses outside the cluster (default true)."),
        namespaces: setOf(dnsLabel().describe("A namespace name."), 16)
          .default([])
          .describe("Other namespaces the tenant's pods may connect to."),
        cidrs: setOf(ipv4Network("10.0.2.0/24").describe("A network in CIDR notation."), 16)
          .default([])
          .describe("Private networks the tenant's pods may connect to, e.g. [10.0.2.0/24]."),
      })
      .default({ internet: true, namespaces: [], cidrs: [] })
      .describe(
        "Where the tenant's pods may connect; DNS and the tenant's own namespaces are always allowed.",
      ),
  })
  .default({
    allowIngressFromNamespaces: ["knative-serving"],
    allowFromGateway: true,
    egress: { internet: true, namespaces: [], cidrs: [] },
  })
  .describe(
    "Network isolation: the tenant's namespaces accept traffic only from themselves and what is listed here.",
  );

const GitLab = z
  .object({
    groupPath: matching(
      /^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*(\/[a-zA-Z0-9_.][a-zA-Z0-9_.-]*)*$/,
      255,
      "must be a GitLab group path such as peers/alice",
    ).describe("Full path of the GitLab group whose CI deploys into the tenant, e.g. peers/alice."),
    groupID: z.number().int().min(1).optional().describe("Numeric id of the GitLab group, when known."),
  })
  .describe("GitLab agent ci_access: the group's pipelines deploy into the tenant's primary namespace.");

const Vending = z
  .object({
    maxApps: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(5)
      .describe("Most AppVendings with an app (default 5)."),
    maxBuckets: z.number().int().min(0).max(100).default(2).describe("Most S3 buckets (default 2)."),
    maxDatabases: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(1)
      .describe("Most PostgreSQL databases (default 1)."),
    maxOIDCClients: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(2)
      .describe("Most Keycloak clients (default 2)."),
    allowedDomains: setOf(
      matching(
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/,
        253,
        "must be a DNS domain such as apps.home.shdr.ch",
      ).describe("A DNS domain."),
      8,
    )
      .default(["apps.home.shdr.ch"])
      .describe(
        "Shared domains where the operator may claim AppVending hostnames for the tenant, besides its hostnameDomain; never inside another tenant's hostnameDomain (default [apps.home.shdr.ch]).",
      ),
  })
  .default({
    maxApps: 5,
    maxBuckets: 2,
    maxDatabases: 1,
    maxOIDCClients: 2,
    allowedDomains: ["apps.home.shdr.ch"],
  })
  .describe("What the tenant may vend through AppVending.");

const PeerTenantSpec = z
  .object({
    displayName: text(128).optional().describe("Human-friendly name, e.g. Alice."),
    owners: Owners,
    namespaces: Namespaces,
    quota: Quota,
    limits: Limits.optional(),
    network: Network,
    podSecurity: z
      .enum(["restricted", "baseline"])
      .default("restricted")
      .describe(
        "Pod Security Standard enforced on the tenant's namespaces: restricted (default) or baseline.",
      ),
    requiredLabels: setOf(
      matching(LABEL_KEY, 317, "must be a label key such as owner or example.com/team").describe(
        "A label key.",
      ),
      16,
    )
      .default([])
      .describe("Label keys every pod in the tenant's namespaces must carry, e.g. [owner]."),
    gitlab: GitLab.optional(),
    hostnameDomain: matching(
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/,
      253,
      "must be a DNS domain such as alice.apps.home.shdr.ch",
    )
      .optional()
      .describe(
        "The tenant's own DNS domain, e.g. alice.apps.home.shdr.ch: hostnames the tenant writes itself (HTTPRoute hostnames, Knative DomainMapping names) must be it or end in it, and no other tenant's app may take a name in it. Without it the tenant's own routes may claim no hostname; its AppVendings still may, in vending.allowedDomains.",
      ),
    clusterRef: dnsLabel()
      .optional()
      .describe(
        "Name of the HomelabCluster whose workload cluster holds the tenant; without it, the cluster the operator runs in.",
      ),
    vending: Vending,
    deletionPolicy: deletionPolicy("the tenant's namespaces and everything in them"),
  })
  .describe("Desired state of a peer's tenant.");

const PeerTenantStatus = z
  .object({
    ...statusFields(),
    namespaces: setOf(dnsLabel().describe("A namespace name."), 17)
      .optional()
      .describe("Namespaces that exist for the tenant."),
    namespaceCount: z.number().int().min(0).optional().describe("Number of the tenant's namespaces."),
    quota: z
      .object({
        hard: resourceList().optional().describe("Tenant-wide limits in force."),
        used: resourceList().optional().describe("Usage summed over the tenant's namespaces."),
      })
      .optional()
      .describe("Tenant-wide quota usage."),
  })
  .describe("Observed state of the tenant.");

export const PeerTenant = defineKind({
  kind: "PeerTenant",
  plural: "peertenants",
  shortName: "pt",
  scope: "Cluster",
  description:
    "PeerTenant gives a peer isolated namespaces (peers-<name>, ...) with quotas, default limits, network isolation, Pod Security, OIDC owner access and limits on what they may vend. Its name is the tenant name.",
  spec: PeerTenantSpec,
  status: PeerTenantStatus,
  rootRules: [
    {
      rule: `size(self.metadata.name) <= ${PEER_TENANT_NAME_MAX} && self.metadata.name.matches(r'^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
      message: `PeerTenant name must be a DNS label of at most ${PEER_TENANT_NAME_MAX} characters starting with a letter, so peers-<name> namespaces fit`,
      check: (o) =>
        o.metadata.name.length <= PEER_TENANT_NAME_MAX &&
        /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(o.metadata.name),
    },
    {
      // No string concatenation: the apiserver's cost estimate treats metadata.name as unbounded, and a
      // concatenation inside the loop then exceeds the budget; substring comparisons stay within it.
      rule: "has(self.spec.namespaces.primary) || self.spec.namespaces.additional.all(n, size(n) > size(self.metadata.name) + 7 && n.startsWith('peers-') && n.substring(6).startsWith(self.metadata.name) && n.substring(6 + size(self.metadata.name)).startsWith('-'))",
      message: "every namespaces.additional entry must be named peers-<tenant name>-<suffix>",
      fieldPath: ".spec.namespaces.additional",
      check: (o) =>
        o.spec.namespaces.primary !== undefined ||
        o.spec.namespaces.additional.every((n) => n.startsWith(`${primaryNamespace(o.metadata.name)}-`)),
    },
    {
      rule: "!has(self.spec.namespaces.primary) || self.spec.namespaces.additional.all(n, size(n) > size(self.spec.namespaces.primary) + 1 && n.startsWith(self.spec.namespaces.primary) && n.substring(size(self.spec.namespaces.primary)).startsWith('-'))",
      message:
        "with namespaces.primary set, every namespaces.additional entry must be named <primary>-<suffix>",
      fieldPath: ".spec.namespaces.additional",
      check: (o) =>
        o.spec.namespaces.primary === undefined ||
        o.spec.namespaces.additional.every((n) => n.startsWith(`${o.spec.namespaces.primary}-`)),
    },
  ],
  printerColumns: [
    {
      name: "Ready",
      type: "string",
      jsonPath: conditionStatusPath("Ready"),
      description: "Ready condition.",
    },
    {
      name: "Namespaces",
      type: "integer",
      jsonPath: ".status.namespaceCount",
      description: "Namespaces in use.",
    },
    { name: "Max", type: "integer", jsonPath: ".spec.namespaces.max", description: "Namespace limit." },
    {
      name: "Pod Security",
      type: "string",
      jsonPath: ".spec.podSecurity",
      description: "Enforced standard.",
    },
    {
      name: "Age",
      type: "date",
      jsonPath: ".metadata.creationTimestamp",
      description: "Time since creation.",
    },
  ],
});

export type PeerTenant = z.infer<typeof PeerTenant.schema>;
export type PeerTenantSpec = z.infer<typeof PeerTenantSpec>;
export type PeerTenantStatus = z.infer<typeof PeerTenantStatus>;
