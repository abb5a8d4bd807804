// Renders the Helm chart (deploy/helm/homelab-operator, the one source of the operator's RBAC and
// Deployment) into deploy/manifests/operator.yaml for `kubectl apply -k deploy/manifests`. With --check it
// renders to memory and exits 1 when the committed file differs.
// Usage: node scripts/generate-manifests.ts [--check]
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const target = `${root}deploy/manifests/operator.yaml`;

export function renderManifests(): string {
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
    ],
    { encoding: "utf8" },
  );
  const header = [
    "# Generated from deploy/helm/homelab-operator by `node scripts/generate-manifests.ts`: edit the chart, not",
    "# this file (e2e/deploy checks it is current).",
    "",
  ].join("\n");
  return header + rendered;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const rendered = renderManifests();
  if (check) {
    const committed = readFileSync(target, "utf8");
    if (committed !== rendered) {
      console.error(`stale: ${target} differs from the chart; run node scripts/generate-manifests.ts`);
      process.exit(1);
    }
    console.log("deploy/manifests/operator.yaml is up to date");
  } else {
    writeFileSync(target, rendered);
    console.log(`wrote ${target}`);
  }
}
