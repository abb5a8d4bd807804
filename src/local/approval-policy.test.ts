// The policy local mode applies is the chart's own, rendered by the pinned Helm with default values.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { findHelm } from "../components/helm-binary.ts";
import { renderApprovalPolicy } from "./approval-policy.ts";

const helm = findHelm();
const values = parse(
  readFileSync(new URL("../../deploy/helm/homelab-operator/values.yaml", import.meta.url), "utf8"),
);

describe.skipIf(!helm.path)("the migration-approval policy local mode applies", () => {
  it("is the chart's policy and binding, with the chart's default approver groups", async () => {
    const objects = await renderApprovalPolicy(helm.path!);
    const policy = objects.find((o) => o.kind === "ValidatingAdmissionPolicy")!;
    const binding = objects.find((o) => o.kind === "ValidatingAdmissionPolicyBinding")!;
    expect(policy.metadata?.name).toBe("homelab-operator-migration-approvals");
    expect(binding.spec).toMatchObject({ policyName: policy.metadata?.name, validationActions: ["Deny"] });
    const approvers = (policy.spec as { variables: { name: string; expression: string }[] }).variables.find(
      (v) => v.name === "approvers",
    );
    expect(JSON.parse(approvers!.expression)).toEqual(values.migrationApprovers.groups);
  });
});
