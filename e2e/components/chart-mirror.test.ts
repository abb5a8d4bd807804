// Local mode's chart mirror (HOMELAB_LOCAL_CHARTS) over the reference chart folders: each chart packaged
// at the version its folder names, served as Helm serves a repository, and a folder Helm cannot package
// left out with Helm's reason instead of failing the mirror.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { type LocalChartMirror, startLocalChartMirror } from "../../src/local/chart-mirror.ts";
import { helmBinary } from "./workload.ts";

const CHARTS = "/work/shared/reference/charts";

describe.skipIf(!existsSync(CHARTS))(`local chart mirror of ${CHARTS}`, () => {
  let helmPath: string;
  let mirror: LocalChartMirror;
  let home: string;

  beforeAll(async () => {
    helmPath = await helmBinary();
    home = await mkdtemp(join(tmpdir(), "homelab-mirror-client-"));
    mirror = await startLocalChartMirror(helmPath, CHARTS);
  }, 300_000);
  afterAll(async () => {
    await mirror?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const helm = (...args: string[]) =>
    promisify(execFile)(helmPath, args, {
      env: { ...process.env, HELM_CACHE_HOME: join(home, "cache"), HELM_CONFIG_HOME: join(home, "config") },
    });

  it("serves every chart folder at its folder's version, and says which it left out and why", async () => {
    expect(Object.fromEntries(mirror.charts)).toEqual({
      cilium: ["1.18.10", "1.19.6"],
      "cert-manager": ["v1.21.1"],
      crossplane: ["2.3.4"],
      gatekeeper: ["3.23.0"],
    });
    expect(mirror.skipped.map((s) => s.dir)).toEqual([join(CHARTS, "external-secrets-2.9.0")]);
    expect(mirror.skipped[0]?.reason).toContain("missing in charts/ directory: bitwarden-sdk-server");
  });

  it("answers Helm as a chart repository does, with the version set where the tree says v0.0.0", async () => {
    const { stdout } = await helm(
      "show",
      "chart",
      "cert-manager",
      "--repo",
      mirror.url,
      "--version",
      "v1.21.1",
    );
    expect(parse(stdout)).toMatchObject({ name: "cert-manager", version: "v1.21.1", appVersion: "v1.21.1" });
  });

  it("serves the Gateway API CRDs as the release asset", async () => {
    const res = await fetch(`${mirror.url}/gateway-api/v1.6.1/standard-install.yaml`);
    const kinds = parseAllDocuments(await res.text()).map(
      (d) => (d.toJS() as { spec: { names: { kind: string } } }).spec.names.kind,
    );
    expect(kinds.sort()).toEqual(["GRPCRoute", "Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant"]);
  });
});
