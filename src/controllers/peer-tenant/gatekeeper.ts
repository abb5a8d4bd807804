// Gatekeeper equivalents of the tenant guardrails, for clusters that run Gatekeeper (the seed installs
// it and uses its required-labels constraint). The ValidatingAdmissionPolicies stay the primary
// enforcement; these make the same rules visible in Gatekeeper's audit and violation reports.

import type { PeerTenant } from "../../crds/peer-tenant.ts";
import { MANAGED_BY, MANAGED_BY_LABEL, managedLabels, TENANT_LABEL } from "./labels.ts";

export const TEMPLATE_GVK = { apiVersion: "templates.gatekeeper.sh/v1", kind: "ConstraintTemplate" };
export const SERVICE_TYPES_KIND = "HomelabTenantServiceTypes";
export const REQUIRED_LABELS_KIND = "HomelabTenantRequiredLabels";
export const CONSTRAINT_API_VERSION = "constraints.gatekeeper.sh/v1beta1";

const labels = { [MANAGED_BY_LABEL]: MANAGED_BY };

function template(kind: string, rego: string, parameters?: Record<string, unknown>) {
  return {
    apiVersion: TEMPLATE_GVK.apiVersion,
    kind: TEMPLATE_GVK.kind,
    metadata: { name: kind.toLowerCase(), labels },
    spec: {
      crd: {
        spec: {
          names: { kind },
          ...(parameters
            ? { validation: { openAPIV3Schema: { type: "object", properties: parameters } } }
            : {}),
        },
      },
      targets: [{ target: "admission.k8s.gatekeeper.sh", rego }],
    },
  };
}

const SERVICE_TYPES_REGO = `package homelabtenantservicetypes

violation[{"msg": msg}] {
  input.review.object.kind == "Service"
  type := input.review.object.spec.type
  type == {"NodePort", "LoadBalancer"}[_]
  msg := sprintf("Services of type %v are not allowed in tenant namespaces", [type])
}
`;

const REQUIRED_LABELS_REGO = `package homelabtenantrequiredlabels

violation[{"msg": msg}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("missing required pod label(s): %v", [concat(", ", missing)])
}
`;

export function desiredConstraintTemplates() {
  return [
    template(SERVICE_TYPES_KIND, SERVICE_TYPES_REGO),
    template(REQUIRED_LABELS_KIND, REQUIRED_LABELS_REGO, {
      labels: { type: "array", items: { type: "string" } },
    }),
  ];
}

/** One constraint for all tenant namespaces, selected by the tenant label tenants cannot set. */
export function desiredServiceTypesConstraint() {
  return {
    apiVersion: CONSTRAINT_API_VERSION,
    kind: SERVICE_TYPES_KIND,
    metadata: { name: "homelab-tenants", labels },
    spec: {
      match: {
        kinds: [{ apiGroups: [""], kinds: ["Service"] }],
        namespaceSelector: { matchExpressions: [{ key: TENANT_LABEL, operator: "Exists" }] },
      },
    },
  };
}

/** The seed's require-owner-label constraint, per tenant, over the tenant's namespaces. */
export function desiredRequiredLabelsConstraint(t: PeerTenant, namespaces: string[]) {
  if (t.spec.requiredLabels.length === 0) return undefined;
  return {
    apiVersion: CONSTRAINT_API_VERSION,
    kind: REQUIRED_LABELS_KIND,
    metadata: { name: `peers-${t.metadata.name}`, labels: managedLabels(t.metadata.name) },
    spec: {
      match: { kinds: [{ apiGroups: [""], kinds: ["Pod"] }], namespaces: [...namespaces].sort() },
      parameters: { labels: [...t.spec.requiredLabels].sort() },
    },
  };
}
