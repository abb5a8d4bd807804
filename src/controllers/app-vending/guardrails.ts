// Admission guardrails of vending, as ValidatingAdmissionPolicies (the API server enforces them itself;
// nothing fails open when the operator is down):
// - an AppVending is only admitted in a tenant namespace or one of the operator's admin namespaces;
// - in tenant namespaces nobody but the operator, cluster admins and the platform's controllers may
//   create, change or delete Crossplane managed resources, namespaced ProviderConfigs or Knative
//   DomainMappings. Tenants are bound to `admin`, and Crossplane's and Knative's charts aggregate rights on
//   these kinds into admin/edit, so RBAC alone would let them around their limits, the platform's
//   ProviderConfigs and the hostname claims.
import { MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL } from "../peer-tenant/labels.ts";

const VAP_API = "admissionregistration.k8s.io/v1";

export const VENDING_POLICY_NAMES = {
  namespaces: "homelab-appvending-namespaces",
  managedKinds: "homelab-vending-managed-kinds",
} as const;

/** API groups of the managed resources and ProviderConfigs vending uses (namespaced `.m.` groups). */
export const GUARDED_GROUPS = [
  "s3.aws.m.upbound.io",
  "aws.m.upbound.io",
  "postgresql.sql.m.crossplane.io",
  "openidclient.keycloak.m.crossplane.io",
  "keycloak.m.crossplane.io",
];

export interface VendingGuardrailOptions {
  /** Namespaces outside any tenant where admins may still create AppVendings (e.g. the operator's). */
  adminNamespaces: string[];
  /** The operator's own usernames. */
  operatorUsernames: string[];
  /**
   * Namespaces whose service accounts are the platform's controllers: Crossplane's providers (they add
   * and remove finalizers on managed resources) and Knative Serving (it does the same on DomainMappings).
   */
  controllerNamespaces: string[];
}

function cel(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function quoted(list: string[]): string {
  return list.map((s) => `'${s.replace(/['\\]/g, "")}'`).join(", ");
}

function labelled(name: string) {
  return { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } };
}

export function desiredVendingGuardrails(opts: VendingGuardrailOptions): Record<string, unknown>[] {
  const trusted = cel(`
    request.userInfo.username in [${quoted([...opts.operatorUsernames, "system:kube-controller-manager"])}] ||
    request.userInfo.username.startsWith('system:serviceaccount:kube-system:') ||
    [${quoted(opts.controllerNamespaces)}].exists(ns,
      request.userInfo.username.startsWith('system:serviceaccount:' + ns + ':')) ||
    (has(request.userInfo.groups) && 'system:masters' in request.userInfo.groups)
  `);
  const namespaces = {
    apiVersion: VAP_API,
    kind: "ValidatingAdmissionPolicy",
    metadata: labelled(VENDING_POLICY_NAMES.namespaces),
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: ["homelab.shdr.ch"],
            apiVersions: ["*"],
            resources: ["appvendings"],
            operations: ["CREATE", "UPDATE"],
          },
        ],
      },
      validations: [
        {
          expression: cel(`
            (has(namespaceObject.metadata.labels) &&
              '${TENANT_LABEL}' in namespaceObject.metadata.labels) ||
            namespaceObject.metadata.name in [${quoted(opts.adminNamespaces)}]
          `),
          message: "an AppVending is only accepted in a tenant's namespace (or an admin namespace)",
          reason: "Forbidden",
        },
      ],
    },
  };
  const managedKinds = {
    apiVersion: VAP_API,
    kind: "ValidatingAdmissionPolicy",
    metadata: labelled(VENDING_POLICY_NAMES.managedKinds),
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        namespaceSelector: { matchExpressions: [{ key: TENANT_LABEL, operator: "Exists" }] },
        resourceRules: [
          // "*" matches the kinds, not their subresources: the providers' status writes pass untouched.
          {
            apiGroups: GUARDED_GROUPS,
            apiVersions: ["*"],
            resources: ["*"],
            operations: ["CREATE", "UPDATE", "DELETE"],
          },
          {
            apiGroups: ["serving.knative.dev"],
            apiVersions: ["*"],
            resources: ["domainmappings"],
            operations: ["CREATE", "UPDATE", "DELETE"],
          },
        ],
      },
      validations: [
        {
          expression: trusted,
          messageExpression: cel(`'in tenant namespaces ' + request.resource.resource +
            ' are vended through an AppVending, not created directly'`),
          reason: "Forbidden",
        },
      ],
    },
  };
  const bindings = [VENDING_POLICY_NAMES.namespaces, VENDING_POLICY_NAMES.managedKinds].map((name) => ({
    apiVersion: VAP_API,
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: labelled(name),
    spec: { policyName: name, validationActions: ["Deny"] },
  }));
  return [namespaces, managedKinds, ...bindings];
}
