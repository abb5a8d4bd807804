// Writes deploy/crds/*.yaml from the zod schemas in src/crds/. With --check it writes nothing and exits
// non-zero naming each stale file, so CI catches a schema change whose YAML was not regenerated.
// --out <dir> writes to (or checks) another folder; tests use it.
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { findStaleFiles, renderCRDFiles } from "../src/crds/crd-files.ts";

const outFlag = process.argv.indexOf("--out");
const outDir = outFlag >= 0 ? process.argv[outFlag + 1]! : join(import.meta.dirname, "..", "deploy", "crds");
const shown = relative(process.cwd(), outDir) || ".";

if (process.argv.includes("--check")) {
  const stale = await findStaleFiles(outDir);
  if (stale.length > 0) {
    for (const { file, problem } of stale) {
      console.error(
        `stale CRD: ${join(shown, file)} is ${problem === "missing" ? "missing" : "out of date"}`,
      );
    }
    console.error("run `npm run generate` and commit deploy/crds/");
    process.exit(1);
  }
  console.log(`CRDs in ${shown} are up to date`);
} else {
  await mkdir(outDir, { recursive: true });
  for (const [file, content] of renderCRDFiles()) {
    await writeFile(join(outDir, file), content);
    console.log(`wrote ${join(shown, file)}`);
  }
}
