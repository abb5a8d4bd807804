/** The parts of a Kubernetes object the runtime reads; everything else passes through untouched. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

export interface GroupVersionKind {
  apiVersion: string;
  kind: string;
}

export interface ObjectKey {
  namespace?: string;
  name: string;
}

/** `namespace/name`, or `name` for cluster-scoped objects: the cache key, as client-go's MetaNamespaceKeyFunc. */
export function keyOf(ref: ObjectKey): string {
  return ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
}

export function objectKeyOf(obj: KubeObject): ObjectKey {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`object of kind ${obj.kind ?? "?"} has no metadata.name`);
  const namespace = obj.metadata?.namespace;
  return namespace ? { namespace, name } : { name };
}

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf("/");
  if (slash < 0) return { name: key };
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function gvkString(gvk: GroupVersionKind): string {
  return `${gvk.apiVersion}, Kind=${gvk.kind}`;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
