// Renders what `kubectl apply -k deploy/manifests` applies besides the namespace: the Helm chart
// (deploy/helm/homelab-operator, the one source of the operator's RBAC and Deployment) into
// deploy/manifests/operator.yaml, and the CRDs (from src/crds, as deploy/crds) into deploy/manifests/crds.yaml.
// Why a copy of the CRDs: kustomize's default load restrictor refuses files outside the kustomization's
// folder ("security; file ... is not in or below ..."), so `../crds/*.yaml` cannot be listed.
// With --check it renders to memory and exits 1 when a committed file differs.
// Usage: node scripts/generate-manifests.ts [--check]
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCRDFiles } from "../src/crds/crd-files.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
export const MANIFESTS_DIR = `${root}deploy/manifests`;

const header = (what: string) =>
  [
    `# Generated from ${what} by \`node scripts/generate-manifests.ts\`: edit the source, not this file`,
    "# (e2e/deploy checks it is current).",
    "",
  ].join("\n");

export function renderManifests(values: string[] = []): string {
  const helm = execFileSync("bash", [`${root}deploy/helm/build-helm.sh`], { encoding: "utf8" })
    .trim()
    .split("\n")
    .pop()!;
  const rendered = execFileSync(
    helm,
    [
      "template",
      "homelab-operator",
      `${root}deploy/helm/homelab-operator`,
      "--namespace",
      "homelab-system",
      "--skip-crds",
      ...values.flatMap((v) => ["--set", v]),
    ],
    { encoding: "utf8" },
  );
  return header("deploy/helm/homelab-operator") + rendered;
}

/** Every CRD as one multi-document YAML file, in a stable order. */
export function renderCRDManifest(): string {
  const files = [...renderCRDFiles()].sort(([a], [b]) => (a < b ? -1 : 1));
  return header("src/crds") + files.map(([, content]) => `---\n${content}`).join("");
}

/** File name in deploy/manifests -> content. */
export function renderManifestFiles(): Map<string, string> {
  return new Map([
    ["operator.yaml", renderManifests()],
    ["crds.yaml", renderCRDManifest()],
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  let stale = false;
  for (const [file, content] of renderManifestFiles()) {
    const target = `${MANIFESTS_DIR}/${file}`;
    if (check) {
      let committed = "";
      try {
        committed = readFileSync(target, "utf8");
      } catch {}
      if (committed !== content) {
        console.error(`stale: ${target}; run node scripts/generate-manifests.ts`);
        stale = true;
      }
    } else {
      writeFileSync(target, content);
      console.log(`wrote ${target}`);
    }
  }
  if (stale) process.exit(1);
  if (check) console.log("deploy/manifests is up to date");
}
