import { once } from "node:events";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { describe, expect, it } from "vitest";
import {
  createCA,
  createCsr,
  generateKey,
  issueCert,
  type KeyAlgorithm,
  loadCA,
  parsePrivateKeyPem,
} from "./certificate.ts";

const ALGORITHMS: KeyAlgorithm[] = ["ed25519", "ecdsa-p256", "rsa-2048"];

describe("createCA", () => {
  it.each(ALGORITHMS)("makes a self-signed %s CA that Node parses and verifies", (key) => {
    const ca = createCA({ subject: { organizations: ["talos"] }, key, validityDays: 3650 });
    expect(ca.cert.ca).toBe(true);
    expect(ca.cert.subject).toBe("O=talos");
    expect(ca.cert.issuer).toBe(ca.cert.subject);
    expect(ca.cert.verify(ca.cert.publicKey)).toBe(true);
    expect(ca.cert.checkPrivateKey(ca.privateKey)).toBe(true);
    expect(ca.cert.publicKey.asymmetricKeyType).toBe(key === "ecdsa-p256" ? "ec" : key.replace("-2048", ""));
  });

  it("honours explicit validity", () => {
    const notBefore = new Date("2026-01-01T00:00:00Z");
    const notAfter = new Date("2060-01-01T00:00:00Z");
    const ca = createCA({ subject: { commonName: "x" }, key: "ecdsa-p256", notBefore, notAfter });
    expect(new Date(ca.cert.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(ca.cert.validTo).toISOString()).toBe(notAfter.toISOString());
  });

  it("rejects an inverted validity window", () => {
    const now = new Date();
    expect(() => createCA({ subject: {}, notBefore: now, notAfter: new Date(now.getTime() - 1) })).toThrow(
      /notAfter/,
    );
  });
});

describe("issueCert", () => {
  it.each(ALGORITHMS.flatMap((caKey) => ALGORITHMS.map((leafKey) => [caKey, leafKey] as const)))(
    "a %s CA signs a %s leaf with SANs, organizations and usages",
    (caKey, leafKey) => {
      const ca = createCA({ subject: { commonName: "ca" }, key: caKey });
      const leaf = issueCert(ca, {
        subject: { commonName: "node-1", organizations: ["os:admin", "system:masters"] },
        key: leafKey,
        dnsNames: ["node-1.example", "localhost"],
        ipAddresses: ["10.0.3.16", "::1", "fd00::1:2"],
        keyUsage: ["digitalSignature", "keyEncipherment"],
        extKeyUsage: ["serverAuth", "clientAuth"],
      });
      expect(leaf.cert.ca).toBe(false);
      expect(leaf.cert.verify(ca.cert.publicKey)).toBe(true);
      expect(leaf.cert.checkIssued(ca.cert)).toBe(true);
      expect(leaf.cert.subject.split("\n").sort()).toEqual(["CN=node-1", "O=os:admin", "O=system:masters"]);
      expect(leaf.cert.subjectAltName).toBe(
        "DNS:node-1.example, DNS:localhost, IP Address:10.0.3.16, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:1:2",
      );
      expect(leaf.cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
      expect(leaf.cert.checkHost("node-1.example")).toBe("node-1.example");
      expect(leaf.cert.checkIP("10.0.3.16")).toBe("10.0.3.16");
    },
  );

  it("chains onto a CA loaded from PEM, including Talos' ED25519 PRIVATE KEY label", () => {
    const original = createCA({ subject: { organizations: ["talos"] }, key: "ed25519" });
    const talosStyleKey = original.keyPem.replace(/PRIVATE KEY/g, "ED25519 PRIVATE KEY");
    const loaded = loadCA(original.certPem, talosStyleKey);
    const leaf = issueCert(loaded, { subject: { organizations: ["os:reader"] }, key: "ed25519" });
    expect(leaf.cert.checkIssued(original.cert)).toBe(true);
    expect(parsePrivateKeyPem(talosStyleKey).asymmetricKeyType).toBe("ed25519");
  });

  it("refuses a CA whose key does not match", () => {
    const a = createCA({ subject: { commonName: "a" } });
    const b = createCA({ subject: { commonName: "b" } });
    expect(() => loadCA(a.certPem, b.keyPem)).toThrow(/does not match/);
  });
});

describe("Node TLS with Ed25519 certificates", () => {
  async function handshake(serverKey: KeyAlgorithm, clientKey: KeyAlgorithm) {
    const ca = createCA({ subject: { organizations: ["talos"] }, key: "ed25519" });
    const server = issueCert(ca, {
      subject: { commonName: "server" },
      key: serverKey,
      ipAddresses: ["127.0.0.1"],
      extKeyUsage: ["serverAuth"],
    });
    const client = issueCert(ca, {
      subject: { organizations: ["os:admin"] },
      key: clientKey,
      extKeyUsage: ["clientAuth"],
    });
    const srv = tls.createServer({
      key: server.keyPem,
      cert: server.certPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    });
    const seen = new Promise<string[]>((resolve) => {
      srv.on("secureConnection", (socket) => {
        const org = socket.getPeerCertificate().subject?.O;
        resolve(Array.isArray(org) ? org : [org ?? ""]);
        socket.end("ok");
      });
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const { port } = srv.address() as AddressInfo;
    try {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        key: client.keyPem,
        cert: client.certPem,
        ca: ca.certPem,
      });
      await once(socket, "secureConnect");
      expect(socket.authorized).toBe(true);
      expect(socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType).toBe(
        serverKey === "ed25519" ? "ed25519" : "ec",
      );
      const [data] = await once(socket, "data");
      expect(String(data)).toBe("ok");
      socket.destroy();
      expect(await seen).toEqual(["os:admin"]);
    } finally {
      srv.close();
    }
  }

  it("an Ed25519 client certificate authenticates to a server with an Ed25519 certificate", () =>
    handshake("ed25519", "ed25519"));
  it("an Ed25519 client certificate authenticates to a server with an ECDSA certificate", () =>
    handshake("ecdsa-p256", "ed25519"));

  it("a server rejects a client certificate from another CA", async () => {
    const ca = createCA({ subject: { organizations: ["talos"] }, key: "ed25519" });
    const other = createCA({ subject: { organizations: ["talos"] }, key: "ed25519" });
    const server = issueCert(ca, { subject: {}, key: "ed25519", ipAddresses: ["127.0.0.1"] });
    const client = issueCert(other, { subject: { organizations: ["os:admin"] }, key: "ed25519" });
    const srv = tls.createServer({
      key: server.keyPem,
      cert: server.certPem,
      ca: ca.certPem,
      requestCert: true,
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const { port } = srv.address() as AddressInfo;
    try {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        key: client.keyPem,
        cert: client.certPem,
        ca: ca.certPem,
      });
      const [err] = (await Promise.race([
        once(socket, "error"),
        once(socket, "close").then(() => [null]),
      ])) as [Error | null];
      expect(err?.message ?? "closed").toMatch(/certificate|alert|closed|ECONNRESET/i);
      socket.destroy();
    } finally {
      srv.close();
    }
  });
});

describe("createCsr", () => {
  it("makes a PKCS#10 request openssl verifies, with the subject's CN and every O", async () => {
    const { execFileSync } = await import("node:child_process");
    const key = generateKey("ecdsa-p256");
    const pem = createCsr({ commonName: "alice", organizations: ["peers-alice", "devs"] }, key);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const out = execFileSync("openssl", ["req", "-verify", "-noout", "-subject"], {
      input: pem,
      encoding: "utf8",
    });
    expect(out).toMatch(/O\s*=\s*peers-alice, O\s*=\s*devs, CN\s*=\s*alice/);
  });
});
