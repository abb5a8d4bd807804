import type * as z from "zod";

/** A `x-kubernetes-validations` entry as the apiserver reads it (apiextensions.k8s.io/v1 ValidationRule). */
export interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/**
 * One validation rule, written once and enforced twice: `rule` is CEL for the apiserver, `check` is the
 * same predicate in TypeScript so `schema.parse` rejects what the apiserver rejects (the operator parses
 * every object it reads, and unit tests exercise rules without an apiserver). Transition rules compare
 * with `oldSelf`, which a single parse cannot see, so they carry no `check`.
 */
export interface Rule<T> extends ValidationRule {
  check?: (value: T) => boolean;
}

const VALIDATIONS = "x-kubernetes-validations";

function issuePath(fieldPath: string | undefined): string[] {
  if (fieldPath === undefined) return [];
  return fieldPath.split(".").filter((segment) => segment !== "");
}

export function existingValidations(schema: z.ZodType): ValidationRule[] {
  const meta = schema.meta() as Record<string, unknown> | undefined;
  return (meta?.[VALIDATIONS] as ValidationRule[] | undefined) ?? [];
}

const declared: Rule<never>[] = [];

/** Every rule declared through withRules, for tests that check each CEL rule has its TypeScript mirror. */
export function declaredRules(): readonly Rule<never>[] {
  return declared;
}

/** Attaches rules to a schema: as CEL in its metadata (for the CRD) and as refinements (for parse). */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  declared.push(...(rules as readonly Rule<never>[]));
  const meta = (schema.meta() as Record<string, unknown> | undefined) ?? {};
  const validations: ValidationRule[] = [
    ...existingValidations(schema),
    ...rules.map(({ check: _check, ...validation }) => validation),
  ];
  const checked = rules.filter((r) => r.check !== undefined);
  const refined =
    checked.length === 0
      ? schema
      : schema.superRefine((value, ctx) => {
          for (const r of checked) {
            if (!r.check!(value as z.output<S>)) {
              ctx.addIssue({
                code: "custom",
                message: r.message,
                path: issuePath(r.fieldPath),
                input: value,
              });
            }
          }
        });
  return refined.meta({ ...meta, [VALIDATIONS]: validations }) as S;
}

/** `self == oldSelf` on a field: the apiserver refuses any change after creation. */
export function immutable<S extends z.ZodType>(schema: S, message: string): S {
  return withRules(schema, [{ rule: "self == oldSelf", message }]);
}

/** Quotes a regular expression as a CEL raw string literal; RE2 and ECMAScript agree on the subset used here. */
export function celRegex(re: RegExp): string {
  if (re.source.includes("'")) throw new Error(`regex ${re.source} cannot be quoted for CEL`);
  return `r'${re.source}'`;
}
