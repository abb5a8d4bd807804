import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadKubeconfigFile, parseKubeconfig, UnsupportedKubeconfigError } from "./kubeconfig.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kubeconfig-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

function doc(cluster: Record<string, unknown>, user: Record<string, unknown>, extra: object = {}) {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "other", cluster: { server: "https://other:6443" } },
      { name: "c", cluster },
    ],
    users: [{ name: "u", user }],
    contexts: [
      { name: "ctx", context: { cluster: "c", user: "u", namespace: "team" } },
      { name: "wrong", context: { cluster: "other", user: "u" } },
    ],
    "current-context": "ctx",
    ...extra,
  });
}

describe("parseKubeconfig", () => {
  it("follows current-context to its cluster and user, and a bearer token into the header", async () => {
    const rc = parseKubeconfig(doc({ server: "https://10.0.0.1:6443/" }, { token: "abc" }));
    expect(rc.server).toBe("https://10.0.0.1:6443");
    expect(rc.namespace).toBe("team");
    expect(await rc.headers()).toEqual({ Authorization: "Bearer abc" });
    expect(parseKubeconfig(doc({ server: "https://x" }, {}), { context: "wrong" }).server).toBe(
      "https://other:6443",
    );
  });

  it("reads certificate files relative to the kubeconfig's folder, and the token from its file", async () => {
    await writeFile(join(dir, "token"), "first\n");
    await writeFile(join(dir, "ca.crt"), "not a real CA");
    const path = join(dir, "config");
    await writeFile(
      path,
      doc({ server: "https://h:1", "certificate-authority": "ca.crt" }, { tokenFile: join(dir, "token") }),
    );
    const rc = loadKubeconfigFile(path);
    expect(await rc.headers()).toEqual({ Authorization: "Bearer first" });
    // Missing relative file: the error names it rather than connecting without a CA.
    await writeFile(path, doc({ server: "https://h:1", "certificate-authority": "missing.crt" }, {}));
    expect(() => loadKubeconfigFile(path)).toThrow(/missing\.crt/);
  });

  it("runs an exec credential plugin with KUBERNETES_EXEC_INFO and uses its token until it expires", async () => {
    const plugin = join(dir, "plugin.sh");
    const counter = join(dir, "calls");
    await writeFile(
      plugin,
      `#!/bin/sh\necho x >> ${counter}\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s-%s","expirationTimestamp":"2999-01-01T00:00:00Z"}}' "$MY_ENV" "$(echo "$KUBERNETES_EXEC_INFO" | grep -c ExecCredential)"\n`,
    );
    await chmod(plugin, 0o755);
    const rc = parseKubeconfig(
      doc(
        { server: "https://h:1" },
        {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: plugin,
            env: [{ name: "MY_ENV", value: "tok" }],
          },
        },
      ),
    );
    expect(await rc.headers()).toEqual({ Authorization: "Bearer tok-1" });
    expect(await rc.headers()).toEqual({ Authorization: "Bearer tok-1" });
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(counter, "utf8")).trim().split("\n")).toHaveLength(1);
  });

  it("embedded base64 data wins over file paths; basic auth; no auth at all", async () => {
    const rc = parseKubeconfig(
      doc(
        {
          server: "https://h:1",
          "certificate-authority-data": b64("CA"),
          "certificate-authority": "/nonexistent",
        },
        { username: "a", password: "b" },
      ),
    );
    expect(await rc.headers()).toEqual({ Authorization: `Basic ${b64("a:b")}` });
    expect(await parseKubeconfig(doc({ server: "http://h:1" }, {})).headers()).toEqual({});
    expect(await parseKubeconfig(doc({ server: "http://h:1" }, {})).dispatcher()).toBeUndefined();
  });

  it("refuses what it does not implement instead of connecting without it", () => {
    expect(() => parseKubeconfig(doc({ server: "https://h", "proxy-url": "http://p" }, {}))).toThrow(
      UnsupportedKubeconfigError,
    );
    expect(() =>
      parseKubeconfig(doc({ server: "https://h" }, { "auth-provider": { name: "oidc" } })),
    ).toThrow(UnsupportedKubeconfigError);
    expect(() => parseKubeconfig(doc({ server: "https://h" }, {}, { "current-context": "nope" }))).toThrow(
      /nope/,
    );
    expect(() => parseKubeconfig(doc({}, {}))).toThrow(/no server/);
  });
});

describe("the operator process", () => {
  it("never loads @kubernetes/client-node or gRPC at start through the runtime, the controllers or the config", async () => {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const root = new URL("../../", import.meta.url).pathname;
    // Records every bare specifier resolved while importing what main.ts imports statically.
    const code = `
      import { registerHooks } from "node:module";
      const seen = new Set();
      registerHooks({ resolve(spec, ctx, next) { if (!spec.startsWith(".") && !spec.startsWith("node:")) seen.add(spec); return next(spec, ctx); } });
      await import("./src/runtime/index.ts");
      await import("./src/controllers/index.ts");
      await import("./src/config.ts");
      console.log(JSON.stringify([...seen]));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", code], {
      cwd: root,
    });
    const packages = JSON.parse(stdout) as string[];
    expect(packages).toContain("undici"); // the hook saw the imports
    expect(packages.filter((p) => p.startsWith("@kubernetes/"))).toEqual([]);
    // gRPC comes with the first Talos client (src/talos/grpc.ts), not with the modules that can build one.
    expect(packages.filter((p) => p.startsWith("@grpc/") || p.startsWith("protobufjs"))).toEqual([]);
  });
});
