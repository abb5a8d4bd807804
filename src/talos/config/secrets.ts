// The cluster secrets bundle: every secret a Talos cluster's machine configs share. The shape and key
// names follow Talos' own secrets.yaml (pkg/machinery/config/generate/secrets: lowercased YAML keys,
// certificates and keys as base64 of PEM), so a bundle made by `talosctl gen secrets` can be imported and
// ours can be read by talosctl. Algorithms follow Talos too: Ed25519 OS CA (org "talos"), ECDSA P-256
// Kubernetes (org "kubernetes"), etcd (org "etcd") and aggregator (CN "front-proxy") CAs, ECDSA
// service-account key, CA validity 87600h.

import { randomBytes, randomInt } from "node:crypto";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { createCA, generateKey, loadCA, privateKeyToPem } from "../../pki/index.ts";

export interface PemPair {
  /** base64 of the PEM certificate */
  crt: string;
  /** base64 of the PEM private key */
  key: string;
}

export interface SecretsBundle {
  cluster: { id: string; secret: string };
  secrets: { bootstraptoken: string; secretboxencryptionsecret: string };
  trustdinfo: { token: string };
  certs: {
    etcd: PemPair;
    k8s: PemPair;
    k8saggregator: PemPair;
    k8sserviceaccount: { key: string };
    os: PemPair;
  };
}

/** Any part of a bundle, as found in an existing Secret: what is present is kept as is. */
export interface PartialSecretsBundle {
  cluster?: Partial<SecretsBundle["cluster"]>;
  secrets?: Partial<SecretsBundle["secrets"]>;
  trustdinfo?: Partial<SecretsBundle["trustdinfo"]>;
  certs?: Partial<{
    etcd: Partial<PemPair>;
    k8s: Partial<PemPair>;
    k8saggregator: Partial<PemPair>;
    k8sserviceaccount: { key?: string };
    os: Partial<PemPair>;
  }>;
}

export class SecretsBundleError extends Error {
  override name = "SecretsBundleError";
}

const CA_VALIDITY_DAYS = 3650; // Talos secrets.CAValidityTime = 87600h

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
export const unb64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");

/** Kubernetes bootstrap-token alphabet and shape: [a-z0-9]{6}.[a-z0-9]{16}. */
function token(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const pick = (n: number) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join("");
  return `${pick(6)}.${pick(16)}`;
}

function complete(
  pair: Partial<PemPair> | undefined,
  make: () => { certPem: string; keyPem: string },
): PemPair {
  if (pair?.crt && pair.key) return { crt: pair.crt, key: pair.key };
  if (pair?.crt || pair?.key) {
    // A certificate without its key (or the reverse) cannot be completed without replacing the other.
    throw new SecretsBundleError(
      "a CA in the existing secrets has only one of crt/key; refusing to replace it",
    );
  }
  const ca = make();
  return { crt: b64(ca.certPem), key: b64(ca.keyPem) };
}

/**
 * Returns a complete bundle: every value present in `existing` is kept byte for byte, only the missing
 * ones are generated. Calling it again on its own output returns an equal bundle.
 */
export function ensureSecretsBundle(
  existing: PartialSecretsBundle = {},
  now: Date = new Date(),
): SecretsBundle {
  const notBefore = now;
  const ca =
    (subject: { organizations?: string[]; commonName?: string }, key: "ed25519" | "ecdsa-p256") => () =>
      createCA({ subject, key, notBefore, validityDays: CA_VALIDITY_DAYS });
  const os = complete(existing.certs?.os, () => {
    const c = ca({ organizations: ["talos"] }, "ed25519")();
    // Talos labels Ed25519 keys "ED25519 PRIVATE KEY" (siderolabs/crypto PEMTypeEd25519Private).
    return { certPem: c.certPem, keyPem: c.keyPem.replace(/PRIVATE KEY-----/g, "ED25519 PRIVATE KEY-----") };
  });
  return {
    cluster: {
      id: existing.cluster?.id || randomBytes(32).toString("base64url").padEnd(44, "="),
      secret: existing.cluster?.secret || randomBytes(32).toString("base64"),
    },
    secrets: {
      bootstraptoken: existing.secrets?.bootstraptoken || token(),
      secretboxencryptionsecret:
        existing.secrets?.secretboxencryptionsecret || randomBytes(32).toString("base64"),
    },
    trustdinfo: { token: existing.trustdinfo?.token || token() },
    certs: {
      etcd: complete(existing.certs?.etcd, ca({ organizations: ["etcd"] }, "ecdsa-p256")),
      k8s: complete(existing.certs?.k8s, ca({ organizations: ["kubernetes"] }, "ecdsa-p256")),
      k8saggregator: complete(existing.certs?.k8saggregator, ca({ commonName: "front-proxy" }, "ecdsa-p256")),
      k8sserviceaccount: {
        key: existing.certs?.k8sserviceaccount?.key || b64(privateKeyToPem(generateKey("ecdsa-p256"))),
      },
      os,
    },
  };
}

/** Checks that every CA's key matches its certificate and the tokens have Kubernetes' shape. */
export function validateSecretsBundle(bundle: SecretsBundle): void {
  const tokenShape = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
  if (!tokenShape.test(bundle.secrets.bootstraptoken))
    throw new SecretsBundleError("bootstrap token is malformed");
  if (!tokenShape.test(bundle.trustdinfo.token)) throw new SecretsBundleError("trustd token is malformed");
  for (const name of ["etcd", "k8s", "k8saggregator", "os"] as const) {
    const pair = bundle.certs[name];
    try {
      loadCA(unb64(pair.crt), unb64(pair.key));
    } catch (err) {
      throw new SecretsBundleError(`CA ${name} is invalid: ${(err as Error).message}`);
    }
  }
}

// --- Kubernetes Secret data: one key per value, so a partly filled Secret is completed, not replaced. ---

const FLAT_KEYS = [
  ["cluster.id", ["cluster", "id"]],
  ["cluster.secret", ["cluster", "secret"]],
  ["secrets.bootstraptoken", ["secrets", "bootstraptoken"]],
  ["secrets.secretboxencryptionsecret", ["secrets", "secretboxencryptionsecret"]],
  ["trustdinfo.token", ["trustdinfo", "token"]],
  ["certs.etcd.crt", ["certs", "etcd", "crt"]],
  ["certs.etcd.key", ["certs", "etcd", "key"]],
  ["certs.k8s.crt", ["certs", "k8s", "crt"]],
  ["certs.k8s.key", ["certs", "k8s", "key"]],
  ["certs.k8saggregator.crt", ["certs", "k8saggregator", "crt"]],
  ["certs.k8saggregator.key", ["certs", "k8saggregator", "key"]],
  ["certs.k8sserviceaccount.key", ["certs", "k8sserviceaccount", "key"]],
  ["certs.os.crt", ["certs", "os", "crt"]],
  ["certs.os.key", ["certs", "os", "key"]],
] as const;

/** Secret `stringData`: flat keys such as `certs.os.crt` (valid Secret key names). */
export function bundleToSecretData(bundle: SecretsBundle): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, path] of FLAT_KEYS) {
    let v: unknown = bundle;
    for (const p of path) v = (v as Record<string, unknown>)[p];
    out[key] = String(v);
  }
  return out;
}

/** Reads Secret string data (already base64-decoded once by the caller, as `stringData` was written). */
export function bundleFromSecretData(data: Record<string, string | undefined>): PartialSecretsBundle {
  const out: Record<string, unknown> = {};
  for (const [key, path] of FLAT_KEYS) {
    const value = data[key];
    if (!value) continue;
    let node = out;
    for (const p of path.slice(0, -1)) {
      node[p] ??= {};
      node = node[p] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = value;
  }
  return out as PartialSecretsBundle;
}

/** The secrets.yaml format of `talosctl gen secrets`. */
export function bundleToYaml(bundle: SecretsBundle): string {
  return stringifyYaml(bundle, { lineWidth: 0 });
}

export function bundleFromYaml(text: string): PartialSecretsBundle {
  const parsed = parseYaml(text) as unknown;
  if (parsed === null || typeof parsed !== "object")
    throw new SecretsBundleError("secrets YAML is not a mapping");
  return parsed as PartialSecretsBundle;
}
