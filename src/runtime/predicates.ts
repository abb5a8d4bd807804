import type { KubeObject } from "./object.ts";

/**
 * For a controller's `predicate`: enqueue adds, and updates that change what a reconcile acts on (spec →
 * metadata.generation, deletion, finalizers, labels, annotations), but not status-only updates — such as
 * the status this controller itself just wrote. Like controller-runtime's GenerationChangedPredicate, plus
 * the metadata changes a reconcile of ours reads. Resyncs (old === new) pass, so periodic re-checks still run.
 */
export function specOrMetadataChanged(oldObj: KubeObject | undefined, newObj: KubeObject): boolean {
  if (!oldObj || oldObj === newObj) return true;
  const a = oldObj.metadata ?? {};
  const b = newObj.metadata ?? {};
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    !sameRecord(a.labels, b.labels) ||
    !sameRecord(a.annotations, b.annotations)
  );
}

function sameRecord(x: Record<string, string> | undefined, y: Record<string, string> | undefined): boolean {
  const a = x ?? {};
  const b = y ?? {};
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
