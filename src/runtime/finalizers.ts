import type { KubeClient } from "./client.ts";
import { gvkOf } from "./client.ts";
import { ApiError } from "./errors.ts";
import { type KubeObject, objectKeyOf } from "./object.ts";

/**
 * metadata.finalizers is shared by every controller that guards the object (api-concepts, "Resource
 * deletion"): a merge patch or PUT of the whole array can drop a finalizer another controller added
 * meanwhile. These helpers edit one entry with JSON patch guarded by `test`, and on a failed guard
 * (the array changed under us) re-read the object and try again.
 */
const MAX_ATTEMPTS = 5;

function isGuardFailure(err: unknown): boolean {
  // A failed JSON-patch `test` is answered 422 (Invalid) by the API server; a stale object 409.
  return err instanceof ApiError && (err.code === 409 || err.code === 422);
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** Adds the finalizer if missing; returns the object as stored afterwards. */
export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  obj: T,
  finalizer: string,
): Promise<T> {
  const gvk = gvkOf(obj);
  const key = objectKeyOf(obj);
  let current: T = obj;
  for (let attempt = 1; ; attempt++) {
    if (current.metadata?.deletionTimestamp || hasFinalizer(current, finalizer)) return current;
    const list = current.metadata?.finalizers;
    const patch =
      list === undefined
        ? // No array yet: the resourceVersion guard makes sure nobody created one meanwhile.
          [
            { op: "test", path: "/metadata/resourceVersion", value: current.metadata?.resourceVersion },
            { op: "add", path: "/metadata/finalizers", value: [finalizer] },
          ]
        : [
            { op: "test", path: "/metadata/finalizers", value: list },
            { op: "add", path: "/metadata/finalizers/-", value: finalizer },
          ];
    try {
      return await client.patch<T>(gvk, key, patch, "json");
    } catch (err) {
      if (!isGuardFailure(err) || attempt >= MAX_ATTEMPTS) throw err;
      current = await client.get<T>(gvk, key);
    }
  }
}

/** Removes the finalizer if present, leaving every other entry alone; undefined if the object is gone. */
export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  obj: T,
  finalizer: string,
): Promise<T | undefined> {
  const gvk = gvkOf(obj);
  const key = objectKeyOf(obj);
  let current: T | undefined = obj;
  for (let attempt = 1; ; attempt++) {
    if (!current) return undefined;
    const index = current.metadata?.finalizers?.indexOf(finalizer) ?? -1;
    if (index < 0) return current;
    const patch = [
      { op: "test", path: `/metadata/finalizers/${index}`, value: finalizer },
      { op: "remove", path: `/metadata/finalizers/${index}` },
    ];
    try {
      return await client.patch<T>(gvk, key, patch, "json");
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      if (!isGuardFailure(err) || attempt >= MAX_ATTEMPTS) throw err;
      current = await client.getOrUndefined<T>(gvk, key);
    }
  }
}
