// Who approved retirement: the annotation's value says yes, managedFields say which field manager set
// it. The API server records the manager the client named (kubectl annotate sends kubectl-annotate),
// not the authenticated user, so this is a record for people, not an authorization check.
//
// An approval does not outlive a rollback: annotations set when the rollback completed are listed in
// status.staleApprovals and count again only once this controller has seen them removed. Removal is
// observed rather than timed because a managedFields time moves whenever the same field manager
// changes any field it owns (a kubectl apply that only unsets spec.rollback would look like a fresh
// approval). The cost: removing and setting the annotation again faster than a reconcile sees it
// leaves it stale, and the waiting message says to remove it again.
import type { KubeObject } from "../../runtime/index.ts";
import { APPROVE_RETIREMENT } from "./names.ts";
import type { MigrationFields } from "./step.ts";

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  time?: string;
  fieldsV1?: { "f:metadata"?: { "f:annotations"?: Record<string, unknown> } };
}

const isSet = (obj: KubeObject, annotation: string) => obj.metadata?.annotations?.[annotation] === "true";

/** Set and not left over from before the last rollback. */
export function approvalGiven(obj: KubeObject, fields: MigrationFields, annotation: string): boolean {
  return isSet(obj, annotation) && !fields.staleApprovals?.includes(annotation);
}

/** What the waiting condition says: how to approve, and why a set annotation does not count. */
export function approvalWanted(fields: MigrationFields, annotation: string): string {
  return fields.staleApprovals?.includes(annotation)
    ? `annotation ${annotation}=true was set before the rollback at ${fields.rolledBackTime} and no longer counts: remove it, then set it again`
    : `waiting for annotation ${annotation}=true`;
}

/** Called when a rollback completes: every approval set now is void until removed. */
export function voidApprovals(
  obj: KubeObject,
  fields: MigrationFields,
  annotations: readonly string[],
): void {
  const set = annotations.filter((a) => isSet(obj, a));
  fields.staleApprovals = set.length ? set : undefined;
}

/** Every reconcile: a stale approval seen removed is forgotten, so setting it again counts. */
export function forgetRemovedApprovals(obj: KubeObject, fields: MigrationFields): void {
  const left = fields.staleApprovals?.filter((a) => isSet(obj, a));
  fields.staleApprovals = left?.length ? left : undefined;
}

export function retirementApproval(
  obj: KubeObject,
  fields: MigrationFields,
): { approved: boolean; by?: string } {
  if (!approvalGiven(obj, fields, APPROVE_RETIREMENT)) return { approved: false };
  const entries = (obj.metadata as { managedFields?: ManagedFieldsEntry[] }).managedFields ?? [];
  const setters = entries.filter(
    (e) => e.fieldsV1?.["f:metadata"]?.["f:annotations"]?.[`f:${APPROVE_RETIREMENT}`] !== undefined,
  );
  const by = setters.map((e) => `${e.manager ?? "unknown"} (${e.operation ?? "?"} ${e.time ?? ""})`.trim());
  return { approved: true, by: by.length ? by.join(", ") : "unknown field manager" };
}
