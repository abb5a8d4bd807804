// Talos' own validator on every config we generate: `talosctl validate --mode cloud` is the mode of
// the nocloud platform (Talos' nocloud platform reports mode "cloud"), --strict turns warnings into errors.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleClusterInput as homelabInput } from "../../src/talos/config/example-input.ts";
import {
  bundleToYaml,
  type ConfigPatch,
  ensureSecretsBundle,
  generateClusterConfigs,
  type TalosClusterInput,
} from "../../src/talos/config/index.ts";
import {
  configValidatorPath,
  seedTalosctlPath,
  talosctl,
  talosctlPath,
  validateConfigs,
} from "./talosctl.ts";

const secrets = ensureSecretsBundle();
let dir: string;

beforeAll(async () => {
  await talosctlPath();
  await seedTalosctlPath();
  await configValidatorPath();
  dir = await mkdtemp(join(tmpdir(), "talos-validate-"));
}, 20 * 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const VARIANTS: [string, TalosClusterInput][] = [
  ["the seed homelab on Talos v1.11.0 (Cilium, OIDC, eth0)", homelabInput],
  [
    "a control-plane VIP and its endpoint",
    {
      ...homelabInput,
      endpoint: "https://10.0.3.20:6443",
      network: { ...homelabInput.network, controlPlaneVip: "10.0.3.20" },
    },
  ],
  [
    "default CNI and kube-proxy, no VIP, no OIDC",
    {
      ...homelabInput,
      ciliumCNI: false,
      oidc: undefined,
      network: { ...homelabInput.network, controlPlaneVip: undefined },
    },
  ],
  [
    "first physical link instead of a name",
    { ...homelabInput, network: { ...homelabInput.network, interface: undefined } },
  ],
  [
    "control planes plus a worker, no scheduling on control planes",
    {
      ...homelabInput,
      allowSchedulingOnControlPlanes: false,
      nodes: [...homelabInput.nodes, { name: "talos-worker", ip: "10.0.3.20", role: "worker" }],
    },
  ],
  [
    "strategic-merge and JSON 6902 patches",
    {
      ...homelabInput,
      configPatches: [
        "machine:\n  sysctls:\n    vm.max_map_count: '262144'\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: 'true'\n",
        [{ op: "add", path: "/machine/certSANs/-", value: "k8s.home.example" }],
        "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: ghcr.io\nendpoints:\n  - url: https://ghcr.mirror.example\n",
      ],
    },
  ],
  ["the v1.12 contract", { ...homelabInput, talosVersion: "v1.12.6" }],
];

describe("talosctl validate --mode cloud", () => {
  it.each(VARIANTS)("accepts every node config of %s", async (_name, input) => {
    for (const config of generateClusterConfigs(input, secrets)) {
      const file = join(dir, `${config.node}.yaml`);
      await writeFile(file, config.yaml);
      const r = await talosctl(["validate", "--mode", "cloud", "--strict", "--config", file]);
      expect(`${r.stdout}${r.stderr}`).toContain("is valid for cloud mode");
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it("rejects a config that Talos considers invalid (the validator is really checking)", async () => {
    const [config] = generateClusterConfigs(
      {
        ...homelabInput,
        configPatches: [[{ op: "replace", path: "/cluster/controlPlane/endpoint", value: "not a url" }]],
      },
      secrets,
    );
    const file = join(dir, "broken.yaml");
    await writeFile(file, config?.yaml ?? "");
    const r = await talosctl(["validate", "--mode", "cloud", "--config", file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/endpoint|url/i);
  });

  it("talosctl reads our secrets bundle: gen config --with-secrets produces a valid config with our CAs", async () => {
    const secretsFile = join(dir, "secrets.yaml");
    await writeFile(secretsFile, bundleToYaml(secrets));
    const out = join(dir, "gen");
    const r = await talosctl([
      "gen",
      "config",
      "--with-secrets",
      secretsFile,
      "k8s",
      "https://10.0.3.16:6443",
      "-o",
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const controlplane = await readFile(join(out, "controlplane.yaml"), "utf8");
    expect(controlplane).toContain(secrets.certs.os.crt);
    expect(controlplane).toContain(secrets.certs.k8s.key);
    const v = await talosctl(["validate", "--mode", "cloud", "--config", join(out, "controlplane.yaml")]);
    expect(v.code, v.stderr).toBe(0);
  });
});

// The seed runs Talos v1.11.0: the configs we generate for that release (every variant above but the
// v1.12 one) go through talosctl v1.11.0's own validation as well, which knows only that release's
// documents.
describe("talosctl v1.11.0 (the seed's release) validate --mode cloud", () => {
  // RegistryMirrorConfig, a document of the patches variant, is not registered in v1.11 (its talosctl
  // says so): there the same mirror is the v1alpha1 config's machine.registries.
  const v111Patch = (p: ConfigPatch): ConfigPatch =>
    typeof p === "string" && p.includes("kind: RegistryMirrorConfig")
      ? "machine:\n  registries:\n    mirrors:\n      ghcr.io:\n        endpoints:\n          - https://ghcr.mirror.example\n"
      : p;
  const V111: [string, TalosClusterInput][] = VARIANTS.filter(([, input]) =>
    input.talosVersion.startsWith("v1.11."),
  ).map(([name, input]) => [
    name,
    input.configPatches ? { ...input, configPatches: input.configPatches.map(v111Patch) } : input,
  ]);

  it("the seed's variants are on v1.11 (so this checks something)", async () => {
    expect(V111.length).toBeGreaterThanOrEqual(6);
    const r = await talosctl(["version", "--client", "--short"], { seed: true });
    expect(r.stdout).toMatch(/Talos v1\.11\.0/);
  });

  it.each(V111)("accepts every node config of %s", async (_name, input) => {
    for (const config of generateClusterConfigs(input, secrets)) {
      const file = join(dir, `v111-${config.node}.yaml`);
      await writeFile(file, config.yaml);
      const r = await talosctl(["validate", "--mode", "cloud", "--strict", "--config", file], { seed: true });
      expect(`${r.stdout}${r.stderr}`).toContain("is valid for cloud mode");
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it("refuses a document Talos v1.11 does not know (HostnameConfig, from v1.12): it is v1.11's own check", async () => {
    const [config] = generateClusterConfigs(
      {
        ...homelabInput,
        configPatches: ["apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: talos-trinity\n"],
      },
      secrets,
    );
    const file = join(dir, "v111-hostname-config.yaml");
    await writeFile(file, config?.yaml ?? "");
    const r = await talosctl(["validate", "--mode", "cloud", "--config", file], { seed: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/"HostnameConfig" "v1alpha1": not registered/);
  });
});

// talosctl v1.14 cannot be built here (versions.env); Talos v1.14.1's own validation code from
// pkg/machinery checks the v1.14 contract: KubeAPIServerConfig, KubeAuthenticationConfig (OIDC), ...
describe("Talos v1.14.1 machinery validation (v1.14 multi-document contract)", () => {
  const V114: [string, TalosClusterInput][] = VARIANTS.map(([name, input]) => [
    name,
    { ...input, talosVersion: "v1.14.1" },
  ]);

  it.each(V114)("accepts every node config of %s", async (_name, input) => {
    const files: string[] = [];
    for (const config of generateClusterConfigs(input, secrets)) {
      const file = join(dir, `v114-${config.node}.yaml`);
      await writeFile(file, config.yaml);
      files.push(file);
    }
    const r = await validateConfigs(files);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(files.length);
  });

  it("rejects oidc-* flags in KubeAPIServerConfig, as Talos v1.14 does", async () => {
    const [config] = generateClusterConfigs(
      {
        ...homelabInput,
        talosVersion: "v1.14.1",
        configPatches: [
          "apiVersion: v1alpha1\nkind: KubeAPIServerConfig\nextraArgs:\n  oidc-issuer-url: https://x.example\n",
        ],
      },
      secrets,
    );
    const file = join(dir, "v114-oidc-args.yaml");
    await writeFile(file, config?.yaml ?? "");
    const r = await validateConfigs([file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/oidc-/);
  });
});
