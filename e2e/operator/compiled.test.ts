// What the image runs: tsc's JavaScript (scripts/build.ts) started as `node dist/main.js` from a folder
// laid out like the image's /app, with the Dockerfile's NODE_OPTIONS and type stripping switched off, so
// a module that still needs a `.ts` file fails here as it would in the image (which has no src/). It
// installs the CRDs, becomes ready, reconciles a PeerTenant to Ready, and stops cleanly on SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppDir } from "../../scripts/build.ts";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { vendingGuardrailsCleanup } from "../app-vending/guardrails.ts";
import { adminKubeConfig, userKubeconfigPath } from "../harness/test-cluster.ts";
import { waitFor } from "../harness/wait.ts";

const TENANT = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" };
const NAME = "compiled-js";
const USER = "homelab-operator-compiled";
const root = new URL("../../", import.meta.url).pathname;

let app: string;
let main: string;
let operator: ChildProcess | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

function dockerfileNodeOptions(): string[] {
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
  return (/^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? "").split(/\s+/).filter(Boolean);
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith(".js") ? [join(dir, e.name)] : [],
  );
}

beforeAll(async () => {
  app = await mkdtemp(join(tmpdir(), "homelab-compiled-"));
  main = buildAppDir(app);
});

afterAll(async () => {
  if (operator && operator.exitCode === null) operator.kill("SIGKILL");
  for (const cleanup of cleanups.reverse()) await cleanup();
  await rm(app, { recursive: true, force: true });
});

describe("the compiled operator (node dist/main.js, as in the image)", () => {
  it("imports only relative .js modules, node builtins and production dependencies", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const bad: string[] = [];
    let seen = 0;
    for (const file of jsFiles(join(app, "dist"))) {
      const code = readFileSync(file, "utf8");
      // tsc writes each import on one line: static ones start the line, dynamic ones are import("…").
      const specs = [
        ...code.matchAll(/^(?:import|export)\b[^\n]*?\bfrom\s*"([^"\n]+)";$/gm),
        ...code.matchAll(/^import\s*"([^"\n]+)";$/gm),
        ...code.matchAll(/\bimport\(\s*"([^"\n]+)"\s*\)/g),
      ];
      seen += specs.length;
      for (const [, spec] of specs) {
        if (spec!.startsWith(".")) {
          if (!spec!.endsWith(".js")) bad.push(`${file}: ${spec}`);
          continue;
        }
        const bare = spec!.replace(/^node:/, "");
        const name = bare.startsWith("@") ? bare.split("/").slice(0, 2).join("/") : bare.split("/")[0]!;
        // The image installs with --omit=dev: a devDependency imported here would be missing there.
        if (!allowed.has(name)) bad.push(`${file}: ${spec}`);
      }
    }
    expect(seen).toBeGreaterThan(300); // the patterns do find tsc's imports
    expect(bad).toEqual([]);
  });

  it("installs the CRDs, reconciles a PeerTenant to Ready and exits 0 on SIGTERM", {
    timeout: 400_000,
  }, async () => {
    const admin = new KubeClient(adminKubeConfig());
    const namespace = `compiled-${Date.now().toString(36)}`;
    // Every controller runs; the AppVending one leaves cluster-wide admission policies behind.
    cleanups.push(await vendingGuardrailsCleanup(admin));
    cleanups.push(() =>
      admin.delete({ apiVersion: "v1", kind: "Namespace" }, { name: namespace }, { ignoreNotFound: true }),
    );
    // cluster-admin, as the bench grants it: this test is about the build, e2e/deploy about RBAC.
    const binding = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding" };
    await admin.apply({
      ...binding,
      metadata: { name: USER },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: USER }],
    } as KubeObject);
    cleanups.push(() => admin.delete(binding, { name: USER }, { ignoreNotFound: true }));
    const healthPort = await freePort();
    operator = spawn(process.execPath, [...dockerfileNodeOptions(), "--no-experimental-strip-types", main], {
      cwd: app,
      env: {
        ...process.env,
        NODE_OPTIONS: "",
        KUBECONFIG: await userKubeconfigPath(USER),
        HOMELAB_OPERATOR_NAMESPACE: namespace,
        HOMELAB_OPERATOR_USERNAMES: USER,
        HEALTH_PORT: String(healthPort),
        INSTALL_CRDS: "true",
        LEADER_ELECT: "true",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => operator!.once("exit", (code) => resolve(code)));
    await waitFor(
      "/readyz to answer 200",
      async () =>
        (await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
          (r) => r.ok,
          () => false,
        ))
          ? true
          : undefined,
      120_000,
    );
    await admin.create({ ...TENANT, metadata: { name: NAME }, spec: { owners: { users: [NAME] } } });
    cleanups.push(() => admin.delete(TENANT, { name: NAME }, { ignoreNotFound: true }));
    await waitFor(
      "the PeerTenant to become Ready",
      async () => {
        const t = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(TENANT, {
          name: NAME,
        });
        return t.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
          ? true
          : undefined;
      },
      120_000,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    expect(metrics).toMatch(
      /controller_runtime_reconcile_total\{controller="peertenant",result="success"\} [1-9]/,
    );
    // The tenant goes while its operator runs: the finalizer is released, nothing is left behind.
    await admin.delete(TENANT, { name: NAME });
    await waitFor(
      "the PeerTenant to be gone",
      async () => ((await admin.getOrUndefined(TENANT, { name: NAME })) ? undefined : true),
      120_000,
    );
    operator.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
