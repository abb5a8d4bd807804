// The chart's approval policy on a real API server, with client-certificate identities: a user RBAC lets
// patch WorkloadMigrations (a peer, a tenant's admin) still cannot set, change or remove the approval
// annotations; a member of the approvers group can. The policy and binding are exactly what the chart
// renders (deploy/manifests), applied as-is and deleted afterwards.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { renderManifests } from "../../scripts/generate-manifests.ts";
import { installCRDs } from "../../src/crds/install.ts";
import { ensureControlPlaneBinaries } from "../../src/local/control-plane/binaries.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { adminKubeConfig, kubeconfigPath, userKubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";

const NS = "wm-approval-policy";
const WM = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "WorkloadMigration" };
const CUTOVER = "homelab.shdr.ch/approve-cutover";
const RETIRE = "homelab.shdr.ch/approve-retirement";
const ROLE = "wm-approval-policy-editor";

const policyDocs = parseAllDocuments(renderManifests())
  .map((d) => d.toJSON() as KubeObject)
  .filter((o) => o?.kind?.startsWith("ValidatingAdmissionPolicy") && o.metadata?.name?.includes("migration"));
const ups = parseAllDocuments(readFileSync("examples/workload-migration-ups-stack.yaml", "utf8"))
  .map((d) => d.toJSON() as KubeObject & { spec?: unknown })
  .find((o) => o.kind === "WorkloadMigration");

let kubectl: string;
let admin: KubeClient;
let tenant: string;
let approver: string;

/** kubectl as the identity of `kubeconfig`: stdout, or the refusal's stderr. */
async function as(kubeconfig: string, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  return promisify(execFile)(kubectl, ["--kubeconfig", kubeconfig, ...args]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (err: { stderr?: string }) => ({ ok: false, out: err.stderr ?? String(err) }),
  );
}
const annotations = async (name: string) =>
  (await admin.get(WM, { namespace: NS, name })).metadata?.annotations ?? {};
const createWm = (name: string, extra: Record<string, string> = {}) =>
  admin.create({
    ...WM,
    metadata: { name, namespace: NS, annotations: extra },
    spec: ups?.spec,
  } as KubeObject);

beforeAll(async () => {
  ({ kubectl } = await ensureControlPlaneBinaries());
  await installCRDs(adminKubeConfig());
  admin = new KubeClient(adminKubeConfig());
  await admin.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  // RBAC lets both users edit migrations in the namespace, so only the policy can refuse them.
  await admin.apply({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: ROLE },
    rules: [
      {
        apiGroups: ["homelab.shdr.ch"],
        resources: ["workloadmigrations"],
        verbs: ["get", "list", "create", "update", "patch"],
      },
    ],
  } as KubeObject);
  await admin.apply({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: ROLE, namespace: NS },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: ROLE },
    subjects: [
      { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "mallory" },
      { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "olivia" },
    ],
  } as KubeObject);
  tenant = await userKubeconfigPath("mallory", ["peers-alice", "homelab:peers"]);
  approver = await userKubeconfigPath("olivia", ["homelab:migration-approvers"]);
  expect(policyDocs.map((o) => o.kind).sort()).toEqual([
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
  ]);
  for (const doc of policyDocs) await admin.apply(doc);
  // The policy is in force once the API server refuses the tenant a fresh approval on a probe.
  await createWm("probe");
  await waitFor(
    "the approval policy in force",
    async () => {
      const r = await as(tenant, "annotate", "wm", "probe", "-n", NS, `${CUTOVER}=true`, "--overwrite");
      // Not yet in force: the cluster admin takes the approval away again before the next try.
      if (r.ok) await as(kubeconfigPath(), "annotate", "wm", "probe", "-n", NS, `${CUTOVER}-`);
      return r.ok ? undefined : r;
    },
    60_000,
    500,
  );
}, 300_000);

afterAll(async () => {
  const gvk = (o: KubeObject) => ({ apiVersion: o.apiVersion ?? "", kind: o.kind ?? "" });
  for (const doc of [...policyDocs].reverse())
    await admin?.delete(gvk(doc), { name: doc.metadata?.name ?? "" }).catch(() => {});
  await admin?.delete({ apiVersion: "v1", kind: "Namespace" }, { name: NS }).catch(() => {});
  await admin
    ?.delete({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole" }, { name: ROLE })
    .catch(() => {});
});

describe("the chart's migration approval policy", () => {
  it("refuses a tenant user setting either approval, with who may; the approvers group may", async () => {
    await createWm("ups-a");
    for (const key of [CUTOVER, RETIRE]) {
      const refused = await as(tenant, "annotate", "wm", "ups-a", "-n", NS, `${key}=true`);
      expect(refused.ok, refused.out).toBe(false);
      expect(refused.out).toContain("homelab:migration-approvers");
      expect(refused.out).toContain("mallory");
    }
    expect(await annotations("ups-a")).toEqual({});
    // The policy is about the approvals only: the same user may annotate anything else.
    const other = await as(tenant, "annotate", "wm", "ups-a", "-n", NS, "example.org/note=hello");
    expect(other.ok, other.out).toBe(true);
    for (const key of [CUTOVER, RETIRE]) {
      const allowed = await as(approver, "annotate", "wm", "ups-a", "-n", NS, `${key}=true`);
      expect(allowed.ok, allowed.out).toBe(true);
    }
    expect(await annotations("ups-a")).toEqual({
      "example.org/note": "hello",
      [CUTOVER]: "true",
      [RETIRE]: "true",
    });
  });

  it("refuses the tenant removing or changing an approval, by annotate or patch, and creating one preset", async () => {
    await createWm("ups-b", { [RETIRE]: "true" });
    const attempts = [
      ["annotate", "wm", "ups-b", "-n", NS, `${RETIRE}-`],
      ["annotate", "wm", "ups-b", "-n", NS, `${RETIRE}=false`, "--overwrite"],
      [
        "patch",
        "wm",
        "ups-b",
        "-n",
        NS,
        "--type=merge",
        "-p",
        `{"metadata":{"annotations":{"${CUTOVER}":"true"}}}`,
      ],
      [
        "patch",
        "wm",
        "ups-b",
        "-n",
        NS,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/annotations"}]',
      ],
    ];
    for (const args of attempts) {
      const r = await as(tenant, ...args);
      expect(r.ok, `${args.join(" ")}: ${r.out}`).toBe(false);
    }
    expect(await annotations("ups-b")).toEqual({ [RETIRE]: "true" });
    const manifest = JSON.stringify({
      ...WM,
      metadata: { name: "ups-c", namespace: NS, annotations: { [RETIRE]: "true" } },
      spec: ups?.spec,
    });
    const preset = await new Promise<{ ok: boolean; out: string }>((resolve) => {
      const child = execFile(kubectl, ["--kubeconfig", tenant, "create", "-f", "-"], (err, _o, stderr) =>
        resolve({ ok: !err, out: stderr }),
      );
      child.stdin?.end(manifest);
    });
    expect(preset.ok, preset.out).toBe(false);
    expect(await admin.getOrUndefined(WM, { namespace: NS, name: "ups-c" })).toBeUndefined();
    // The approver may remove it.
    const removed = await as(approver, "annotate", "wm", "ups-b", "-n", NS, `${RETIRE}-`);
    expect(removed.ok, removed.out).toBe(true);
    expect(await annotations("ups-b")).toEqual({});
  });
});
