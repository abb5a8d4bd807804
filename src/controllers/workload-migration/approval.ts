// Who approved retirement: the annotation's value says yes, managedFields say which field manager set
// it. The API server records the manager the client named (kubectl annotate sends kubectl-annotate),
// not the authenticated user, so this is a record for people, not an authorization check.
import type { KubeObject } from "../../runtime/index.ts";
import { APPROVE_RETIREMENT } from "./names.ts";

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  time?: string;
  fieldsV1?: { "f:metadata"?: { "f:annotations"?: Record<string, unknown> } };
}

export function retirementApproval(obj: KubeObject): { approved: boolean; by?: string } {
  if (obj.metadata?.annotations?.[APPROVE_RETIREMENT] !== "true") return { approved: false };
  const entries = (obj.metadata as { managedFields?: ManagedFieldsEntry[] }).managedFields ?? [];
  const setters = entries.filter(
    (e) => e.fieldsV1?.["f:metadata"]?.["f:annotations"]?.[`f:${APPROVE_RETIREMENT}`] !== undefined,
  );
  const by = setters.map((e) => `${e.manager ?? "unknown"} (${e.operation ?? "?"} ${e.time ?? ""})`.trim());
  return { approved: true, by: by.length ? by.join(", ") : "unknown field manager" };
}
