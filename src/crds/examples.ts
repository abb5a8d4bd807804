// Reads the manifests under examples/: the seed's own setup, used by tests as valid inputs and as the
// bases the invalid-object table mutates.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const EXAMPLES_DIR = join(import.meta.dirname, "..", "..", "examples");

export interface ExampleDocument {
  file: string;
  object: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string };
    [key: string]: unknown;
  };
}

export function exampleFiles(dir = EXAMPLES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort();
}

export function loadExamples(dir = EXAMPLES_DIR): ExampleDocument[] {
  const documents: ExampleDocument[] = [];
  for (const file of exampleFiles(dir)) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const object = doc.toJS() as ExampleDocument["object"] | null;
      if (object !== null) documents.push({ file, object });
    }
  }
  return documents;
}

/** A deep copy of the example object of `kind` named `name`. */
export function example(kind: string, name: string, dir = EXAMPLES_DIR): ExampleDocument["object"] {
  const found = loadExamples(dir).find((d) => d.object.kind === kind && d.object.metadata.name === name);
  if (found === undefined) throw new Error(`no example ${kind}/${name} in ${dir}`);
  return structuredClone(found.object);
}
