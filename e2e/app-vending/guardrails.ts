// The AppVending controller installs cluster-wide ValidatingAdmissionPolicies when it starts (by design:
// they stay when the operator stops, so nothing fails open). On the shared e2e control plane they would
// outlive the suite that started the controller and refuse the next suite's AppVendings outside tenant
// namespaces (e2e/crds applies examples/app-vending-portfolio.yaml to a plain namespace). A suite that
// starts the controller takes away, when it ends, the ones that were not there before it.
import { VENDING_POLICY_NAMES } from "../../src/controllers/app-vending/guardrails.ts";
import type { KubeClient } from "../../src/runtime/index.ts";

const KINDS = [
  // Bindings first: a binding without its policy is an error the API server reports on the binding.
  { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding" },
  { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy" },
];

/** Call before the controller starts; the returned function deletes what appeared since. */
export async function vendingGuardrailsCleanup(client: KubeClient): Promise<() => Promise<void>> {
  const names = Object.values(VENDING_POLICY_NAMES);
  const before = new Set<string>();
  for (const gvk of KINDS)
    for (const name of names)
      if (await client.getOrUndefined(gvk, { name })) before.add(`${gvk.kind}/${name}`);
  return async () => {
    for (const gvk of KINDS)
      for (const name of names)
        if (!before.has(`${gvk.kind}/${name}`)) await client.delete(gvk, { name }, { ignoreNotFound: true });
  };
}
