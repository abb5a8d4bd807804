import { X509Certificate } from "node:crypto";
import { readFileSync as read, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  bundleFromSecretData,
  bundleFromYaml,
  bundleToSecretData,
  bundleToYaml,
  ensureSecretsBundle,
  SecretsBundleError,
  unb64,
  validateSecretsBundle,
} from "./secrets.ts";

const fixture = bundleFromYaml(readFileSync(new URL("./testdata/secrets.yaml", import.meta.url), "utf8"));

describe("ensureSecretsBundle", () => {
  const fresh = ensureSecretsBundle({}, new Date("2026-01-01T00:00:00Z"));

  it("generates Talos' algorithms and subjects for every CA", () => {
    const cert = (b64pem: string) => new X509Certificate(unb64(b64pem));
    expect(cert(fresh.certs.os.crt).publicKey.asymmetricKeyType).toBe("ed25519");
    expect(cert(fresh.certs.os.crt).subject).toBe("O=talos");
    expect(cert(fresh.certs.k8s.crt).subject).toBe("O=kubernetes");
    expect(cert(fresh.certs.etcd.crt).subject).toBe("O=etcd");
    expect(cert(fresh.certs.k8saggregator.crt).subject).toBe("CN=front-proxy");
    for (const ca of [fresh.certs.k8s, fresh.certs.etcd, fresh.certs.k8saggregator]) {
      expect(cert(ca.crt).publicKey.asymmetricKeyType).toBe("ec");
      expect(cert(ca.crt).ca).toBe(true);
    }
    expect(new Date(cert(fresh.certs.os.crt).validTo).toISOString()).toBe("2035-12-30T00:00:00.000Z");
    expect(unb64(fresh.certs.os.key)).toContain("BEGIN ED25519 PRIVATE KEY");
    expect(unb64(fresh.certs.k8sserviceaccount.key)).toContain("BEGIN EC PRIVATE KEY");
  });

  it("generates tokens and ids in Talos' formats", () => {
    expect(fresh.secrets.bootstraptoken).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(fresh.trustdinfo.token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(Buffer.from(fresh.cluster.id, "base64url")).toHaveLength(32);
    expect(fresh.cluster.id).toHaveLength(44);
    expect(Buffer.from(fresh.secrets.secretboxencryptionsecret, "base64")).toHaveLength(32);
    expect(() => validateSecretsBundle(fresh)).not.toThrow();
  });

  it("regenerates nothing that exists", () => {
    expect(ensureSecretsBundle(fixture)).toEqual(fixture);
    expect(ensureSecretsBundle(fresh)).toEqual(fresh);
  });

  it("fills only the missing parts", () => {
    const partial = structuredClone(fixture);
    delete partial.certs?.etcd;
    delete partial.secrets?.bootstraptoken;
    const completed = ensureSecretsBundle(partial);
    expect(completed.certs.os).toEqual(fixture.certs?.os);
    expect(completed.cluster).toEqual(fixture.cluster);
    expect(completed.certs.etcd.crt).not.toEqual(fixture.certs?.etcd?.crt);
    expect(completed.secrets.bootstraptoken).not.toEqual(fixture.secrets?.bootstraptoken);
  });

  it("refuses to replace half a CA", () => {
    const partial = structuredClone(fixture);
    if (partial.certs?.k8s) delete partial.certs.k8s.key;
    expect(() => ensureSecretsBundle(partial)).toThrow(SecretsBundleError);
  });

  it("detects a CA whose key belongs to another CA", () => {
    const broken = ensureSecretsBundle(fixture);
    broken.certs.k8s.key = broken.certs.etcd.key;
    expect(() => validateSecretsBundle(broken)).toThrow(/k8s/);
  });
});

describe("bundle serialisation", () => {
  const bundle = ensureSecretsBundle(fixture);

  it("round-trips through Secret data with valid Secret key names", () => {
    const data = bundleToSecretData(bundle);
    for (const key of Object.keys(data)) expect(key).toMatch(/^[-._a-zA-Z0-9]+$/);
    expect(Object.keys(data)).toHaveLength(14);
    expect(ensureSecretsBundle(bundleFromSecretData(data))).toEqual(bundle);
  });

  it("round-trips through talosctl's secrets.yaml format", () => {
    expect(bundleFromYaml(bundleToYaml(bundle))).toEqual(bundle);
    expect(read(new URL("./testdata/secrets.yaml", import.meta.url), "utf8")).toBe(bundleToYaml(bundle));
  });
});
