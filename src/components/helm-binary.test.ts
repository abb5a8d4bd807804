import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findHelm, PINNED_HELM_VERSION } from "./helm-binary.ts";

describe("findHelm", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "helm-lookup-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  // A stand-in helm that answers `helm version --template {{.Version}}` with `version`.
  const binary = async (path: string, version = PINNED_HELM_VERSION) => {
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, `#!/bin/sh\necho ${version}\n`);
    await chmod(path, 0o755);
    return path;
  };

  it("pins the version build-helm.sh builds", async () => {
    const script = await readFile(new URL("../../deploy/helm/build-helm.sh", import.meta.url), "utf8");
    expect(script).toContain(`HELM_VERSION=${PINNED_HELM_VERSION}\n`);
  });

  it("prefers HOMELAB_OPERATOR_HELM, and never falls back when it names nothing runnable", async () => {
    const set = await binary(join(dir, "explicit", "helm"));
    const cache = join(dir, "cache");
    await binary(join(cache, `helm-${PINNED_HELM_VERSION}`, "helm"));
    expect(findHelm({ HOMELAB_OPERATOR_HELM: set, HOMELAB_OPERATOR_CACHE: cache }).path).toBe(set);
    const missing = findHelm({ HOMELAB_OPERATOR_HELM: join(dir, "nope"), HOMELAB_OPERATOR_CACHE: cache });
    expect(missing.path).toBeUndefined();
    expect(missing.checked.join()).toContain("not an executable file");
  });

  it("finds the pinned binary in the peer cache before a helm on PATH", async () => {
    const cache = join(dir, "cache2");
    const pinned = await binary(join(cache, `helm-${PINNED_HELM_VERSION}`, "helm"));
    const onPath = await binary(join(dir, "bin", "helm"));
    expect(findHelm({ HOMELAB_OPERATOR_CACHE: cache, PATH: join(dir, "bin") }).path).toBe(pinned);
    expect(findHelm({ HOMELAB_OPERATOR_CACHE: join(dir, "empty"), PATH: join(dir, "bin") }).path).toBe(
      onPath,
    );
  });

  it("skips a helm on PATH that is not Helm v4, naming it, and takes a v4 further along PATH", async () => {
    const v3 = await binary(join(dir, "v3bin", "helm"), "v3.16.2");
    const v4 = await binary(join(dir, "v4bin", "helm"), "v4.2.0");
    const empty = join(dir, "empty-cache");
    const onlyV3 = findHelm({ HOMELAB_OPERATOR_CACHE: empty, PATH: join(dir, "v3bin") });
    expect(onlyV3.path).toBeUndefined();
    expect(onlyV3.checked.at(-1)).toBe(`${v3} (v3.16.2: not Helm v4, the pin is ${PINNED_HELM_VERSION})`);
    const both = findHelm({
      HOMELAB_OPERATOR_CACHE: empty,
      PATH: `${join(dir, "v3bin")}:${join(dir, "v4bin")}`,
    });
    expect(both.path).toBe(v4);
  });

  it("says everything it looked at when there is no helm", () => {
    const none = findHelm({ XDG_CACHE_HOME: join(dir, "xdg"), PATH: join(dir, "no-bin") });
    expect(none.path).toBeUndefined();
    expect(none.checked).toEqual([
      "HOMELAB_OPERATOR_HELM (unset)",
      `${join(dir, "xdg", "homelab-operator", `helm-${PINNED_HELM_VERSION}`, "helm")} (absent; deploy/helm/build-helm.sh builds it)`,
      "helm on PATH (absent)",
    ]);
  });
});
