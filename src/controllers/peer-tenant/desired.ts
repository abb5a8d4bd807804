// What a PeerTenant should converge to, as pure functions from its spec to Kubernetes objects. No I/O:
// the reconciler applies these, and table tests pin them down.
import type { PeerTenant } from "../../crds/peer-tenant.ts";
import { primaryNamespace } from "../../crds/peer-tenant.ts";
import { formatQuantity, parseQuantity, type ResourceList } from "../shared/quantity.ts";
import { MANAGED_BY_LABEL, managedLabels, OBJECT_NAMES, OWNER_LABEL, TENANT_LABEL } from "./labels.ts";

/** Kubernetes puts this label on every namespace; tenants cannot set it, so policies may trust it. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";
/** Knative's activator serves requests for scaled-to-zero revisions from this namespace. */
export const KNATIVE_NAMESPACE = "knative-serving";

const PRIVATE_IPV4 = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "127.0.0.0/8",
];
const PRIVATE_IPV6 = ["fc00::/7", "fe80::/10", "::1/128"];

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: Record<string, unknown> };

export function tenantNamespaces(t: PeerTenant): string[] {
  return [primaryNamespace(t.metadata.name), ...t.spec.namespaces.additional];
}

export function desiredNamespace(t: PeerTenant, ns: string): Obj {
  const level = t.spec.podSecurity;
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: ns,
      labels: {
        ...managedLabels(t.metadata.name),
        [OWNER_LABEL]: t.metadata.name,
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
      },
      ...(t.spec.displayName ? { annotations: { "homelab.shdr.ch/display-name": t.spec.displayName } } : {}),
    },
  };
}

function namespaced(t: PeerTenant, ns: string, name: string) {
  return { name, namespace: ns, labels: managedLabels(t.metadata.name) };
}

/**
 * The ResourceQuota of one namespace. `hard` is the per-namespace spec, tightened by the tenant-wide
 * share computed by `splitTenantQuota` when the tenant has a total.
 */
export function desiredResourceQuota(t: PeerTenant, ns: string, hard: ResourceList): Obj {
  return {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: namespaced(t, ns, OBJECT_NAMES.quota),
    spec: { hard },
  };
}

export function desiredLimitRange(t: PeerTenant, ns: string): Obj | undefined {
  const l = t.spec.limits;
  if (!l || (!l.default && !l.defaultRequest && !l.max)) return undefined;
  return {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: namespaced(t, ns, OBJECT_NAMES.limits),
    spec: {
      limits: [
        {
          type: "Container",
          ...(l.default ? { default: l.default } : {}),
          ...(l.defaultRequest ? { defaultRequest: l.defaultRequest } : {}),
          ...(l.max ? { max: l.max } : {}),
        },
      ],
    },
  };
}

const byNames = (names: string[]) => ({
  namespaceSelector: {
    matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: "In", values: [...names].sort() }],
  },
});

export function desiredNetworkPolicies(t: PeerTenant, ns: string): Obj[] {
  const np = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: namespaced(t, ns, name),
    spec: { podSelector: {}, ...spec },
  });
  const own = tenantNamespaces(t);
  const net = t.spec.network;
  const policies: Obj[] = [
    np(OBJECT_NAMES.defaultDeny, { policyTypes: ["Ingress", "Egress"] }),
    np(OBJECT_NAMES.allowTenant, {
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [byNames(own)] }],
      egress: [{ to: [byNames(own)] }],
    }),
    np(OBJECT_NAMES.allowDns, {
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{ ...byNames(["kube-system"]), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
      ],
    }),
  ];
  if (net.allowIngressFromNamespaces.length > 0) {
    policies.push(
      np(OBJECT_NAMES.allowIngress, {
        policyTypes: ["Ingress"],
        ingress: [{ from: [byNames(net.allowIngressFromNamespaces)] }],
      }),
    );
  }
  const egressTo: Record<string, unknown>[] = [];
  if (net.egress.internet) {
    egressTo.push({ ipBlock: { cidr: "0.0.0.0/0", except: PRIVATE_IPV4 } });
    egressTo.push({ ipBlock: { cidr: "::/0", except: PRIVATE_IPV6 } });
  }
  for (const cidr of net.egress.cidrs) egressTo.push({ ipBlock: { cidr } });
  if (net.egress.namespaces.length > 0) egressTo.push(byNames(net.egress.namespaces));
  if (egressTo.length > 0) {
    policies.push(np(OBJECT_NAMES.allowEgress, { policyTypes: ["Egress"], egress: [{ to: egressTo }] }));
  }
  return policies;
}

/**
 * Cilium's Gateway API proxy reaches backends as the reserved `ingress` entity, not from a namespace,
 * so plain NetworkPolicies cannot admit it; this CiliumNetworkPolicy does (only where Cilium runs).
 */
export function desiredCiliumGatewayPolicy(t: PeerTenant, ns: string): Obj | undefined {
  if (!t.spec.network.allowFromGateway) return undefined;
  return {
    apiVersion: "cilium.io/v2",
    kind: "CiliumNetworkPolicy",
    metadata: namespaced(t, ns, OBJECT_NAMES.ciliumGateway),
    spec: { endpointSelector: {}, ingress: [{ fromEntities: ["ingress"] }] },
  };
}

/** Keycloak emits `/name` for groups when "full group path" is on; bind both forms so either works. */
export function ownerGroupSubjects(groups: string[]): string[] {
  const forms = new Set<string>();
  for (const g of groups) {
    const bare = g.replace(/^\/+/, "");
    forms.add(bare);
    forms.add(`/${bare}`);
  }
  return [...forms].sort();
}

/**
 * Owners get the built-in aggregated `admin` role in each tenant namespace: full use of the namespace,
 * RoleBindings within their own rights, no write access to quotas or limit ranges, and no cluster scope.
 * What `admin` could still change among the tenant's baseline (network policies, this binding) is
 * protected by the managed-objects admission policy.
 */
export function desiredOwnerRoleBinding(t: PeerTenant, ns: string): Obj {
  const subjects = [
    ...t.spec.owners.users.map((name) => ({ apiGroup: "rbac.authorization.k8s.io", kind: "User", name })),
    ...ownerGroupSubjects(t.spec.owners.groups).map((name) => ({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Group",
      name,
    })),
  ];
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: namespaced(t, ns, OBJECT_NAMES.ownersBinding),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects,
  };
}

/**
 * GitLab agent CI jobs run with `access_as: ci_job`, which presents the job as groups such as
 * `gitlab:group:<id>`; binding that group to `edit` lets the tenant's pipelines deploy, and nothing else.
 */
export function gitlabCiGroup(groupID: number): string {
  return `gitlab:group:${groupID}`;
}

export function desiredGitlabRoleBinding(t: PeerTenant, ns: string): Obj | undefined {
  const id = t.spec.gitlab?.groupID;
  if (id === undefined) return undefined;
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: namespaced(t, ns, OBJECT_NAMES.gitlabBinding),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: gitlabCiGroup(id) }],
  };
}

/** Parameters of the per-tenant admission policies, read by them from the request's namespace. */
export function desiredGuardrailParams(t: PeerTenant, ns: string): Obj {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: namespaced(t, ns, OBJECT_NAMES.guardrailParams),
    data: { requiredLabels: [...t.spec.requiredLabels].sort().join(",") },
  };
}

/** The GitLab agent's `ci_access` block for every tenant with a GitLab group, in one document. */
export function gitlabCiAccess(tenants: PeerTenant[]): { ci_access: { groups: Record<string, unknown>[] } } {
  const groups = tenants
    .filter((t) => t.spec.gitlab && !t.metadata.deletionTimestamp)
    .map((t) => ({
      id: t.spec.gitlab!.groupPath,
      default_namespace: primaryNamespace(t.metadata.name),
      access_as: { ci_job: {} },
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
  return { ci_access: { groups } };
}

/**
 * Splits a tenant-wide total across namespaces so that the sum of their hard limits never exceeds it:
 * each namespace keeps what it uses and gets an equal share of what is left (the first namespaces
 * take the remainder). As usage moves, re-running this shifts the headroom, as Capsule's tenant quota
 * does, but without its window where two namespaces could both take the whole headroom at once.
 * A per-namespace limit, when lower, still wins.
 */
export function splitTenantQuota(
  namespaces: string[],
  perNamespace: ResourceList,
  tenantTotal: ResourceList | undefined,
  usedByNamespace: Record<string, ResourceList>,
): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const ns of namespaces) {
    result[ns] = Object.fromEntries(Object.entries(perNamespace).map(([k, v]) => [k, String(v)]));
  }
  if (!tenantTotal || namespaces.length === 0) return result;
  for (const [resource, totalText] of Object.entries(tenantTotal)) {
    const total = parseQuantity(totalText);
    const used = namespaces.map((ns) => parseQuantity(usedByNamespace[ns]?.[resource] ?? "0"));
    const usedSum = used.reduce((a, b) => a + b, 0n);
    const headroom = total > usedSum ? total - usedSum : 0n;
    // Shares are in whole units (milli-units for cpu-like resources would be valid too, but whole
    // units keep memory and counts readable).
    const unit = 1000n;
    const units = headroom / unit;
    const n = BigInt(namespaces.length);
    namespaces.forEach((ns, i) => {
      const share = (units / n + (BigInt(i) < units % n ? 1n : 0n)) * unit;
      let hard = used[i]! + share;
      const own = perNamespace[resource];
      if (own !== undefined && parseQuantity(own) < hard) hard = parseQuantity(own);
      result[ns]![resource] = formatQuantity(hard);
    });
  }
  return result;
}

/** The labels by which owned objects in any namespace are traced back to their tenant. */
export function ownedSelector(t: PeerTenant): string {
  return `${MANAGED_BY_LABEL}=homelab-operator,${TENANT_LABEL}=${t.metadata.name}`;
}
