// A control plane of its own whose API server writes an audit log (level Metadata, every request), so a
// test can count what a given identity actually did: which verbs on which resources, how many writes,
// which answers were 403. The shared e2e control plane has no audit log, and an existing cluster
// (HOMELAB_E2E_KUBECONFIG) would not give us its log; these suites always start their own.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";

export interface AuditEvent {
  auditID: string;
  stage: "RequestReceived" | "ResponseStarted" | "ResponseComplete" | "Panic";
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
  /** e.g. `authorization.k8s.io/decision`: "allow" or "forbid" (RBAC's answer, whatever admission said after). */
  annotations?: Record<string, string>;
  requestReceivedTimestamp: string;
}

export interface AuditedCluster {
  cp: ControlPlane;
  /** Every request, once (ResponseComplete, or ResponseStarted for a watch still open), in log order. */
  events(): Promise<AuditEvent[]>;
  stop(): Promise<void>;
}

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;

export const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

export async function startAuditedCluster(
  name: string,
  opts: { extraApiServerArgs?: string[]; controllers?: string[] } = {},
): Promise<AuditedCluster> {
  // The policy file must exist before the API server starts; the temp folder of the control plane does
  // not exist yet, so both files live in a folder of their own.
  const dir = await mkdtemp(join(tmpdir(), `homelab-audit-${name}-`));
  const policy = join(dir, "policy.yaml");
  const log = join(dir, "audit.log");
  await writeFile(policy, POLICY);
  const cp = await startControlPlane({
    name,
    ...(opts.controllers ? { controllers: opts.controllers } : {}),
    extraApiServerArgs: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${log}`,
      "--audit-log-format=json",
      // Each event is written before the API server goes on: a test reading the log right after a
      // request sees it.
      "--audit-log-mode=blocking",
      "--audit-log-maxsize=0",
      ...(opts.extraApiServerArgs ?? []),
    ],
  });
  return {
    cp,
    async events() {
      const text = await readFile(log, "utf8").catch(() => "");
      const byId = new Map<string, AuditEvent>();
      for (const line of text.split("\n")) {
        if (!line) continue;
        const e = JSON.parse(line) as AuditEvent;
        // A watch has a ResponseStarted and, once it ends, a ResponseComplete: keep one of them.
        if (e.stage === "ResponseComplete" || !byId.has(e.auditID)) byId.set(e.auditID, e);
      }
      return [...byId.values()];
    },
    async stop() {
      await cp.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Refused by authorization (RBAC), as opposed to a 403 from admission (e.g. a ValidatingAdmissionPolicy). */
export function forbiddenByRBAC(e: AuditEvent): boolean {
  return e.annotations?.["authorization.k8s.io/decision"] === "forbid";
}

/** `resource` or `resource/subresource`, with the API group: how RBAC names what a request touched. */
export function resourceOf(e: AuditEvent): { apiGroup: string; resource: string } | undefined {
  const ref = e.objectRef;
  if (!ref?.resource) return undefined;
  return {
    apiGroup: ref.apiGroup ?? "",
    resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource,
  };
}
