// Local mode installs no chart (the operator runs with the local admin's credentials), yet who may
// approve a migration's cutover or retirement must hold there as in a cluster: the chart's
// ValidatingAdmissionPolicy and its binding are rendered by the pinned Helm from the chart in this
// checkout (its default values, so the same approver groups) and applied to the management cluster.
// Rendering rather than a copy in code keeps one source of the policy.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import type { KubeClient, KubeObject } from "../runtime/index.ts";

const CHART_DIR = fileURLToPath(new URL("../../deploy/helm/homelab-operator", import.meta.url));
const TEMPLATE = "templates/migration-approval-policy.yaml";

/** The policy and binding as the chart renders them. */
export async function renderApprovalPolicy(helmPath: string): Promise<KubeObject[]> {
  const { stdout } = await promisify(execFile)(
    helmPath,
    ["template", "homelab-operator", CHART_DIR, "--show-only", TEMPLATE],
    { maxBuffer: 4 * 1024 * 1024 },
  );
  const objects = parseAllDocuments(stdout)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => Boolean(o?.kind));
  const kinds = objects.map((o) => o.kind).sort();
  if (kinds.join() !== "ValidatingAdmissionPolicy,ValidatingAdmissionPolicyBinding")
    throw new Error(`${TEMPLATE} rendered ${kinds.join(", ") || "nothing"}, not a policy and its binding`);
  return objects;
}

/** Applies the policy before its binding (a binding to a missing policy admits everything). */
export async function applyApprovalPolicy(client: KubeClient, helmPath: string): Promise<string[]> {
  const objects = await renderApprovalPolicy(helmPath);
  const isPolicy = (o: KubeObject) => o.kind === "ValidatingAdmissionPolicy";
  const ordered = [...objects.filter(isPolicy), ...objects.filter((o) => !isPolicy(o))];
  for (const o of ordered) await client.apply(o);
  return ordered.map((o) => `${o.kind}/${o.metadata?.name}`);
}
