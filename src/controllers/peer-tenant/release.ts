// What a released namespace (deletionPolicy Retain) keeps and loses. Its data stays; the tenant's
// access goes, bindings its owners made themselves included; and it is left locked down rather than
// bare: no quota, no policies and NodePort allowed would be worse than the tenant it had.
import type { PeerTenant } from "../../crds/peer-tenant.ts";
import type { KubeObject } from "../../runtime/index.ts";
import { gitlabCiGroup, type OwnerNaming, ownerSubjects } from "./desired.ts";
import { MANAGED_BY, MANAGED_BY_LABEL, OBJECT_NAMES, RELEASED_LABEL } from "./labels.ts";

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: Record<string, unknown> };

export function releasedNamespaceLabels(tenant: string): Record<string, string> {
  return {
    [RELEASED_LABEL]: tenant,
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
  };
}

/** Safe defaults left in a released namespace: default-deny, and no NodePort or LoadBalancer Services. */
export function desiredReleasedObjects(ns: string, tenant: string): Obj[] {
  const metadata = (name: string) => ({
    name,
    namespace: ns,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [RELEASED_LABEL]: tenant },
  });
  return [
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: metadata(OBJECT_NAMES.releasedDefaultDeny),
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    },
    {
      apiVersion: "v1",
      kind: "ResourceQuota",
      metadata: metadata(OBJECT_NAMES.releasedQuota),
      spec: { hard: { "services.nodeports": "0", "services.loadbalancers": "0" } },
    },
  ];
}

interface Subject {
  kind?: string;
  name?: string;
  namespace?: string;
}

/**
 * RoleBindings in a released namespace that give the tenant access: any subject that is one of its
 * owners or groups (as the cluster names them, and bare), its GitLab CI group, a ServiceAccount of the
 * namespace (whose tokens the owners could have minted), or one of Kubernetes' own groups that contain
 * them (an owner could have bound `edit` to system:authenticated).
 */
export function tenantBindingsToRemove(
  bindings: KubeObject[],
  t: PeerTenant,
  naming: OwnerNaming,
  ns: string,
): string[] {
  const identities = new Set<string>();
  for (const s of [...ownerSubjects(t, naming), ...ownerSubjects(t)]) identities.add(`${s.kind}|${s.name}`);
  if (t.spec.gitlab?.groupID !== undefined) identities.add(`Group|${gitlabCiGroup(t.spec.gitlab.groupID)}`);
  return bindings
    .filter((rb) =>
      ((rb as { subjects?: Subject[] }).subjects ?? []).some(
        (s) =>
          identities.has(`${s.kind}|${s.name}`) ||
          (s.kind === "ServiceAccount" && (s.namespace ?? ns) === ns) ||
          // Kubernetes' own groups (system:authenticated, system:serviceaccounts[:<ns>], ...) include
          // the former owners and their service accounts too.
          (s.kind === "Group" && (s.name ?? "").startsWith("system:")) ||
          (s.kind === "User" && s.name === "system:anonymous"),
      ),
    )
    .map((rb) => rb.metadata?.name ?? "")
    .filter((n) => n !== "");
}
