// Labels and names every PeerTenant-owned object carries (conventions of ../shared/design/architecture.md).

export const TENANT_LABEL = "homelab.shdr.ch/tenant";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "homelab-operator";
/** On a namespace a tenant released (deletionPolicy Retain): which tenant; another may adopt it. */
export const RELEASED_LABEL = "homelab.shdr.ch/released-from";
/** The seed's own label for who owns a namespace and its workloads. */
export const OWNER_LABEL = "owner";

/** Names of the per-namespace objects a tenant owns; the guardrails protect them by these labels. */
export const OBJECT_NAMES = {
  quota: "tenant-quota",
  limits: "tenant-limits",
  ownersBinding: "tenant-owners",
  gitlabBinding: "tenant-gitlab-deployers",
  guardrailParams: "tenant-guardrails",
  defaultDeny: "tenant-default-deny",
  allowTenant: "tenant-allow-same-tenant",
  allowIngress: "tenant-allow-ingress",
  allowDns: "tenant-allow-dns",
  allowEgress: "tenant-allow-egress",
  ciliumGateway: "tenant-allow-cilium-gateway",
  releasedDefaultDeny: "released-default-deny",
  releasedQuota: "released-quota",
} as const;

/**
 * Every tenant-owned object: the label selector of the caches that hold them. Controllers watching these
 * kinds use this exact string, so they share one informer (the cache is keyed by the selector).
 */
export const TENANT_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY},${TENANT_LABEL}`;

export function managedLabels(tenant: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY, [TENANT_LABEL]: tenant };
}
