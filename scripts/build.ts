// Emits the operator as JavaScript into dist/ (what the image runs: `node dist/main.js`). Node's type
// stripping keeps its WebAssembly TypeScript parser in the process for good (~29 MiB RSS at start, never
// given back; README, Benchmarks); tsc's output needs none of it. The `.ts` import specifiers stay in
// the sources: tsconfig's rewriteRelativeImportExtensions turns them into `.js` here.
// Files the code reads beside itself (Talos' .proto files, the stand-in CRDs, versions.env, the Proxmox
// API subset) are copied next to the emitted modules, so `import.meta.url` paths resolve the same.
// Usage: node scripts/build.ts [--out-dir DIR]   (default dist/)
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");

// What the modules read at run time. Not copied: tests' fixtures (testdata/), docs, and the shell build
// scripts, which source scripts/lib from the checkout and are found there (src/local/control-plane/binaries.ts).
const ASSET_EXTENSIONS = new Set([".proto", ".yaml", ".json", ".env"]);

function assets(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "testdata" ? [] : assets(path);
    return ASSET_EXTENSIONS.has(extname(entry.name)) ? [path] : [];
  });
}

export function build(outDir: string): string {
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules/typescript/bin/tsc"),
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      outDir,
    ],
    { stdio: "inherit" },
  );
  for (const file of assets(src)) {
    cpSync(file, join(outDir, relative(src, file)));
  }
  return join(outDir, "main.js");
}

/**
 * The image's /app laid out in `dir` (Dockerfile): dist/, package.json (for "type": "module") and this
 * checkout's node_modules linked in. Benches and tests run `node <dir>/dist/main.js` from it, away from
 * src/. Returns main.js's path.
 */
export function buildAppDir(dir: string): string {
  const main = build(join(dir, "dist"));
  copyFileSync(join(root, "package.json"), join(dir, "package.json"));
  rmSync(join(dir, "node_modules"), { force: true });
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  return main;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { "out-dir": { type: "string", default: join(root, "dist") } } });
  console.log(build(resolve(values["out-dir"])));
}
