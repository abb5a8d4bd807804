import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { exampleClusterInput as homelabInput } from "./example-input.ts";
import type { TalosClusterInput } from "./input.ts";
import {
  generateClusterConfigs,
  generateNodeConfig,
  installerImage,
  MachineConfigError,
} from "./machine-config.ts";
import { bundleFromYaml, ensureSecretsBundle } from "./secrets.ts";

const secrets = ensureSecretsBundle(
  bundleFromYaml(readFileSync(new URL("./testdata/secrets.yaml", import.meta.url), "utf8")),
);
// biome-ignore lint/suspicious/noExplicitAny: tests walk arbitrary config YAML
type Doc = Record<string, any>;
const v1alpha1 = (input: TalosClusterInput, node = "talos-trinity"): Doc =>
  generateNodeConfig(input, secrets, node).documents[0] as Doc;

describe("generateNodeConfig", () => {
  it("is stable: same inputs give byte-identical YAML (golden file)", async () => {
    const first = generateNodeConfig(homelabInput, secrets, "talos-neo").yaml;
    expect(
      generateNodeConfig(structuredClone(homelabInput), ensureSecretsBundle(secrets), "talos-neo").yaml,
    ).toBe(first);
    await expect(first).toMatchFileSnapshot("./testdata/talos-neo.golden.yaml");
  });

  it("writes static addressing, hostname and nameservers into the node's config, and no VIP unless asked", () => {
    const doc = v1alpha1(homelabInput, "talos-neo");
    expect(doc.machine.network).toEqual({
      hostname: "talos-neo",
      interfaces: [
        {
          interface: "eth0",
          addresses: ["10.0.3.17/24"],
          routes: [{ network: "0.0.0.0/0", gateway: "10.0.3.1" }],
          dhcp: false,
        },
      ],
      nameservers: ["10.0.3.1"],
    });
    expect(doc.machine.certSANs).toEqual(["10.0.3.16", "10.0.3.17"]);
  });

  it("puts the control-plane VIP on control planes only, and in the certificate SANs", () => {
    const input: TalosClusterInput = {
      ...homelabInput,
      endpoint: "https://10.0.3.20:6443",
      network: { ...homelabInput.network, controlPlaneVip: "10.0.3.20" },
      nodes: [...homelabInput.nodes, { name: "w1", ip: "10.0.3.21", role: "worker" }],
    };
    const cp = v1alpha1(input, "talos-neo");
    expect(cp.machine.network.interfaces[0].vip).toEqual({ ip: "10.0.3.20" });
    expect(cp.machine.certSANs).toEqual(["10.0.3.20", "10.0.3.17"]);
    expect(cp.cluster.apiServer.certSANs).toEqual(["10.0.3.20", "10.0.3.17"]);
    expect(v1alpha1(input, "w1").machine.network.interfaces[0].vip).toBeUndefined();
  });

  it("selects the first physical link when no interface name is given", () => {
    const doc = v1alpha1({ ...homelabInput, network: { ...homelabInput.network, interface: undefined } });
    expect(doc.machine.network.interfaces[0].deviceSelector).toEqual({ physical: true });
  });

  it("installs the Image Factory nocloud installer for the schematic and version", () => {
    expect(v1alpha1(homelabInput).machine.install).toEqual({
      disk: "/dev/vda",
      image: `factory.talos.dev/nocloud-installer/${homelabInput.schematic}:v1.11.0`,
      wipe: false,
    });
    expect(installerImage({ ...homelabInput, imageFactory: "https://factory.example:8443/" })).toBe(
      `factory.example:8443/nocloud-installer/${homelabInput.schematic}:v1.11.0`,
    );
  });

  it.each([
    [true, { name: "none" }, { disabled: true, image: "registry.k8s.io/kube-proxy:v1.34.1" }],
    [false, undefined, { image: "registry.k8s.io/kube-proxy:v1.34.1" }],
  ])("ciliumCNI=%s sets CNI %j and proxy %j", (ciliumCNI, cni, proxy) => {
    const doc = v1alpha1({ ...homelabInput, ciliumCNI });
    expect(doc.cluster.network.cni).toEqual(cni);
    expect(doc.cluster.proxy).toEqual(proxy);
  });

  it.each([true, false])("carries allowSchedulingOnControlPlanes=%s", (allow) => {
    expect(
      v1alpha1({ ...homelabInput, allowSchedulingOnControlPlanes: allow }).cluster
        .allowSchedulingOnControlPlanes,
    ).toBe(allow);
  });

  it("puts the cluster's secrets where Talos reads them", () => {
    const doc = v1alpha1(homelabInput);
    expect(doc.machine.ca).toEqual(secrets.certs.os);
    expect(doc.machine.token).toBe(secrets.trustdinfo.token);
    expect(doc.cluster.token).toBe(secrets.secrets.bootstraptoken);
    expect(doc.cluster.etcd.ca).toEqual(secrets.certs.etcd);
    expect(doc.cluster.aggregatorCA).toEqual(secrets.certs.k8saggregator);
    expect(doc.cluster.serviceAccount).toEqual(secrets.certs.k8sserviceaccount);
    expect(doc.cluster.id).toBe(secrets.cluster.id);
  });

  it("gives a worker no CA private keys", () => {
    const input = {
      ...homelabInput,
      nodes: [...homelabInput.nodes, { name: "w1", ip: "10.0.3.20", role: "worker" as const }],
    };
    const doc = v1alpha1(input, "w1");
    expect(doc.machine.type).toBe("worker");
    expect(doc.machine.ca.key).toBe("");
    expect(doc.cluster.ca.key).toBe("");
    expect(doc.cluster.etcd).toBeUndefined();
    expect(doc.machine.network.interfaces[0].vip).toBeUndefined();
  });

  describe("OIDC", () => {
    it("uses apiServer extraArgs before Talos v1.14 (no authentication document exists there)", () => {
      const out = generateNodeConfig(homelabInput, secrets, "talos-trinity");
      expect(out.documents).toHaveLength(1);
      expect((out.documents[0] as Doc).cluster.apiServer.extraArgs).toEqual({
        "oidc-issuer-url": "https://auth.shdr.ch/realms/aether",
        "oidc-client-id": "kubernetes",
        "oidc-username-claim": "preferred_username",
        "oidc-groups-claim": "groups",
      });
    });

    it("describes the API server with v1.14 documents, OIDC in KubeAuthenticationConfig", () => {
      const out = generateNodeConfig({ ...homelabInput, talosVersion: "v1.14.1" }, secrets, "talos-trinity");
      expect((out.documents[0] as Doc).cluster.apiServer).toBeUndefined();
      const byKind = (kind: string) => out.documents.filter((d) => d.kind === kind);
      expect(out.documents.slice(1).map((d) => d.kind)).toEqual([
        "KubeAPIServerConfig",
        "KubeAdmissionControlConfig",
        "KubeAuditPolicyConfig",
        "KubeAuthenticationConfig",
        "KubeAuthorizerConfig",
        "KubeAuthorizerConfig",
      ]);
      expect(byKind("KubeAPIServerConfig")[0]).toEqual({
        apiVersion: "v1alpha1",
        kind: "KubeAPIServerConfig",
        image: "registry.k8s.io/kube-apiserver:v1.34.1",
        certExtraSANs: ["10.0.3.16"],
      });
      expect(byKind("KubeAuthorizerConfig").map((d) => d.type)).toEqual(["Node", "RBAC"]);
      expect(byKind("KubeAuthenticationConfig")[0]).toEqual({
        apiVersion: "v1alpha1",
        kind: "KubeAuthenticationConfig",
        configuration: {
          apiVersion: "apiserver.config.k8s.io/v1beta1",
          kind: "AuthenticationConfiguration",
          anonymous: {
            enabled: true,
            conditions: [{ path: "/livez" }, { path: "/readyz" }, { path: "/healthz" }],
          },
          jwt: [
            {
              issuer: { url: "https://auth.shdr.ch/realms/aether", audiences: ["kubernetes"] },
              claimMappings: {
                username: { claim: "preferred_username", prefix: "https://auth.shdr.ch/realms/aether#" },
                groups: { claim: "groups", prefix: "" },
              },
            },
          ],
        },
      });
      const yamlDocs = parseAllDocuments(out.yaml).map((d) => d.toJS());
      expect(yamlDocs).toEqual(out.documents);
    });

    it("gives a v1.14 worker no API server documents", () => {
      const input = {
        ...homelabInput,
        talosVersion: "v1.14.1",
        nodes: [...homelabInput.nodes, { name: "w1", ip: "10.0.3.20", role: "worker" as const }],
      };
      expect(generateNodeConfig(input, secrets, "w1").documents).toHaveLength(1);
    });

    // kube-apiserver: an unset --oidc-username-prefix prefixes claims other than email with "<issuer>#";
    // the structured config has no default, so it must say the same thing explicitly.
    it.each([
      [
        "unset, a non-email claim",
        undefined,
        "preferred_username",
        undefined,
        "https://auth.shdr.ch/realms/aether#",
      ],
      ["unset, the email claim", undefined, "email", undefined, ""],
      ["empty: no prefix", "", "preferred_username", "-", ""],
      ["explicit", "oidc:", "preferred_username", "oidc:", "oidc:"],
    ])(
      "usernamePrefix %s means the same user names before and after v1.14",
      (_, prefix, claim, flag, structured) => {
        const oidc = { ...homelabInput.oidc!, usernameClaim: claim, usernamePrefix: prefix };
        const legacy = v1alpha1({ ...homelabInput, oidc }).cluster.apiServer.extraArgs;
        expect(legacy["oidc-username-prefix"]).toBe(flag);
        const docs = generateNodeConfig(
          { ...homelabInput, oidc, talosVersion: "v1.14.1" },
          secrets,
          "talos-neo",
        ).documents;
        const authn = docs.find((d) => d.kind === "KubeAuthenticationConfig") as Doc;
        expect(authn.configuration.jwt[0].claimMappings.username).toEqual({ claim, prefix: structured });
      },
    );

    it("emits no OIDC without settings: no extraArgs, no JWT issuers", () => {
      const legacy = generateNodeConfig({ ...homelabInput, oidc: undefined }, secrets, "talos-neo");
      expect((legacy.documents[0] as Doc).cluster.apiServer.extraArgs).toBeUndefined();
      const structured = generateNodeConfig(
        { ...homelabInput, oidc: undefined, talosVersion: "v1.14.1" },
        secrets,
        "talos-neo",
      );
      const authn = structured.documents.find((d) => d.kind === "KubeAuthenticationConfig") as Doc;
      expect(authn.configuration.jwt).toEqual([]);
    });
  });

  it("applies user patches after generation, strategic then JSON 6902, in order", () => {
    const doc = v1alpha1({
      ...homelabInput,
      configPatches: [
        "machine:\n  certSANs: [extra.example]\n  sysctls:\n    vm.max_map_count: '262144'\n",
        [{ op: "replace", path: "/cluster/clusterName", value: "renamed" }],
      ],
    });
    expect(doc.machine.certSANs).toEqual(["10.0.3.16", "extra.example"]);
    expect(doc.machine.sysctls).toEqual({ "vm.max_map_count": "262144" });
    expect(doc.cluster.clusterName).toBe("renamed");
  });

  it.each([
    ["an unknown node", (i: TalosClusterInput) => i, "nope", /no node named nope/],
    ["a bad schematic", (i: TalosClusterInput) => ({ ...i, schematic: "x" }), "talos-neo", /schematic/],
    [
      "a bad version",
      (i: TalosClusterInput) => ({ ...i, talosVersion: "1.13" }),
      "talos-neo",
      /invalid version/,
    ],
    [
      "duplicate names",
      (i: TalosClusterInput) => ({ ...i, nodes: [...i.nodes, i.nodes[0]!] }),
      "talos-neo",
      /duplicate/,
    ],
    [
      "no control plane",
      (i: TalosClusterInput) => ({ ...i, nodes: [{ name: "w", ip: "10.0.3.9", role: "worker" as const }] }),
      "w",
      /control-plane/,
    ],
  ])("rejects %s", (_name, change, node, message) => {
    expect(() => generateNodeConfig(change(homelabInput), secrets, node)).toThrow(MachineConfigError);
    expect(() => generateNodeConfig(change(homelabInput), secrets, node)).toThrow(message);
  });

  it("generates one config per node, each parseable YAML", () => {
    const all = generateClusterConfigs(homelabInput, secrets);
    expect(all.map((c) => c.node)).toEqual(["talos-trinity", "talos-neo", "talos-niobe"]);
    for (const c of all) expect(parse(c.yaml).machine.network.hostname).toBe(c.node);
  });
});
