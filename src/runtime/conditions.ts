/** metav1.Condition: the contract between a controller and its users (API conventions, "Typical status properties"). */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  /** RFC 3339; moves only when `status` changes. */
  lastTransitionTime: string;
  /** CamelCase, required and non-empty. */
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "message"> & { message?: string };

const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

/** API server's metav1.Time has second precision; a finer time would flap on every round trip. */
export function conditionTime(now: Date): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Returns the conditions with `input` set, as apimachinery's meta.SetStatusCondition: a new type is added
 * with lastTransitionTime = now; an existing one keeps its lastTransitionTime unless its status flips,
 * while reason, message and observedGeneration always take the new values. The input array is not changed.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date = new Date(),
): Condition[] {
  if (!REASON.test(input.reason)) {
    throw new Error(`condition ${input.type}: reason "${input.reason}" must be CamelCase (metav1.Condition)`);
  }
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const existing = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
    lastTransitionTime:
      existing && existing.status === input.status ? existing.lastTransitionTime : conditionTime(now),
    reason: input.reason,
    message: input.message ?? "",
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** True when two condition lists say the same thing (order-insensitive): lets a reconcile skip a no-op status write. */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  return x.every((c) => {
    const d = findCondition(y, c.type);
    return (
      d !== undefined &&
      d.status === c.status &&
      d.reason === c.reason &&
      d.message === c.message &&
      d.observedGeneration === c.observedGeneration &&
      d.lastTransitionTime === c.lastTransitionTime
    );
  });
}
