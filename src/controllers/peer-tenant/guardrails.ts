// Cluster-wide guardrails for every tenant namespace, as ValidatingAdmissionPolicies: the API server
// enforces them itself, so there is no webhook to run and nothing fails open when the operator is down.
// One set serves all tenants: bindings select namespaces by the tenant label, which tenants cannot set
// (namespaces are cluster-scoped and tenants get no namespace write access).
import { MANAGED_BY, MANAGED_BY_LABEL, OBJECT_NAMES, TENANT_LABEL } from "./labels.ts";

export interface GuardrailOptions {
  /**
   * Usernames allowed to change operator-managed objects in tenant namespaces (the operator's own
   * identity). Members of system:masters and kube-system controllers are always allowed.
   */
  operatorUsernames: string[];
  /** PriorityClasses tenant pods may name; any other priorityClassName is refused. */
  allowedPriorityClasses: string[];
}

const VAP_API = "admissionregistration.k8s.io/v1";
export const POLICY_NAMES = {
  managedObjects: "homelab-tenant-managed-objects",
  services: "homelab-tenant-services",
  requiredLabels: "homelab-tenant-required-labels",
  imagePull: "homelab-tenant-image-pull",
  networkPolicies: "homelab-tenant-network-policies",
  priorityClasses: "homelab-tenant-priority-classes",
  reservedLabels: "homelab-tenant-reserved-labels",
  hostnames: "homelab-tenant-hostnames",
} as const;

/** Label keys under this prefix are the operator's: no object in a tenant namespace may gain one. */
export const RESERVED_LABEL_PREFIX = "homelab.shdr.ch/";

/** Entities a tenant's own CiliumNetworkPolicy may name: nothing beyond the cluster. */
const TENANT_ENTITIES = ["cluster"];

const tenantNamespaces = { matchExpressions: [{ key: TENANT_LABEL, operator: "Exists" }] };

function cel(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function policy(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: VAP_API,
    kind: "ValidatingAdmissionPolicy",
    metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    spec: { failurePolicy: "Fail", ...spec },
  };
}

function binding(name: string, extra: Record<string, unknown> = {}, actions: string[] = ["Deny"]) {
  return {
    apiVersion: VAP_API,
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    spec: {
      policyName: name,
      validationActions: actions,
      matchResources: { namespaceSelector: tenantNamespaces },
      ...extra,
    },
  };
}

/** Who may still change what the operator manages: itself, cluster admins, and kube-system controllers
 * (the namespace controller must be able to empty a namespace the operator deletes). */
function trustedActorCondition(operatorUsernames: string[]): string {
  const names = [...operatorUsernames, "system:kube-controller-manager"]
    .map((u) => `'${u.replace(/['\\]/g, "")}'`)
    .join(", ");
  return cel(`
    request.userInfo.username in [${names}] ||
    request.userInfo.username.startsWith('system:serviceaccount:kube-system:') ||
    (has(request.userInfo.groups) && 'system:masters' in request.userInfo.groups)
  `);
}

const managedExpr = (obj: string) =>
  `has(${obj}.metadata.labels) && ${obj}.metadata.labels[?'${MANAGED_BY_LABEL}'].orValue('') == '${MANAGED_BY}'`;

export function desiredGuardrailPolicies(opts: GuardrailOptions): Record<string, unknown>[] {
  const managedObjects = policy(POLICY_NAMES.managedObjects, {
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        {
          apiGroups: [""],
          apiVersions: ["*"],
          resources: ["resourcequotas", "limitranges", "configmaps", "serviceaccounts"],
          operations: ["CREATE", "UPDATE", "DELETE"],
        },
        {
          apiGroups: ["networking.k8s.io"],
          apiVersions: ["*"],
          resources: ["networkpolicies"],
          operations: ["CREATE", "UPDATE", "DELETE"],
        },
        {
          apiGroups: ["rbac.authorization.k8s.io"],
          apiVersions: ["*"],
          resources: ["roles", "rolebindings"],
          operations: ["CREATE", "UPDATE", "DELETE"],
        },
        {
          apiGroups: ["cilium.io"],
          apiVersions: ["*"],
          resources: ["ciliumnetworkpolicies"],
          operations: ["CREATE", "UPDATE", "DELETE"],
        },
      ],
    },
    matchConditions: [
      { name: "not-a-trusted-actor", expression: `!(${trustedActorCondition(opts.operatorUsernames)})` },
    ],
    variables: [
      { name: "wasManaged", expression: cel(`request.operation != 'CREATE' && ${managedExpr("oldObject")}`) },
      {
        name: "becomesManaged",
        expression: cel(`request.operation != 'DELETE' && ${managedExpr("object")}`),
      },
    ],
    validations: [
      {
        expression: "!variables.wasManaged",
        messageExpression: cel(`'this ' + request.kind.kind + ' is managed by the PeerTenant ' +
          oldObject.metadata.labels[?'${TENANT_LABEL}'].orValue('?') +
          ': ask an admin to change the PeerTenant instead of editing it'`),
        reason: "Forbidden",
      },
      {
        expression: "!variables.becomesManaged",
        message: `the label ${MANAGED_BY_LABEL}=${MANAGED_BY} is reserved for objects the operator manages`,
        reason: "Forbidden",
      },
    ],
  });

  const services = policy(POLICY_NAMES.services, {
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        { apiGroups: [""], apiVersions: ["*"], resources: ["services"], operations: ["CREATE", "UPDATE"] },
      ],
    },
    validations: [
      {
        expression: "!has(object.spec.type) || !(object.spec.type in ['NodePort', 'LoadBalancer'])",
        messageExpression:
          "'Services of type ' + object.spec.type + ' are not allowed in tenant namespaces: expose apps through an HTTPRoute (or AppVending)'",
        reason: "Forbidden",
      },
      {
        // An ExternalName Service makes cluster DNS (and gateways that follow it) point anywhere,
        // including the LAN addresses the network policies keep tenants away from.
        expression: "!has(object.spec.type) || object.spec.type != 'ExternalName'",
        message:
          "Services of type ExternalName are not allowed in tenant namespaces: they can point cluster DNS and gateways at any address",
        reason: "Forbidden",
      },
      {
        // externalIPs let a Service capture traffic for any address (CVE-2020-8554).
        expression: "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
        message: "spec.externalIPs is not allowed in tenant namespaces",
        reason: "Forbidden",
      },
    ],
  });

  // Required labels are per tenant: each tenant namespace has a ConfigMap of parameters, found in the
  // namespace of the request (paramRef without a namespace).
  const podTemplateOwners = ["deployments", "statefulsets", "daemonsets", "replicasets"];
  const requiredLabels = policy(POLICY_NAMES.requiredLabels, {
    paramKind: { apiVersion: "v1", kind: "ConfigMap" },
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        { apiGroups: [""], apiVersions: ["*"], resources: ["pods"], operations: ["CREATE", "UPDATE"] },
        {
          apiGroups: ["apps"],
          apiVersions: ["*"],
          resources: podTemplateOwners,
          operations: ["CREATE", "UPDATE"],
        },
        {
          apiGroups: ["batch"],
          apiVersions: ["*"],
          resources: ["jobs", "cronjobs"],
          operations: ["CREATE", "UPDATE"],
        },
      ],
    },
    variables: [
      {
        name: "required",
        expression: cel(`params.data[?'requiredLabels'].orValue('').split(',')
          .map(l, l.trim()).filter(l, l != '')`),
      },
      {
        // The labels that end up on pods: the pod's own, or its template's.
        name: "labels",
        expression: cel(`request.kind.kind == 'Pod' ? object.metadata.?labels.orValue({}) :
          request.kind.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.metadata.?labels.orValue({}) :
          object.spec.template.metadata.?labels.orValue({})`),
      },
    ],
    validations: [
      {
        expression: "variables.required.all(l, l in variables.labels)",
        messageExpression: cel(`'missing required pod label(s): ' +
          variables.required.filter(l, !(l in variables.labels)).join(', ') +
          (request.kind.kind == 'Pod' ? '' : ' (set them on the pod template)')`),
        reason: "Invalid",
      },
    ],
  });

  // MTB level 1 "require image pull Always": surfaced as a warning and in the audit log rather than
  // denied, because platform sidecars (e.g. Knative's queue-proxy) set their own pull policy.
  const imagePull = policy(POLICY_NAMES.imagePull, {
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [{ apiGroups: [""], apiVersions: ["*"], resources: ["pods"], operations: ["CREATE"] }],
    },
    validations: [
      {
        expression: "object.spec.containers.all(c, c.?imagePullPolicy.orValue('') == 'Always')",
        message:
          "tenant containers should set imagePullPolicy: Always so private images cached on a node are re-authorised",
        reason: "Invalid",
      },
    ],
  });

  const paramsBinding = (name: string) =>
    binding(name, { paramRef: { name: OBJECT_NAMES.guardrailParams, parameterNotFoundAction: "Deny" } });
  return [
    ...tenantNetworkPolicyPolicy(),
    ...priorityClassPolicy(opts.allowedPriorityClasses),
    ...reservedLabelsPolicy(opts.operatorUsernames),
    policy(POLICY_NAMES.hostnames, hostnamesSpec(opts.operatorUsernames)),
    paramsBinding(POLICY_NAMES.hostnames),
    managedObjects,
    binding(POLICY_NAMES.managedObjects),
    services,
    binding(POLICY_NAMES.services),
    requiredLabels,
    paramsBinding(POLICY_NAMES.requiredLabels),
    imagePull,
    binding(POLICY_NAMES.imagePull, {}, ["Warn", "Audit"]),
  ];
}

const SYSTEM_MASTERS = "has(request.userInfo.groups) && 'system:masters' in request.userInfo.groups";

/** A label selector (Cilium endpoint selector) that stays inside the policy's own namespace. */
function localSelector(sel: string): string {
  const keyOk = (k: string) =>
    `(!${k}.contains('io.kubernetes.pod.namespace') && !${k}.contains('io.cilium') && (!${k}.contains(':') || ${k}.startsWith('k8s:')))`;
  return cel(`(${sel}.?matchLabels.orValue({}).all(k, ${keyOk("k")}) &&
    ${sel}.?matchExpressions.orValue([]).all(x, ${keyOk("x.key")}))`);
}

/** A NetworkPolicy peer that selects no namespace but the tenant's own (by their unforgeable name label). */
function ownNamespacesPeer(p: string): string {
  const sel = `${p}.namespaceSelector`;
  return cel(`(!has(${sel}) || (
    size(${sel}.?matchLabels.orValue({})) + size(${sel}.?matchExpressions.orValue([])) > 0 &&
    ${sel}.?matchLabels.orValue({}).all(k, k == 'kubernetes.io/metadata.name' &&
      ${sel}.matchLabels[k] in variables.own) &&
    ${sel}.?matchExpressions.orValue([]).all(e, e.key == 'kubernetes.io/metadata.name' &&
      e.operator == 'In' && e.values.all(v, v in variables.own))))`);
}

/**
 * What tenants may put in their own NetworkPolicies and CiliumNetworkPolicies. Kubernetes policies only
 * add allows, so a tenant allow-all would undo isolation: no ipBlock/CIDR rules, no peers in other
 * namespaces, no entities beyond the cluster, no FQDN, node, service or cloud-group rules. Deny rules
 * (Cilium's ingressDeny/egressDeny) only take away, so they stay allowed. The operator's own policies
 * (managed label, which tenants cannot set) and cluster admins are exempt.
 */
function tenantNetworkPolicyPolicy(): Record<string, unknown>[] {
  const npPeers = (dir: "ingress" | "egress", field: "from" | "to", check: (p: string) => string) =>
    `object.spec.?${dir}.orValue([]).all(r, r.?${field}.orValue([]).all(p, ${check("p")}))`;
  const isNp = "request.resource.resource == 'networkpolicies'";
  // An L4-only Cilium rule (toPorts without an L3 selector) applies to every peer: a selector is required.
  const ingressOk = cel(`i, (size(i.?fromEndpoints.orValue([])) + size(i.?fromEntities.orValue([])) > 0) &&
    !has(i.fromCIDR) && !has(i.fromCIDRSet) && !has(i.fromNodes) &&
    !has(i.fromGroups) && !has(i.fromRequires) &&
    i.?fromEntities.orValue([]).all(e, e in ${JSON.stringify(TENANT_ENTITIES).replace(/"/g, "'")}) &&
    i.?fromEndpoints.orValue([]).all(s, ${localSelector("s")})`);
  const egressOk = cel(`e, (size(e.?toEndpoints.orValue([])) + size(e.?toEntities.orValue([])) > 0) &&
    !has(e.toCIDR) && !has(e.toCIDRSet) && !has(e.toNodes) && !has(e.toGroups) &&
    !has(e.toRequires) && !has(e.toServices) && !has(e.toFQDNs) &&
    e.?toEntities.orValue([]).all(x, x in ${JSON.stringify(TENANT_ENTITIES).replace(/"/g, "'")}) &&
    e.?toEndpoints.orValue([]).all(s, ${localSelector("s")})`);
  const spec = {
    paramKind: { apiVersion: "v1", kind: "ConfigMap" },
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        {
          apiGroups: ["networking.k8s.io"],
          apiVersions: ["*"],
          resources: ["networkpolicies"],
          operations: ["CREATE", "UPDATE"],
        },
        {
          apiGroups: ["cilium.io"],
          apiVersions: ["*"],
          resources: ["ciliumnetworkpolicies"],
          operations: ["CREATE", "UPDATE"],
        },
      ],
    },
    matchConditions: [
      { name: "not-a-cluster-admin", expression: `!(${SYSTEM_MASTERS})` },
      { name: "not-operator-managed", expression: `!(${managedExpr("object")})` },
    ],
    variables: [
      {
        name: "own",
        expression: cel(`params.data[?'namespaces'].orValue('').split(',').filter(n, n != '')`),
      },
      {
        name: "ciliumRules",
        expression: cel(`${isNp} ? [] :
          (has(object.spec) ? [object.spec] : []) + object.?specs.orValue([])`),
      },
    ],
    validations: [
      {
        // A rule without peers allows every address (egress: [{}] is allow-all; ports alone, any host).
        expression: cel(`!(${isNp}) || (
          object.spec.?ingress.orValue([]).all(r, size(r.?from.orValue([])) > 0) &&
          object.spec.?egress.orValue([]).all(r, size(r.?to.orValue([])) > 0))`),
        message:
          "every rule of a tenant NetworkPolicy must name its peers (a rule without from/to allows every address)",
        reason: "Forbidden",
      },
      {
        expression: cel(`!(${isNp}) || (${npPeers("ingress", "from", (p) => `!has(${p}.ipBlock)`)} &&
          ${npPeers("egress", "to", (p) => `!has(${p}.ipBlock)`)})`),
        message:
          "ipBlock is not allowed in tenant NetworkPolicies: addresses outside the cluster are the PeerTenant's network.egress to grant",
        reason: "Forbidden",
      },
      {
        expression: cel(`!(${isNp}) || (${npPeers("ingress", "from", ownNamespacesPeer)} &&
          ${npPeers("egress", "to", ownNamespacesPeer)})`),
        message:
          "tenant NetworkPolicies may select only the tenant's own namespaces, by kubernetes.io/metadata.name In [...]",
        reason: "Forbidden",
      },
      {
        expression: cel(`variables.ciliumRules.all(r, r.?ingress.orValue([]).all(${ingressOk}) &&
          r.?egress.orValue([]).all(${egressOk}))`),
        message:
          "tenant CiliumNetworkPolicies must name their peers by endpoints or entities, and may not use CIDR, FQDN, node, service, group or requires rules, entities other than cluster, or endpoint selectors reaching other namespaces",
        reason: "Forbidden",
      },
    ],
  };
  return [
    policy(POLICY_NAMES.networkPolicies, spec),
    binding(POLICY_NAMES.networkPolicies, {
      paramRef: { name: OBJECT_NAMES.guardrailParams, parameterNotFoundAction: "Deny" },
    }),
  ];
}

/** Tenant pods may name only allow-listed PriorityClasses (no system-cluster-critical preempting others). */
function priorityClassPolicy(allowed: string[]): Record<string, unknown>[] {
  const list = allowed.map((n) => `'${n.replace(/['\\]/g, "")}'`).join(", ");
  const spec = {
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [{ apiGroups: [""], apiVersions: ["*"], resources: ["pods"], operations: ["CREATE"] }],
    },
    validations: [
      {
        expression: `object.spec.?priorityClassName.orValue('') == '' || object.spec.priorityClassName in [${list}]`,
        messageExpression: cel(`'PriorityClass ' + object.spec.priorityClassName +
          ' is not allowed for tenant pods${allowed.length ? ` (allowed: ${allowed.join(", ")})` : ""}'`),
        reason: "Forbidden",
      },
    ],
  };
  return [policy(POLICY_NAMES.priorityClasses, spec), binding(POLICY_NAMES.priorityClasses)];
}

/**
 * `homelab.shdr.ch/*` labels are the operator's on every object in a tenant namespace, pod templates
 * included (a ReplicaSet's pods would otherwise inherit a forged `homelab.shdr.ch/tenant: bob`).
 */
function reservedLabelsPolicy(operatorUsernames: string[]): Record<string, unknown>[] {
  const prefix = RESERVED_LABEL_PREFIX;
  const unchanged = (labels: string, old: string) =>
    cel(`${labels}.all(k, !k.startsWith('${prefix}') ||
      (request.operation == 'UPDATE' && k in ${old} && ${old}[k] == ${labels}[k]))`);
  const spec = {
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        { apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], operations: ["CREATE", "UPDATE"] },
      ],
    },
    matchConditions: [
      { name: "not-a-trusted-actor", expression: `!(${trustedActorCondition(operatorUsernames)})` },
    ],
    variables: [
      { name: "labels", expression: "object.metadata.?labels.orValue({})" },
      {
        name: "oldLabels",
        expression: "request.operation == 'UPDATE' ? oldObject.metadata.?labels.orValue({}) : {}",
      },
      {
        name: "templateLabels",
        expression: cel(`object.?spec.?template.?metadata.?labels.orValue(
          object.?spec.?jobTemplate.?spec.?template.?metadata.?labels.orValue({}))`),
      },
      {
        name: "oldTemplateLabels",
        expression: cel(`request.operation == 'UPDATE' ?
          oldObject.?spec.?template.?metadata.?labels.orValue(
            oldObject.?spec.?jobTemplate.?spec.?template.?metadata.?labels.orValue({})) : {}`),
      },
    ],
    validations: [
      {
        expression: cel(`${unchanged("variables.labels", "variables.oldLabels")} &&
          ${unchanged("variables.templateLabels", "variables.oldTemplateLabels")}`),
        message: `labels under ${prefix} are reserved for the operator in tenant namespaces`,
        reason: "Forbidden",
      },
    ],
  };
  return [policy(POLICY_NAMES.reservedLabels, spec), binding(POLICY_NAMES.reservedLabels)];
}

/**
 * Hostnames a tenant claims itself (HTTPRoute and GRPCRoute hostnames, Knative DomainMapping names) must
 * be its `hostnameDomain` or below it, so peers cannot squat each other's names. A route without
 * hostnames would take every hostname of its Gateway listener, so it is refused too. The domain comes
 * from the tenant's parameters ConfigMap; no domain means no hostname at all.
 *
 * The operator is exempt like in the other guardrails: it writes the DomainMappings of AppVendings, whose
 * names may also lie in the shared `vending.allowedDomains`, and only after its own checks (not inside
 * another tenant's `hostnameDomain`, claimed cluster-wide by one app), which a policy seeing a single
 * tenant's parameters could not make. An update that keeps the hostnames is not a new claim (Knative adds
 * finalizers to DomainMappings; a DomainMapping's name cannot change anyway).
 */
function hostnamesSpec(operatorUsernames: string[]): Record<string, unknown> {
  return {
    paramKind: { apiVersion: "v1", kind: "ConfigMap" },
    matchConstraints: {
      namespaceSelector: tenantNamespaces,
      resourceRules: [
        {
          apiGroups: ["gateway.networking.k8s.io"],
          apiVersions: ["*"],
          resources: ["httproutes", "grpcroutes"],
          operations: ["CREATE", "UPDATE"],
        },
        {
          apiGroups: ["serving.knative.dev"],
          apiVersions: ["*"],
          resources: ["domainmappings"],
          operations: ["CREATE", "UPDATE"],
        },
      ],
    },
    matchConditions: [
      { name: "not-a-trusted-actor", expression: `!(${trustedActorCondition(operatorUsernames)})` },
    ],
    variables: [
      { name: "domain", expression: "params.data[?'hostnameDomain'].orValue('')" },
      {
        name: "hosts",
        expression: cel(`request.resource.resource == 'domainmappings' ? [object.metadata.name] :
          object.spec.?hostnames.orValue([])`),
      },
      {
        name: "unchanged",
        expression: cel(`request.operation == 'UPDATE' &&
          (request.resource.resource == 'domainmappings' ||
            oldObject.spec.?hostnames.orValue([]) == variables.hosts)`),
      },
    ],
    validations: [
      {
        expression: cel(`variables.unchanged || request.resource.resource == 'domainmappings' ||
          size(variables.hosts) > 0`),
        message:
          "routes in tenant namespaces must list their hostnames (without them a route takes every hostname of its Gateway listener)",
        reason: "Forbidden",
      },
      {
        expression: cel(`variables.unchanged || (variables.domain != '' &&
          variables.hosts.all(h, h == variables.domain || h.endsWith('.' + variables.domain)))`),
        messageExpression: cel(`variables.domain == '' ?
          'this tenant has no hostnameDomain: it may not claim hostnames' :
          'hostnames in this tenant must be ' + variables.domain + ' or end in .' + variables.domain`),
        reason: "Forbidden",
      },
    ],
  };
}
