// Structural checks over the generated CRDs: what the apiserver and kubectl need from each.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { crdFileName, findStaleFiles, renderCRDFiles } from "./crd-files.ts";
import { KINDS } from "./index.ts";
import { customResourceDefinition } from "./kind.ts";
import type { JSONSchemaProps } from "./openapi.ts";
import { declaredRules } from "./rules.ts";

const REPO = join(import.meta.dirname, "..", "..");
const DEPLOY = join(REPO, "deploy", "crds");

/** Every schema node with its path, depth first. */
function* walk(node: JSONSchemaProps, path: string): Generator<[string, JSONSchemaProps]> {
  yield [path, node];
  for (const [name, child] of Object.entries((node["properties"] ?? {}) as Record<string, JSONSchemaProps>)) {
    yield* walk(child, `${path}.${name}`);
  }
  if (node["items"]) yield* walk(node["items"] as JSONSchemaProps, `${path}[]`);
  if (typeof node["additionalProperties"] === "object") {
    yield* walk(node["additionalProperties"] as JSONSchemaProps, `${path}{}`);
  }
}

const crds = KINDS.map((kind) => [kind.kind, kind, customResourceDefinition(kind)] as const);

describe.each(crds)("%s CRD", (_, kind, crd) => {
  const version = crd.spec.versions[0]!;
  const root = version.schema.openAPIV3Schema;

  it("names, scope, category and short name", () => {
    expect(crd.metadata.name).toBe(`${kind.plural}.homelab.shdr.ch`);
    expect(crd.spec.names).toMatchObject({
      kind: kind.kind,
      shortNames: [kind.shortName],
      categories: ["homelab"],
    });
    expect(crd.spec.scope).toBe(
      kind.kind === "HomelabCluster" || kind.kind === "PeerTenant" ? "Cluster" : "Namespaced",
    );
  });

  it("serves v1alpha1 as the storage version with a status subresource", () => {
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({
      name: "v1alpha1",
      served: true,
      storage: true,
      subresources: { status: {} },
    });
  });

  it("has a Ready column and an Age column", () => {
    const names = version.additionalPrinterColumns.map((c) => c.name);
    expect(names).toContain("Ready");
    expect(names.at(-1)).toBe("Age");
    const ready = version.additionalPrinterColumns.find((c) => c.name === "Ready");
    expect(ready?.jsonPath).toBe('.status.conditions[?(@.type=="Ready")].status');
  });

  it("status has observedGeneration and conditions as a list-map keyed by type", () => {
    const status = (root["properties"] as Record<string, JSONSchemaProps>)["status"]!;
    const props = status["properties"] as Record<string, JSONSchemaProps>;
    expect(props["observedGeneration"]).toMatchObject({ type: "integer", minimum: 0 });
    expect(props["conditions"]).toMatchObject({
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    });
    const condition = props["conditions"]!["items"] as JSONSchemaProps;
    expect(condition["required"]).toEqual(["type", "status", "lastTransitionTime", "reason", "message"]);
    expect((condition["properties"] as Record<string, JSONSchemaProps>)["status"]!["enum"]).toEqual([
      "True",
      "False",
      "Unknown",
    ]);
  });

  it("is structural: a type on every node, anyOf only in the int-or-string shape, no $ref", () => {
    const text = JSON.stringify(root);
    expect(text).not.toContain("$ref");
    expect(text).not.toContain('"nullable"');
    for (const [path, node] of walk(root, "")) {
      if (path === ".metadata") continue;
      if (node["x-kubernetes-int-or-string"]) {
        expect(node["anyOf"], path).toEqual([{ type: "integer" }, { type: "string" }]);
        continue;
      }
      expect(typeof node["type"], path).toBe("string");
      expect(node["anyOf"], path).toBeUndefined();
      if (node["properties"]) expect(node["additionalProperties"], path).toBeUndefined();
    }
  });

  it("describes every field", () => {
    for (const [path, node] of walk(root, "")) {
      if (path === ".metadata" || path.endsWith("[]") || path.endsWith("{}")) continue;
      expect(typeof node["description"] === "string" && node["description"].length > 5, path).toBe(true);
    }
  });

  it("bounds every string, list and map that CEL could iterate", () => {
    for (const [path, node] of walk(root, "")) {
      if (path === ".apiVersion" || path === ".kind") continue; // checked by the apiserver itself
      if (node["type"] === "string" && node["format"] !== "date-time" && !node["enum"]) {
        expect(node["maxLength"], path).toBeTypeOf("number");
      }
      if (node["type"] === "array") expect(node["maxItems"], path).toBeTypeOf("number");
      if (node["type"] === "object" && node["additionalProperties"]) {
        expect(node["maxProperties"], path).toBeTypeOf("number");
      }
    }
  });
});

describe("CEL rules and their TypeScript mirrors", () => {
  it("every rule has a runtime check unless it compares with oldSelf (which one parse cannot see)", () => {
    const rules = declaredRules();
    expect(rules.length).toBeGreaterThan(40);
    for (const r of rules) {
      expect(r.check !== undefined || r.rule.includes("oldSelf"), r.rule).toBe(true);
      expect(r.check === undefined || !r.rule.includes("oldSelf"), r.rule).toBe(true);
    }
  });

  it("every rule carries a message for the user", () => {
    for (const r of declaredRules()) expect(r.message.length, r.rule).toBeGreaterThan(10);
  });
});

describe("the schemas carry the API's key validations", () => {
  const hc = customResourceDefinition(KINDS[0]!);
  const rules = JSON.stringify(hc);
  it.each([
    "node vmids must be unique",
    "node ips must be unique",
    "every node ip must be inside network.subnet",
    "network.vip must not be a node ip",
    "the number of controlplane nodes must be odd",
    "kubernetes.clusterName cannot change after creation",
    "network.controlPlaneVIP must differ from network.vip (Cilium's LoadBalancer VIP)",
  ])("HomelabCluster: %s", (message) => {
    expect(rules).toContain(message);
  });
});

describe("generated files", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("the committed deploy/crds/ matches the schemas (run `npm run generate` if this fails)", async () => {
    expect(await findStaleFiles(DEPLOY)).toEqual([]);
  });

  it("each file is the YAML of its kind's CRD", async () => {
    for (const kind of KINDS) {
      const parsed = parse(await readFile(join(DEPLOY, crdFileName(kind)), "utf8"));
      expect(parsed).toEqual(JSON.parse(JSON.stringify(customResourceDefinition(kind))));
    }
  });

  it("findStaleFiles names a changed file and a missing one", async () => {
    dir = await mkdtemp(join(tmpdir(), "crds-"));
    const files = renderCRDFiles();
    for (const [file, content] of files) await writeFile(join(dir, file), content);
    const [first, second] = [...files.keys()];
    await writeFile(join(dir, first!), files.get(first!)!.replace("description:", "description: edited"));
    await rm(join(dir, second!));
    expect(await findStaleFiles(dir)).toEqual([
      { file: first, problem: "differs" },
      { file: second, problem: "missing" },
    ]);
  });

  it("generate-crds --check exits non-zero and names the stale file", async () => {
    dir = await mkdtemp(join(tmpdir(), "crds-"));
    await cp(DEPLOY, dir, { recursive: true });
    const run = promisify(execFile);
    const node = process.execPath;
    const script = join(REPO, "scripts", "generate-crds.ts");
    await expect(run(node, [script, "--check", "--out", dir])).resolves.toMatchObject({
      stdout: expect.stringContaining("up to date"),
    });
    const victim = join(dir, "homelab.shdr.ch_peertenants.yaml");
    await writeFile(
      victim,
      (await readFile(victim, "utf8")).replace("shortNames:\n      - pt", "shortNames:\n      - ten"),
    );
    const failure = await run(node, [script, "--check", "--out", dir]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain("homelab.shdr.ch_peertenants.yaml is out of date");
  });
});
