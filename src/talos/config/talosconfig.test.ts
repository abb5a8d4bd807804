import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePrivateKeyPem } from "../../pki/index.ts";
import { DEFAULT_TALOS_VERSION } from "./defaults.ts";
import { bundleFromYaml, ensureSecretsBundle } from "./secrets.ts";
import {
  generateAdminTalosconfig,
  talosconfigCredentials,
  talosconfigFromYaml,
  talosconfigToYaml,
} from "./talosconfig.ts";

const secrets = ensureSecretsBundle(
  bundleFromYaml(readFileSync(new URL("./testdata/secrets.yaml", import.meta.url), "utf8")),
);

describe("generateAdminTalosconfig", () => {
  const config = generateAdminTalosconfig(secrets, {
    contextName: "k8s",
    endpoints: ["10.0.3.16", "10.0.3.17"],
    nodes: ["10.0.3.16"],
    now: new Date("2026-06-01T00:00:00Z"),
  });
  const creds = talosconfigCredentials(config);
  const cert = new X509Certificate(creds.certPem);

  it("issues an Ed25519 os:admin client certificate signed by the OS CA", () => {
    expect(cert.subject).toBe("O=os:admin");
    expect(cert.publicKey.asymmetricKeyType).toBe("ed25519");
    expect(cert.checkIssued(new X509Certificate(creds.caPem))).toBe(true);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(cert.checkPrivateKey(parsePrivateKeyPem(creds.keyPem))).toBe(true);
    expect(new Date(cert.validTo).toISOString()).toBe("2027-06-01T00:00:00.000Z");
  });

  it("round-trips through YAML with the talosconfig fields", () => {
    const yaml = talosconfigToYaml(config);
    expect(yaml).toMatch(/^context: k8s\ncontexts:\n {2}k8s:\n {4}endpoints:/);
    expect(talosconfigFromYaml(yaml)).toEqual(config);
    expect(config.contexts.k8s?.nodes).toEqual(["10.0.3.16"]);
  });

  it("rejects a talosconfig without its current context", () => {
    expect(() => talosconfigFromYaml("context: x\ncontexts: {}\n")).toThrow(/context/);
  });
});

describe("pins", () => {
  it("the default Talos version equals the talosctl build pin", () => {
    const env = readFileSync(new URL("../../../e2e/talosctl/versions.env", import.meta.url), "utf8");
    expect(/^TALOS_VERSION=(\S+)$/m.exec(env)?.[1]).toBe(DEFAULT_TALOS_VERSION);
  });
});
