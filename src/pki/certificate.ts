// Creates X.509 v3 certificates (RFC 5280) with node:crypto keys and our DER encoder. Covers what a
// cluster PKI needs: self-signed CAs, leaf certificates with SANs, key usages and organizations, and
// Ed25519, ECDSA P-256 and RSA keys (Talos' OS CA is Ed25519; Kubernetes, etcd and aggregator CAs are P-256).

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import { isIP } from "node:net";
import * as der from "./der.ts";

export type KeyAlgorithm = "ed25519" | "ecdsa-p256" | "rsa-2048";

export type KeyUsage =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "crlSign";

export type ExtKeyUsage = "serverAuth" | "clientAuth";

export interface CertificateSubject {
  commonName?: string;
  /** Each becomes one O= attribute; Kubernetes reads them as groups, Talos as roles. */
  organizations?: readonly string[];
}

export interface CertificateRequest {
  subject: CertificateSubject;
  /** Algorithm for a fresh key, or an existing private key to certify. Default ecdsa-p256. */
  key?: KeyAlgorithm | KeyObject;
  notBefore?: Date;
  /** Default: notBefore + validityDays (365 for leaves, 3650 for CAs). */
  notAfter?: Date;
  validityDays?: number;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  keyUsage?: readonly KeyUsage[];
  extKeyUsage?: readonly ExtKeyUsage[];
  serialNumber?: bigint;
}

export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
  privateKey: KeyObject;
}

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ed25519: "1.3.101.112",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  sha256WithRsa: "1.2.840.113549.1.1.11",
} as const;

const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  crlSign: 6,
};

export function generateKey(algorithm: KeyAlgorithm): KeyObject {
  switch (algorithm) {
    case "ed25519":
      return generateKeyPairSync("ed25519").privateKey;
    case "ecdsa-p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    case "rsa-2048":
      return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  }
}

/** PEM the way Go's crypto/x509 users write it: SEC1 for EC, PKCS#1 for RSA, PKCS#8 for Ed25519. */
export function privateKeyToPem(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case "ec":
      return key.export({ type: "sec1", format: "pem" }).toString();
    case "rsa":
      return key.export({ type: "pkcs1", format: "pem" }).toString();
    case "ed25519":
      return key.export({ type: "pkcs8", format: "pem" }).toString();
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

/**
 * Parses a private key PEM, including Talos' "ED25519 PRIVATE KEY" label (PKCS#8 inside, a label
 * OpenSSL does not know: siderolabs/crypto x509 PEMTypeEd25519Private).
 */
export function parsePrivateKeyPem(pem: string): KeyObject {
  const normalised = pem.replace(/-----(BEGIN|END) ED25519 PRIVATE KEY-----/g, "-----$1 PRIVATE KEY-----");
  return createPrivateKey(normalised);
}

function signatureAlgorithm(key: KeyObject): { algorithmIdentifier: Buffer; digest: string | null } {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      // RFC 8410 §3: parameters absent.
      return { algorithmIdentifier: der.sequence(der.oid(OID.ed25519)), digest: null };
    case "ec":
      // RFC 5758 §3.2: parameters absent.
      return { algorithmIdentifier: der.sequence(der.oid(OID.ecdsaWithSha256)), digest: "sha256" };
    case "rsa":
      // RFC 4055 §5: parameters NULL.
      return {
        algorithmIdentifier: der.sequence(der.oid(OID.sha256WithRsa), der.nullValue()),
        digest: "sha256",
      };
    default:
      throw new Error(`unsupported signing key type ${key.asymmetricKeyType}`);
  }
}

function encodeName(subject: CertificateSubject): Buffer {
  const rdns: Buffer[] = [];
  for (const o of subject.organizations ?? []) {
    rdns.push(der.set(der.sequence(der.oid(OID.organization), der.utf8String(o))));
  }
  if (subject.commonName !== undefined) {
    rdns.push(der.set(der.sequence(der.oid(OID.commonName), der.utf8String(subject.commonName))));
  }
  return der.sequence(...rdns);
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split(".").map((p) => Number(p)));
  if (family === 6) {
    const [head = "", tail = ""] = ip.includes("::") ? ip.split("::") : [ip, ""];
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    const groups = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => {
      out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
    });
    return out;
  }
  throw new Error(`invalid IP address SAN: ${ip}`);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der.sequence(der.oid(id), der.boolean(true), der.octetString(value))
    : der.sequence(der.oid(id), der.octetString(value));
}

function keyUsageValue(usages: readonly KeyUsage[]): Buffer {
  let bits = 0;
  let highest = 0;
  for (const u of usages) {
    const bit = KEY_USAGE_BITS[u];
    bits |= 1 << (15 - bit);
    highest = Math.max(highest, bit);
  }
  // DER BIT STRING: trailing zero bits are dropped and counted as unused (X.690 §11.2.2).
  const byteCount = highest < 8 ? 1 : 2;
  const bytes = Buffer.from([(bits >> 8) & 0xff, bits & 0xff]).subarray(0, byteCount);
  const usedBits = highest + 1;
  return der.bitString(bytes, byteCount * 8 - usedBits);
}

function keyIdentifier(publicKeySpki: Buffer): Buffer {
  // RFC 5280 §4.2.1.2 suggests SHA-1 of the key bits but allows any unique value: the first 20 bytes
  // of SHA-256 over the whole SPKI, stable for a given key.
  return createHash("sha256").update(publicKeySpki).digest().subarray(0, 20);
}

/** The tbsCertificate fields of a DER certificate. */
function tbsFields(certDer: Buffer): { tag: number; content: Buffer; raw: Buffer }[] {
  const tbs = der.children(der.readTlv(certDer).content)[0];
  if (!tbs) throw new Error("malformed certificate");
  return der.children(tbs.content);
}

/** The CA's own subjectKeyIdentifier, so authorityKeyIdentifier matches CAs we did not create. */
function subjectKeyIdentifierOf(certDer: Buffer): Buffer | null {
  const extsField = tbsFields(certDer).find((f) => f.tag === 0xa3);
  if (!extsField) return null;
  const exts = der.children(der.readTlv(extsField.content).content);
  for (const ext of exts) {
    const parts = der.children(ext.content);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id && value && id.raw.equals(der.oid(OID.subjectKeyIdentifier))) {
      return der.readTlv(value.content).content;
    }
  }
  return null;
}

interface Issuer {
  name: Buffer;
  privateKey: KeyObject;
  keyId: Buffer;
}

function buildCertificate(req: CertificateRequest, isCA: boolean, issuer: Issuer | null): CertificateAndKey {
  const privateKey =
    typeof req.key === "object"
      ? req.key
      : generateKey((req.key as KeyAlgorithm | undefined) ?? "ecdsa-p256");
  const publicKeySpki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const subjectName = encodeName(req.subject);
  const ownKeyId = keyIdentifier(publicKeySpki);
  const signer: Issuer = issuer ?? { name: subjectName, privateKey, keyId: ownKeyId };

  const notBefore = req.notBefore ?? new Date(Date.now() - 60_000);
  const validityDays = req.validityDays ?? (isCA ? 3650 : 365);
  const notAfter = req.notAfter ?? new Date(notBefore.getTime() + validityDays * 86_400_000);
  if (notAfter <= notBefore) throw new Error("certificate notAfter must be after notBefore");

  // 16 random bytes with the top bit cleared: positive and unique (RFC 5280 §4.1.2.2, ≤ 20 octets).
  const serial = req.serialNumber ?? BigInt(`0x${randomBytes(16).toString("hex")}`) >> 1n;

  const extensions: Buffer[] = [];
  const usages =
    req.keyUsage ?? (isCA ? ["digitalSignature", "keyCertSign", "crlSign"] : ["digitalSignature"]);
  if (usages.length > 0) extensions.push(extension(OID.keyUsage, true, keyUsageValue(usages)));
  if (req.extKeyUsage && req.extKeyUsage.length > 0) {
    const ids = req.extKeyUsage.map((u) => der.oid(u === "serverAuth" ? OID.serverAuth : OID.clientAuth));
    extensions.push(extension(OID.extKeyUsage, false, der.sequence(...ids)));
  }
  extensions.push(
    extension(OID.basicConstraints, true, isCA ? der.sequence(der.boolean(true)) : der.sequence()),
  );
  extensions.push(extension(OID.subjectKeyIdentifier, false, der.octetString(ownKeyId)));
  if (issuer) {
    extensions.push(
      extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, issuer.keyId))),
    );
  }
  const sans = [
    ...(req.dnsNames ?? []).map((d) => der.implicitPrimitive(2, Buffer.from(d, "ascii"))),
    ...(req.ipAddresses ?? []).map((ip) => der.implicitPrimitive(7, ipBytes(ip))),
  ];
  if (sans.length > 0) extensions.push(extension(OID.subjectAltName, false, der.sequence(...sans)));

  const { algorithmIdentifier, digest } = signatureAlgorithm(signer.privateKey);
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serial),
    algorithmIdentifier,
    signer.name,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    subjectName,
    publicKeySpki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign(digest, tbs, signer.privateKey);
  const certDer = der.sequence(tbs, algorithmIdentifier, der.bitString(signature));
  const certPem = toPem("CERTIFICATE", certDer);
  return { certPem, keyPem: privateKeyToPem(privateKey), cert: new X509Certificate(certPem), privateKey };
}

export function toPem(label: string, body: Uint8Array): string {
  const b64 = Buffer.from(body).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A self-signed certificate authority (basicConstraints CA:TRUE, keyCertSign + crlSign). */
export function createCA(req: CertificateRequest): CertificateAndKey {
  return buildCertificate(req, true, null);
}

/** Loads an existing CA (certificate + key PEM) so it can issue certificates. */
export function loadCA(certPem: string, keyPem: string): CertificateAndKey {
  const cert = new X509Certificate(certPem);
  const privateKey = parsePrivateKeyPem(keyPem);
  if (!cert.checkPrivateKey(privateKey)) throw new Error("CA key does not match the CA certificate");
  return { certPem, keyPem, cert, privateKey };
}

/** A certificate signed by `ca`. Pass `isCA: true` in options for an intermediate CA. */
export function issueCert(
  ca: CertificateAndKey,
  req: CertificateRequest,
  options: { isCA?: boolean } = {},
): CertificateAndKey {
  const caDer = Buffer.from(ca.cert.raw);
  // The issuer Name is copied byte for byte from the CA's subject, as RFC 5280 §7.1 name chaining expects.
  // tbsCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ...
  const subject = tbsFields(caDer)[5];
  if (!subject) throw new Error("malformed CA certificate");
  const caSpki = createPublicKey(ca.privateKey).export({ type: "spki", format: "der" });
  const keyId = subjectKeyIdentifierOf(caDer) ?? keyIdentifier(caSpki);
  const issuer: Issuer = { name: subject.raw, privateKey: ca.privateKey, keyId };
  return buildCertificate(req, options.isCA ?? false, issuer);
}

/**
 * A PKCS#10 certificate signing request (RFC 2986) for `subject`, signed with `key`: what the
 * certificates.k8s.io API takes to issue a client certificate (CN = user, O = groups).
 */
export function createCsr(subject: CertificateSubject, key: KeyObject): string {
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  // CertificationRequestInfo: version 0, subject, subjectPKInfo, attributes [0] (an empty SET here).
  const info = der.sequence(der.integer(0), encodeName(subject), spki, der.explicit(0, Buffer.alloc(0)));
  const { algorithmIdentifier, digest } = signatureAlgorithm(key);
  const signature = sign(digest, info, key);
  return toPem("CERTIFICATE REQUEST", der.sequence(info, algorithmIdentifier, der.bitString(signature)));
}
