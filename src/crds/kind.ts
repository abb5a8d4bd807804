// A kind is declared once (schemas, names, columns, root rules); its TS type, its runtime parser and
// its CustomResourceDefinition all come from that declaration.
import * as z from "zod";
import { type JSONSchemaProps, toStructuralSchema } from "./openapi.ts";
import { type Rule, withRules } from "./rules.ts";

export const GROUP = "homelab.shdr.ch";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = "homelab";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  /** 0 shows in `kubectl get`; 1 only with `-o wide`. */
  priority?: 0 | 1;
}

/** The object metadata fields the operator reads; everything else is kept as is. */
export const ObjectMeta = z.looseObject({
  name: z.string().max(253),
  namespace: z.string().max(63).optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  creationTimestamp: z.unknown().optional(),
  deletionTimestamp: z.unknown().optional(),
});

export interface KindDeclaration<Spec extends z.ZodObject, Status extends z.ZodObject> {
  kind: string;
  plural: string;
  shortName: string;
  scope: "Cluster" | "Namespaced";
  description: string;
  spec: Spec;
  status: Status;
  printerColumns: readonly PrinterColumn[];
  /** Rules on the whole object, for checks that need metadata.name (the only metadata CEL may read). */
  rootRules?: readonly Rule<{ metadata: { name: string }; spec: z.output<Spec> }>[];
}

function objectSchema<Spec extends z.ZodObject, Status extends z.ZodObject>(
  d: KindDeclaration<Spec, Status>,
) {
  const base = z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(d.kind),
    metadata: ObjectMeta,
    spec: d.spec,
    status: d.status.optional(),
  });
  // The root rules see the parsed object; their declared input type is the part they may read.
  return withRules(base, (d.rootRules ?? []) as unknown as readonly Rule<z.output<typeof base>>[]);
}

export interface Kind<Spec extends z.ZodObject, Status extends z.ZodObject>
  extends KindDeclaration<Spec, Status> {
  /** The whole object (apiVersion, kind, metadata, spec, status): `parse` applies defaults and every rule. */
  schema: ReturnType<typeof objectSchema<Spec, Status>>;
  group: string;
  version: string;
  apiVersion: string;
  crdName: string;
}

export function defineKind<Spec extends z.ZodObject, Status extends z.ZodObject>(
  declaration: KindDeclaration<Spec, Status>,
): Kind<Spec, Status> {
  return {
    ...declaration,
    schema: objectSchema(declaration),
    group: GROUP,
    version: VERSION,
    apiVersion: API_VERSION,
    crdName: `${declaration.plural}.${GROUP}`,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of kinds; each keeps its own types at its definition.
export type AnyKind = Kind<any, any>;

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    scope: "Cluster" | "Namespaced";
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }[];
  };
}

/** The CustomResourceDefinition for a kind, fully derived from its declaration. */
export function customResourceDefinition(kind: AnyKind): CustomResourceDefinition {
  const rootRules = (kind.rootRules ?? []).map(({ check: _check, ...rule }) => rule);
  const openAPIV3Schema: JSONSchemaProps = {
    type: "object",
    description: kind.description,
    properties: {
      apiVersion: {
        type: "string",
        description: `APIVersion of this object: ${API_VERSION}.`,
      },
      kind: { type: "string", description: `Kind of this object: ${kind.kind}.` },
      metadata: { type: "object" },
      spec: toStructuralSchema(
        kind.spec.describe(kind.spec.description ?? `Desired state of the ${kind.kind}.`),
        "spec",
      ),
      status: toStructuralSchema(
        kind.status.describe(kind.status.description ?? `Observed state of the ${kind.kind}.`),
        "status",
      ),
    },
    required: ["spec"],
    ...(rootRules.length > 0 ? { "x-kubernetes-validations": rootRules } : {}),
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: kind.crdName,
      labels: {
        "app.kubernetes.io/name": "homelab-operator",
        "app.kubernetes.io/managed-by": "homelab-operator",
      },
    },
    spec: {
      group: GROUP,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.kind.toLowerCase(),
        shortNames: [kind.shortName],
        categories: [CATEGORY],
      },
      scope: kind.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: kind.printerColumns.map((c) => ({ ...c })),
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
