import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createServingPki } from "./x509.ts";

describe("createServingPki", () => {
  const pki = createServingPki(["localhost", "127.0.0.1", "::1", "pve.lab.example"]);
  const ca = new X509Certificate(pki.caPem);
  const cert = new X509Certificate(pki.certPem);

  it("issues a serving certificate the CA verifies", () => {
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
  });

  it("names every host and IP as subject alternative names", () => {
    expect(cert.subjectAltName?.split(", ").sort()).toEqual([
      "DNS:localhost",
      "DNS:pve.lab.example",
      "IP Address:0:0:0:0:0:0:0:1",
      "IP Address:127.0.0.1",
    ]);
    expect(cert.checkHost("pve.lab.example")).toBe("pve.lab.example");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
  });

  it("reports the certificate's SHA-256 fingerprint", () => {
    expect(pki.fingerprint).toBe(cert.fingerprint256);
    expect(pki.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("makes a different CA each time", () => {
    expect(createServingPki(["localhost"]).caPem).not.toBe(pki.caPem);
  });
});
