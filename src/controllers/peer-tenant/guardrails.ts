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
}

const VAP_API = "admissionregistration.k8s.io/v1";
export const POLICY_NAMES = {
  managedObjects: "homelab-tenant-managed-objects",
  services: "homelab-tenant-services",
  requiredLabels: "homelab-tenant-required-labels",
  imagePull: "homelab-tenant-image-pull",
} as const;

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

  return [
    managedObjects,
    binding(POLICY_NAMES.managedObjects),
    services,
    binding(POLICY_NAMES.services),
    requiredLabels,
    binding(POLICY_NAMES.requiredLabels, {
      paramRef: { name: OBJECT_NAMES.guardrailParams, parameterNotFoundAction: "Deny" },
    }),
    imagePull,
    binding(POLICY_NAMES.imagePull, {}, ["Warn", "Audit"]),
  ];
}
