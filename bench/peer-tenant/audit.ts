// Counts API writes from the API server's own audit log, so the figure does not depend on the
// operator's code reporting itself honestly.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"];

export async function writeAuditPolicy(dir: string): Promise<{ args: string[]; logPath: string }> {
  const policy = join(dir, "audit-policy.yaml");
  const logPath = join(dir, "audit.log");
  await writeFile(
    policy,
    [
      "apiVersion: audit.k8s.io/v1",
      "kind: Policy",
      "omitStages: [RequestReceived]",
      "rules:",
      `- level: Metadata`,
      `  verbs: [${WRITE_VERBS.join(", ")}]`,
      "- level: None",
      "",
    ].join("\n"),
  );
  return {
    args: [`--audit-policy-file=${policy}`, `--audit-log-path=${logPath}`, "--audit-log-maxsize=0"],
    logPath,
  };
}

export interface WriteCount {
  total: number;
  byResource: Record<string, number>;
  /** `verb resource namespace/name` of each write, counted: what an idle write touched. */
  byObject: Record<string, number>;
}

interface AuditEvent {
  stage?: string;
  verb?: string;
  user?: { username?: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    apiGroup?: string;
    namespace?: string;
    name?: string;
  };
  stageTimestamp?: string;
}

/** Writes made by `username`, optionally only those completed at or after `since`. */
export async function countWrites(logPath: string, username: string, since?: Date): Promise<WriteCount> {
  const text = await readFile(logPath, "utf8").catch(() => "");
  const byResource: Record<string, number> = {};
  const byObject: Record<string, number> = {};
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (e.stage !== "ResponseComplete" || e.user?.username !== username) continue;
    if (!e.verb || !WRITE_VERBS.includes(e.verb)) continue;
    if (since && e.stageTimestamp && new Date(e.stageTimestamp) < since) continue;
    const ref = e.objectRef ?? {};
    const resource = `${ref.resource ?? "?"}${ref.subresource ? `/${ref.subresource}` : ""}`;
    byResource[resource] = (byResource[resource] ?? 0) + 1;
    const object = `${e.verb} ${resource} ${ref.namespace ?? ""}/${ref.name ?? ""}`;
    byObject[object] = (byObject[object] ?? 0) + 1;
    total++;
  }
  return { total, byResource, byObject };
}
