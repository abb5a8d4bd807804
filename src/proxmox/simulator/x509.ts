// A throwaway CA and serving certificate for the simulator, built with node:crypto alone: Node can
// generate and sign with keys but has no certificate builder, so the DER is assembled here (RFC 5280).
// Keeping it in-process means the simulator starts in milliseconds and needs no openssl binary.
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import { isIPv4 } from "node:net";

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bitString = (b: Buffer, unusedBits = 0) => tlv(0x03, Buffer.from([unusedBits]), b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const explicit = (n: number, c: Buffer) => tlv(0xa0 + n, c);

function integer(b: Buffer): Buffer {
  // DER integers are signed: a leading 1 bit needs a zero byte in front to stay positive.
  return tlv(0x02, (b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, "0");
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, "ascii"));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer) =>
  critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));

function keyId(publicKey: KeyObject): Buffer {
  return createHash("sha1")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

function sanEntry(host: string): Buffer {
  if (isIPv4(host)) return tlv(0x87, Buffer.from(host.split(".").map(Number)));
  if (host === "::1") return tlv(0x87, Buffer.concat([Buffer.alloc(15), Buffer.from([1])]));
  return tlv(0x82, Buffer.from(host, "ascii"));
}

interface CertSpec {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  issuerKeyId: Buffer;
  isCa: boolean;
  altNames: string[];
  days: number;
}

function certificate(spec: CertSpec): string {
  const now = Date.now();
  const extensions = [
    extension("2.5.29.19", true, spec.isCa ? seq(bool(true)) : seq()),
    // keyUsage: CA = digitalSignature|keyCertSign|cRLSign, leaf = digitalSignature.
    extension(
      "2.5.29.15",
      true,
      spec.isCa ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7),
    ),
    extension("2.5.29.14", false, octets(keyId(spec.publicKey))),
    extension("2.5.29.35", false, seq(tlv(0x80, spec.issuerKeyId))),
  ];
  if (!spec.isCa) {
    extensions.push(extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))));
    extensions.push(extension("2.5.29.17", false, seq(...spec.altNames.map(sanEntry))));
  }
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(spec.issuer),
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + spec.days * 86_400_000))),
    name(spec.subject),
    spec.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign("sha256", tbs, { key: spec.signingKey, dsaEncoding: "der" });
  const der = seq(tbs, ECDSA_SHA256, bitString(signature));
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
}

export interface ServingPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the serving certificate, "AB:CD:..." as Proxmox shows it. */
  fingerprint: string;
}

/** A fresh CA (ECDSA P-256) and a serving certificate for the given host names and IPs. */
export function createServingPki(altNames: string[], commonName = "Proxmox VE simulator"): ServingPki {
  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const caName = `${commonName} CA ${randomBytes(4).toString("hex")}`;
  const caPem = certificate({
    subject: caName,
    issuer: caName,
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    issuerKeyId: keyId(ca.publicKey),
    isCa: true,
    altNames: [],
    days: 30,
  });
  const certPem = certificate({
    subject: altNames[0] ?? "localhost",
    issuer: caName,
    publicKey: leaf.publicKey,
    signingKey: ca.privateKey,
    issuerKeyId: keyId(ca.publicKey),
    isCa: false,
    altNames,
    days: 30,
  });
  return {
    caPem,
    certPem,
    keyPem: leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    fingerprint: new X509Certificate(certPem).fingerprint256,
  };
}
