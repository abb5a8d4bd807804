// What a PeerTenant should converge to, as pure functions from its spec to Kubernetes objects. No I/O:
// the reconciler applies these, and table tests pin them down.
import type { PeerTenant } from "../../crds/peer-tenant.ts";
import { tenantPrimaryNamespace } from "../../crds/peer-tenant.ts";
import { formatQuantity, parseQuantity, type ResourceList } from "../shared/quantity.ts";
import { networkInside } from "./cidr.ts";
import type { TenantDefaults } from "./defaults.ts";
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
  return [tenantPrimaryNamespace(t), ...t.spec.namespaces.additional];
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

/** The quota of each namespace before any tenant-wide split: the spec's, filled by the operator's defaults. */
export function effectivePerNamespace(t: PeerTenant, defaults: TenantDefaults): ResourceList {
  return { ...defaults.quota, ...t.spec.quota.perNamespace };
}

/**
 * Container defaults and bounds, and the largest PVC. Written out in full, as the API server would
 * complete it (a missing default takes max, a missing defaultRequest takes default), so the object
 * read back equals the one written and any other difference is drift.
 */
export function desiredLimitRange(t: PeerTenant, ns: string, defaults: TenantDefaults): Obj {
  const l = t.spec.limits ?? {};
  const max: Record<string, string> = strings(l.max ?? {});
  const dflt: Record<string, string> = { ...strings(l.default ?? defaults.containerDefault) };
  for (const [k, v] of Object.entries(max)) dflt[k] ??= v;
  const request: Record<string, string> = {
    ...strings(l.defaultRequest ?? defaults.containerDefaultRequest),
  };
  for (const [k, v] of Object.entries(dflt)) request[k] ??= v;
  return {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: namespaced(t, ns, OBJECT_NAMES.limits),
    spec: {
      limits: [
        {
          type: "Container",
          default: dflt,
          defaultRequest: request,
          ...(Object.keys(max).length > 0 ? { max } : {}),
        },
        {
          type: "PersistentVolumeClaim",
          max: { storage: String(l.maxVolumeSize ?? defaults.maxVolumeSize) },
        },
      ],
    },
  };
}

function strings(list: ResourceList): Record<string, string> {
  return Object.fromEntries(Object.entries(list).map(([k, v]) => [k, String(v)]));
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

/** Cilium's label for a pod's namespace, set by Cilium itself: a pod cannot claim another namespace. */
const CILIUM_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace";

/** Name of a tenant's CiliumClusterwideNetworkPolicy (cluster-scoped, so it carries the tenant name). */
export function clusterwidePolicyName(tenant: string): string {
  return `homelab-tenant-${tenant}`;
}

/**
 * Pods the tenant may not reach whatever its own policies say (a CiliumNetworkPolicy may name the
 * `cluster` entity): every namespace but its own, the spec's egress namespaces and kube-system, and in
 * kube-system everything but DNS.
 */
function otherNamespacesDenied(own: string[], egressNamespaces: string[]): Record<string, unknown>[] {
  const reachable = [...new Set([...own, ...egressNamespaces, "kube-system"])].sort();
  const selectors: Record<string, unknown>[] = [
    {
      matchExpressions: [
        { key: CILIUM_NAMESPACE_LABEL, operator: "Exists" },
        { key: CILIUM_NAMESPACE_LABEL, operator: "NotIn", values: reachable },
      ],
    },
  ];
  if (!egressNamespaces.includes("kube-system")) {
    selectors.push({
      matchExpressions: [
        { key: CILIUM_NAMESPACE_LABEL, operator: "In", values: ["kube-system"] },
        { key: "k8s:k8s-app", operator: "NotIn", values: ["kube-dns"] },
      ],
    });
  }
  return selectors;
}

/**
 * Isolation a tenant cannot widen, where Cilium runs: deny rules win over every allow, including the
 * tenant's own NetworkPolicies. Egress to private addresses is denied except the cluster's own networks
 * and the networks the spec allows; egress to the nodes themselves is denied, and to pods of namespaces
 * the spec does not list (DNS excepted); ingress from pods of any namespace outside the tenant and its
 * allowed ingress namespaces is denied. It only denies
 * (enableDefaultDeny off), so the namespace's NetworkPolicies still decide what is allowed.
 */
export function desiredCiliumClusterwidePolicy(
  t: PeerTenant,
  namespaces: string[],
  defaults: TenantDefaults,
): Obj {
  const allowed = [...defaults.clusterNetworks, ...t.spec.network.egress.cidrs];
  const toCIDRSet = PRIVATE_IPV4.map((cidr) => {
    const except = [...new Set(allowed.filter((a) => networkInside(cidr, a)))].sort();
    return { cidr, ...(except.length > 0 ? { except } : {}) };
  });
  const own = [...namespaces].sort();
  const admitted = [...new Set([...own, ...t.spec.network.allowIngressFromNamespaces])].sort();
  return {
    apiVersion: "cilium.io/v2",
    kind: "CiliumClusterwideNetworkPolicy",
    metadata: { name: clusterwidePolicyName(t.metadata.name), labels: managedLabels(t.metadata.name) },
    spec: {
      description: `PeerTenant ${t.metadata.name}: deny rules its own policies cannot override`,
      endpointSelector: {
        matchExpressions: [{ key: CILIUM_NAMESPACE_LABEL, operator: "In", values: own }],
      },
      enableDefaultDeny: { ingress: false, egress: false },
      egressDeny: [
        { toCIDRSet },
        { toEntities: ["host", "remote-node"] },
        { toEndpoints: otherNamespacesDenied(own, t.spec.network.egress.namespaces) },
      ],
      ingressDeny: [
        {
          fromEndpoints: [
            {
              // Exists first: NotIn alone also matches identities without a namespace (host, world,
              // Cilium's gateway), and kubelet probes come from the host.
              matchExpressions: [
                { key: CILIUM_NAMESPACE_LABEL, operator: "Exists" },
                { key: CILIUM_NAMESPACE_LABEL, operator: "NotIn", values: admitted },
              ],
            },
          ],
        },
      ],
    },
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
 * How the cluster's authentication names the people a PeerTenant lists: kube-apiserver puts a prefix
 * before the username and group claims (structured authentication's claimMappings.*.prefix, or the
 * --oidc-*-prefix flags), and RBAC sees only the prefixed names.
 */
export interface OwnerNaming {
  usernamePrefix?: string;
  groupsPrefix?: string;
}

/**
 * kube-apiserver's rule for the username prefix of the --oidc-* flags: an explicit prefix wins ("-"
 * means none); unset, the `email` claim gets none and any other claim gets `<issuer URL>#`.
 * (Structured authentication configuration requires the prefix to be written out.)
 */
export function apiserverUsernamePrefix(issuer: string, usernameClaim: string, flag?: string): string {
  if (flag === "-") return "";
  if (flag !== undefined && flag !== "") return flag;
  return usernameClaim === "email" ? "" : `${issuer}#`;
}

export function ownerSubjects(t: PeerTenant, naming: OwnerNaming = {}): Record<string, string>[] {
  const user = naming.usernamePrefix ?? "";
  const group = naming.groupsPrefix ?? "";
  return [
    ...t.spec.owners.users.map((name) => ({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "User",
      name: `${user}${name}`,
    })),
    ...ownerGroupSubjects(t.spec.owners.groups).map((name) => ({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Group",
      name: `${group}${name}`,
    })),
  ];
}

/**
 * Owners get the built-in aggregated `admin` role in each tenant namespace: full use of the namespace,
 * RoleBindings within their own rights, no write access to quotas or limit ranges, and no cluster scope.
 * What `admin` could still change among the tenant's baseline (network policies, this binding) is
 * protected by the managed-objects admission policy.
 */
export function desiredOwnerRoleBinding(t: PeerTenant, ns: string, naming: OwnerNaming = {}): Obj {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: namespaced(t, ns, OBJECT_NAMES.ownersBinding),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: ownerSubjects(t, naming),
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
    data: {
      requiredLabels: [...t.spec.requiredLabels].sort().join(","),
      // All the tenant's namespaces, listed or not yet created: what its own policies may select.
      namespaces: [...tenantNamespaces(t)].sort().join(","),
      hostnameDomain: t.spec.hostnameDomain ?? "",
    },
  };
}

/** The GitLab agent's `ci_access` block for every tenant with a GitLab group, in one document. */
export function gitlabCiAccess(tenants: PeerTenant[]): { ci_access: { groups: Record<string, unknown>[] } } {
  const groups = tenants
    .filter((t) => t.spec.gitlab && !t.metadata.deletionTimestamp)
    .map((t) => ({
      id: t.spec.gitlab!.groupPath,
      default_namespace: tenantPrimaryNamespace(t),
      access_as: { ci_job: {} },
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
  return { ci_access: { groups } };
}

/**
 * Splits a tenant-wide total across namespaces so that the sum of their hard limits never exceeds it.
 * Each namespace keeps what it uses. A namespace that was refused for want of quota (`demand`: the usage
 * it asked to reach, from the API server's "exceeded quota" message) is served first, up to its own cap.
 * What is left is shared out evenly; a namespace that reaches its per-namespace cap leaves the rest to
 * the others (water-filling), so headroom is never stranded under a cap.
 */
export function splitTenantQuota(
  namespaces: string[],
  perNamespace: ResourceList,
  tenantTotal: ResourceList | undefined,
  usedByNamespace: Record<string, ResourceList>,
  demandByNamespace: Record<string, ResourceList> = {},
): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const ns of namespaces) result[ns] = strings(perNamespace);
  if (!tenantTotal || namespaces.length === 0) return result;
  for (const [resource, totalText] of Object.entries(tenantTotal)) {
    const total = parseQuantity(totalText);
    const capText = perNamespace[resource];
    const cap = capText === undefined ? undefined : parseQuantity(capText);
    const used = namespaces.map((ns) => parseQuantity(usedByNamespace[ns]?.[resource] ?? "0"));
    const hard = [...used];
    const room = (i: number) => (cap === undefined ? undefined : cap > hard[i]! ? cap - hard[i]! : 0n);
    let left = total - used.reduce((a, b) => a + b, 0n);
    if (left < 0n) left = 0n;
    // Demands first, in namespace order, each only as far as the total and its cap allow.
    namespaces.forEach((ns, i) => {
      const want = demandByNamespace[ns]?.[resource];
      if (want === undefined) return;
      let extra = parseQuantity(want) - hard[i]!;
      const r = room(i);
      if (r !== undefined && extra > r) extra = r;
      if (extra <= 0n || left <= 0n) return;
      if (extra > left) extra = left;
      hard[i]! += extra;
      left -= extra;
    });
    // Water-filling in whole units (milli-units for cpu would be valid too, but whole units keep memory
    // and counts readable): equal shares, and what a capped namespace cannot take goes round again.
    const unit = 1000n;
    let open = namespaces.map((_, i) => i).filter((i) => room(i) !== 0n);
    while (open.length > 0 && left >= unit) {
      const units = left / unit;
      const each = units / BigInt(open.length);
      if (each === 0n) {
        // Fewer units than namespaces: the first ones take one each.
        for (const i of open.slice(0, Number(units))) {
          const r = room(i);
          const share = r !== undefined && r < unit ? r : unit;
          hard[i]! += share;
          left -= share;
        }
        break;
      }
      for (const i of open) {
        const r = room(i);
        const share = r !== undefined && r < each * unit ? r : each * unit;
        hard[i]! += share;
        left -= share;
      }
      open = open.filter((i) => room(i) !== 0n);
    }
    namespaces.forEach((ns, i) => {
      result[ns]![resource] = formatQuantity(hard[i]!);
    });
  }
  return result;
}

/**
 * What a namespace asked for when quota refused it, read from the API server's message, e.g.
 * `exceeded quota: tenant-quota, requested: requests.memory=4Gi, used: requests.memory=0, limited: ...`:
 * the usage it needs is used + requested, per resource.
 */
export function quotaDemand(message: string, quotaName: string): Record<string, string> | undefined {
  const m = new RegExp(
    `exceeded quota: ${quotaName}, requested: ([^,]+(?:,[^,:]+=[^,]+)*), used: ([^,]+(?:,[^,:]+=[^,]+)*), limited:`,
  ).exec(message);
  if (!m) return undefined;
  const pairs = (text: string) =>
    Object.fromEntries(
      text.split(",").flatMap((p) => {
        const [k, v] = p.trim().split("=");
        return k && v ? [[k, v]] : [];
      }),
    );
  const requested = pairs(m[1]!);
  const used = pairs(m[2]!);
  const demand: Record<string, string> = {};
  for (const [k, v] of Object.entries(requested)) {
    try {
      demand[k] = formatQuantity(parseQuantity(v) + parseQuantity(used[k] ?? "0"));
    } catch {
      return undefined;
    }
  }
  return Object.keys(demand).length > 0 ? demand : undefined;
}

/** The labels by which owned objects in any namespace are traced back to their tenant. */
export function ownedSelector(t: PeerTenant): string {
  return `${MANAGED_BY_LABEL}=homelab-operator,${TENANT_LABEL}=${t.metadata.name}`;
}
