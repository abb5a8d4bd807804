// What the Helm driver hands to the helm process: a recording program in helm's place shows the argv and
// the files it was given, and whether they still exist afterwards.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Helm, HelmError } from "./helm.ts";

const SECRET = "glagent-s3cr3t-token-value";
let dir: string;
let fakeHelm: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "helm-driver-test-"));
  fakeHelm = join(dir, "helm");
  // Records argv, copies the --values and --kubeconfig files and their modes, then prints a release.
  await writeFile(
    fakeHelm,
    `#!/bin/sh
out="${dir}/call"
printf '%s\\n' "$@" > "$out.args"
prev=""
for a in "$@"; do
  case "$prev" in
    --values) cp "$a" "$out.values"; stat -c %a "$a" > "$out.values.mode"; echo "$a" > "$out.values.path";;
    --kubeconfig) cp "$a" "$out.kubeconfig"; stat -c %a "$a" > "$out.kubeconfig.mode"; echo "$a" > "$out.kubeconfig.path";;
  esac
  prev="$a"
done
if [ "$1" = "get" ] && [ "$3" = "missing" ]; then echo "Error: release: not found" >&2; exit 1; fi
echo '{"name":"r","namespace":"n","revision":3,"status":"deployed","version":"1.2.3","labels":{"a":"b"}}'
`,
  );
  await chmod(fakeHelm, 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const helm = () =>
  new Helm({ helmPath: fakeHelm, stateDir: join(dir, "state") }, "apiVersion: v1\nkind: Config\n# kc\n");
const read = (s: string) => readFile(join(dir, `call.${s}`), "utf8");
const gone = async (p: string) =>
  stat(p.trim()).then(
    () => false,
    () => true,
  );

describe("Helm driver", () => {
  it("passes values and kubeconfig as private files, never on the command line, and removes them", async () => {
    await helm().upgradeInstall({
      release: "gitlab-agent",
      namespace: "gitlab-agent",
      source: {
        kind: "chart",
        repository: "https://charts.gitlab.io",
        chart: "gitlab-agent",
        version: "2.18.0",
      },
      values: { config: { token: SECRET } },
      labels: { "homelab-operator.dev/managed-by": "homelab-operator" },
    });
    const args = await read("args");
    expect(args).not.toContain(SECRET);
    expect(args).toContain("--reset-values");
    expect(args).not.toMatch(/^--wait$/m);
    expect(args).toContain("homelab-operator.dev/managed-by=homelab-operator");
    expect(JSON.parse(await read("values"))).toEqual({ config: { token: SECRET } });
    expect((await read("values.mode")).trim()).toBe("600");
    expect((await read("kubeconfig.mode")).trim()).toBe("600");
    expect(await read("kubeconfig")).toContain("# kc");
    expect(await gone(await read("values.path"))).toBe(true);
    expect(await gone(await read("kubeconfig.path"))).toBe(true);
  });

  it("addresses an OCI chart by reference and a repository chart with --repo", async () => {
    const req = { release: "cm", namespace: "cm", values: {}, labels: {} };
    await helm().upgradeInstall({
      ...req,
      source: {
        kind: "chart",
        repository: "oci://quay.io/jetstack/charts",
        chart: "cert-manager",
        version: "v1.21.1",
      },
    });
    expect((await read("args")).split("\n").slice(0, 4)).toEqual([
      "upgrade",
      "--install",
      "cm",
      "oci://quay.io/jetstack/charts/cert-manager",
    ]);
    await helm().upgradeInstall({
      ...req,
      source: { kind: "chart", repository: "https://helm.cilium.io/", chart: "cilium", version: "1.19.6" },
    });
    expect(await read("args")).toMatch(/^cilium\n--repo\nhttps:\/\/helm\.cilium\.io\/$/m);
  });

  it("reads release metadata, and treats a missing release as none", async () => {
    expect(await helm().status("r", "n")).toEqual({
      name: "r",
      namespace: "n",
      revision: 3,
      status: "deployed",
      chartVersion: "1.2.3",
      labels: { a: "b" },
    });
    expect(await helm().status("missing", "n")).toBeUndefined();
    expect(await gone(await read("kubeconfig.path"))).toBe(true);
  });

  it("stops an aborted helm with killSignal: SIGKILL gives it no chance to run its SIGTERM handler", async () => {
    // Stands in for Helm, which marks the release failed when it gets SIGTERM during an install.
    const trapping = join(dir, "trapping-helm");
    await writeFile(
      trapping,
      `#!/bin/sh
trap 'echo term > "$MARK"; exit 3' TERM
: > "$MARK.started"
while :; do sleep 0.05; done
`,
    );
    await chmod(trapping, 0o755);
    const exists = (p: string) =>
      stat(p).then(
        () => true,
        () => false,
      );
    const abortedRun = async (killSignal: NodeJS.Signals | undefined, mark: string) => {
      const abort = new AbortController();
      // The driver gives helm only the environment it builds, so a wrapper sets MARK.
      const wrapper = join(dir, `helm-${mark}`);
      await writeFile(wrapper, `#!/bin/sh\nMARK="${join(dir, mark)}" exec "${trapping}" "$@"\n`);
      await chmod(wrapper, 0o755);
      const h = new Helm(
        { helmPath: wrapper, stateDir: dir, signal: abort.signal, ...(killSignal ? { killSignal } : {}) },
        "x",
      );
      const run = h.values("r", "n").catch((err: unknown) => err);
      while (!(await exists(join(dir, `${mark}.started`)))) await new Promise((r) => setTimeout(r, 20));
      abort.abort(new Error("leadership lost"));
      const err = await run;
      expect((err as Error).message).toBe("leadership lost");
      // The handler runs within one sleep of the signal; give it ample time before looking.
      await new Promise((r) => setTimeout(r, 300));
      return exists(join(dir, mark));
    };
    expect(await abortedRun(undefined, "term-default")).toBe(true);
    expect(await abortedRun("SIGKILL", "term-kill")).toBe(false);
    // Already aborted: no helm is started at all.
    const abort = new AbortController();
    abort.abort(new Error("stopped"));
    const never = new Helm({ helmPath: join(dir, "no-such-helm"), stateDir: dir, signal: abort.signal }, "x");
    await expect(never.values("r", "n")).rejects.toThrow("stopped");
  });

  it("reports a failing command as HelmError with helm's last line", async () => {
    const broken = new Helm({ helmPath: join(dir, "no-such-helm"), stateDir: dir }, "x");
    await expect(broken.values("r", "n")).rejects.toBeInstanceOf(HelmError);
  });
});
