// The parts of helm-release.ts that decide without a cluster: when a release counts as up to date
// (the digest in its label), and when there is no Helm to drive.
import { describe, expect, it } from "vitest";
import { desiredDigest, type HelmTarget, helmAccess, resolveHelmSetup } from "./helm-release.ts";

const target = (helm: Partial<HelmTarget["helm"]> = {}): HelmTarget =>
  ({
    name: "gitlab",
    kind: "HelmRelease",
    helm: {
      repository: "https://charts.gitlab.io",
      chart: "gitlab",
      version: "9.2.1",
      values: { global: { hosts: { domain: "apps.home.shdr.ch", https: true } } },
      ...helm,
    },
  }) as HelmTarget;

describe("desiredDigest", () => {
  it("is the same for the same values written in another key order (no upgrade for a reformatted spec)", () => {
    const reordered = target({ values: { global: { hosts: { https: true, domain: "apps.home.shdr.ch" } } } });
    expect(desiredDigest(reordered)).toBe(desiredDigest(target()));
  });

  it("changes with the version, the chart, the repository and any value, and fits a label value", () => {
    const base = desiredDigest(target());
    const changed = [
      target({ version: "9.2.2" }),
      target({ chart: "gitlab-runner" }),
      target({ repository: "oci://registry.example.org/charts" }),
      target({ values: { global: { hosts: { domain: "apps.home.shdr.ch", https: false } } } }),
      target({ values: undefined }),
    ].map(desiredDigest);
    for (const d of changed) expect(d).not.toBe(base);
    expect(new Set(changed).size).toBe(changed.length);
    expect(base).toMatch(/^[0-9a-f]{40}$/);
  });

  it("treats absent values as empty values (Helm installs both with the chart's defaults)", () => {
    expect(desiredDigest(target({ values: undefined }))).toBe(desiredDigest(target({ values: {} })));
  });
});

describe("helmAccess", () => {
  const signal = new AbortController().signal;

  it("has no Helm without a workload cluster's kubeconfig, and says why", () => {
    const a = helmAccess({ path: "/usr/bin/helm", checked: [], stateDir: "/tmp/x" }, undefined, signal);
    expect(a).toEqual({ unavailable: expect.stringContaining("spec.clusterRef") });
  });

  it("has no Helm when the lookup found none, naming where it looked", () => {
    const setup = resolveHelmSetup({ path: "", checked: ["HOMELAB_OPERATOR_HELM (unset)"] });
    expect(setup.path).toBe("");
    const a = helmAccess(setup, "apiVersion: v1\nkind: Config\n", signal);
    expect(a).toEqual({ unavailable: expect.stringContaining("HOMELAB_OPERATOR_HELM (unset)") });
  });
});
