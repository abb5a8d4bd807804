// The seed's "What Moves to Kubernetes" table (kubernetes-exploration.md), row by row, must each be a
// WorkloadMigration in examples/: the workload a target of the VM it names, of the kind the table says,
// the decommission a migration without targets, the new CronJob a migration without a VM.
import { describe, expect, it } from "vitest";
import { loadExamples } from "../../crds/examples.ts";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";

/** workload → [migration, target (undefined: the VM itself), kind]; the seed's 18 rows. */
const SEED_TABLE: [string, string, string | undefined, string | undefined][] = [
  ["LiteLLM", "ai-tool-stack", "litellm", "KnativeService"],
  ["OpenWebUI", "ai-tool-stack", "openwebui", "KnativeService"],
  ["SearXNG", "ai-tool-stack", "searxng", "KnativeService"],
  ["Firecrawl", "ai-tool-stack", "firecrawl", "KnativeService"],
  ["Bytebot", "ai-tool-stack", "bytebot", "KnativeService"],
  ["GitLab", "gitlab", "gitlab", "HelmRelease"],
  ["Synapse", "messaging-stack", "synapse", "HelmRelease"],
  ["Element", "messaging-stack", "element", "KnativeService"],
  ["NUT Server", "ups-stack", "nut-server", "Deployment"],
  ["Peanut", "ups-stack", "peanut", "Deployment"],
  ["Smallweb", "smallweb", undefined, undefined],
  ["Coupe apps", "coupe-sandbox", "coupe-app", "KnativeService"],
  ["Dokku apps", "dokku-apps", "dokku-app", "KnativeService"],
  ["Dokploy apps", "dokploy-apps", "dokploy-app", "KnativeService"],
  ["Jellyfin", "media-stack", "jellyfin", "Deployment"],
  ["MediaManager", "media-stack", "mediamanager", "KnativeService"],
  ["qBittorrent", "media-stack", "qbittorrent", "Deployment"],
  ["Nuclei", "nuclei", "nuclei", "CronJob"],
];

const migrations = new Map(
  loadExamples()
    .filter((d) => d.object.kind === "WorkloadMigration")
    .map((d) => [d.object.metadata.name, d.object as unknown as WorkloadMigration]),
);

describe("examples/ hold every row of the seed's table", () => {
  it("has 18 rows and 10 migrations (8 VMs retired, Smallweb decommissioned, Nuclei new)", () => {
    expect(SEED_TABLE).toHaveLength(18);
    expect(new Set(SEED_TABLE.map((r) => r[1])).size).toBe(10);
  });

  it.each(SEED_TABLE)("%s: %s / %s (%s)", (_, migration, target, kind) => {
    const wm = migrations.get(migration);
    expect(wm, `no WorkloadMigration ${migration} in examples/`).toBeDefined();
    if (target === undefined) {
      expect(wm!.spec.targets ?? []).toEqual([]);
      expect(wm!.spec.source).toBeDefined();
      return;
    }
    expect(wm!.spec.targets.find((t) => t.name === target)?.kind).toBe(kind);
    if (kind === "CronJob") expect(wm!.spec.source).toBeUndefined();
  });
});
