// metav1.Condition and the status fields every kind shares. Bounds and patterns are the ones
// Kubernetes declares for metav1.Condition (k8s.io/apimachinery/pkg/apis/meta/v1/types.go), so a
// condition this operator writes is valid wherever a metav1.Condition is.
import * as z from "zod";
import { mapListOf } from "./fields.ts";

const CONDITION_TYPE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
const CONDITION_REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

export const ConditionStatus = z.enum(["True", "False", "Unknown"]);

export const Condition = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(CONDITION_TYPE)
      .describe(
        "Type of condition in CamelCase, e.g. Ready; a summary Ready condition exists on every kind.",
      ),
    status: ConditionStatus.describe("Status of the condition: True, False or Unknown."),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        "The .metadata.generation the condition was computed from; older than the object's means stale.",
      ),
    lastTransitionTime: z.iso
      .datetime({ offset: true })
      .describe("When the condition last changed status (not when it was last checked)."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(CONDITION_REASON)
      .describe("A CamelCase, machine-readable reason for the condition's last transition."),
    message: z.string().max(32768).describe("A human-readable explanation of the condition; may be empty."),
  })
  .describe("A metav1.Condition: one observation about the object's state.");
export type Condition = z.infer<typeof Condition>;

/** Status fields common to every kind; each kind extends this with its own. */
export function statusFields() {
  return {
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        "The .metadata.generation this status describes; lower than generation while a change is pending.",
      ),
    conditions: mapListOf(Condition, "type", 32)
      .optional()
      .describe(
        "Current state as conditions keyed by type. Ready summarises the object; the others record each phase.",
      ),
  };
}

/** jsonPath of a condition's status, for printer columns. */
export function conditionStatusPath(type: string): string {
  return `.status.conditions[?(@.type=="${type}")].status`;
}
