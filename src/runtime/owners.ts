import type { GroupVersionKind, KubeObject, ObjectKey, OwnerReference } from "./object.ts";
import { splitApiVersion } from "./object.ts";

/** How an owned kind's objects point at their owner. */
export interface OwnerMapping {
  owner: GroupVersionKind;
  /** Whether the owner kind is namespaced (a namespaced owner is always in its dependent's namespace). */
  ownerNamespaced: boolean;
  /**
   * For cross-scope ownership, where ownerReferences are not allowed (a namespaced owner of a
   * cluster-scoped object, or across namespaces): the label carrying the owner's name,
   * e.g. `homelab.shdr.ch/tenant`, and, for a namespaced owner, the label carrying its namespace.
   */
  ownerLabel?: string;
  ownerNamespaceLabel?: string;
}

/** Same group and kind; the version may differ (controller-runtime's EnqueueRequestForOwner compares group/kind). */
function refersTo(ref: OwnerReference, owner: GroupVersionKind): boolean {
  return (
    ref.kind === owner.kind &&
    splitApiVersion(ref.apiVersion).group === splitApiVersion(owner.apiVersion).group
  );
}

/**
 * The owner(s) an owned object maps back to: its controller ownerReference (controller=true) of the owner
 * kind and, if configured, its owner labels. Duplicates are removed.
 */
export function ownerKeys(obj: KubeObject, mapping: OwnerMapping): ObjectKey[] {
  const out = new Map<string, ObjectKey>();
  const add = (k: ObjectKey) => out.set(`${k.namespace ?? ""}/${k.name}`, k);
  const namespace = obj.metadata?.namespace;
  for (const ref of obj.metadata?.ownerReferences ?? []) {
    if (ref.controller !== true || !refersTo(ref, mapping.owner)) continue;
    if (mapping.ownerNamespaced) {
      // A namespaced owner in another namespace is treated as absent by the API (GC docs): skip it.
      if (namespace) add({ namespace, name: ref.name });
    } else add({ name: ref.name });
  }
  const labels = obj.metadata?.labels ?? {};
  const labelled = mapping.ownerLabel ? labels[mapping.ownerLabel] : undefined;
  if (labelled) {
    if (!mapping.ownerNamespaced) add({ name: labelled });
    else {
      const ns = (mapping.ownerNamespaceLabel && labels[mapping.ownerNamespaceLabel]) || namespace;
      if (ns) add({ namespace: ns, name: labelled });
    }
  }
  return [...out.values()];
}

/** The ownerReference to put on an object owned and managed by `owner` (needs owner's uid). */
export function controllerReference(
  owner: KubeObject,
  opts: { blockOwnerDeletion?: boolean } = {},
): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new Error(
      "an owner needs apiVersion, kind, metadata.name and metadata.uid (read it from the API first)",
    );
  }
  return {
    apiVersion,
    kind,
    name,
    uid,
    controller: true,
    blockOwnerDeletion: opts.blockOwnerDeletion ?? true,
  };
}
