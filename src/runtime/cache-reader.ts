import type { Informer } from "./informer.ts";
import { type GroupVersionKind, type KubeObject, keyOf, type ObjectKey, objectKeyOf } from "./object.ts";

export interface CacheReader {
  get<T extends KubeObject = KubeObject>(gvk: GroupVersionKind, key: ObjectKey): T | undefined;
  list<T extends KubeObject = KubeObject>(gvk: GroupVersionKind, namespace?: string): T[];
  byIndex<T extends KubeObject = KubeObject>(gvk: GroupVersionKind, index: string, value: string): T[];
}

/** A CacheReader over the informers `find` gives for a kind; shared with the ClusterCache's accessors. */
export function cacheReaderOver(owner: string, find: (gvk: GroupVersionKind) => Informer[]): CacheReader {
  const informers = (gvk: GroupVersionKind) => {
    const found = find(gvk);
    if (found.length === 0) throw new Error(`${owner} does not watch ${gvk.kind}; add it to owns or watches`);
    return found;
  };
  const unique = <T extends KubeObject>(objs: KubeObject[]): T[] => {
    const seen = new Map<string, KubeObject>();
    for (const o of objs) seen.set(keyOf(objectKeyOf(o)), o);
    return [...seen.values()] as T[];
  };
  return {
    get: <T extends KubeObject>(gvk: GroupVersionKind, key: ObjectKey) => {
      for (const i of informers(gvk)) {
        const found = i.get(keyOf(key));
        if (found) return found as T;
      }
      return undefined;
    },
    list: <T extends KubeObject>(gvk: GroupVersionKind, namespace?: string) => {
      const all = informers(gvk);
      return all.length === 1
        ? (all[0]!.list(namespace) as T[])
        : unique<T>(all.flatMap((i) => i.list(namespace)));
    },
    byIndex: <T extends KubeObject>(gvk: GroupVersionKind, index: string, value: string) => {
      const all = informers(gvk);
      const indexed = all.filter((i) => i.hasIndex(index));
      // None indexed: let the informer say which index is missing.
      if (indexed.length === 0) return all[0]!.byIndex(index, value) as T[];
      return indexed.length === 1
        ? (indexed[0]!.byIndex(index, value) as T[])
        : unique<T>(indexed.flatMap((i) => i.byIndex(index, value)));
    },
  };
}
