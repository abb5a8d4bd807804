// A throwaway CA and serving certificate for the simulator, made in-process with the shared X.509
// builder (src/pki), so the simulator starts in milliseconds and needs no openssl binary.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { createCA, issueCert } from "../../pki/index.ts";

export interface ServingPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the serving certificate, "AB:CD:..." as Proxmox shows it. */
  fingerprint: string;
}

/** A fresh CA (ECDSA P-256) and a serving certificate for the given host names and IPs. */
export function createServingPki(altNames: string[], commonName = "Proxmox VE simulator"): ServingPki {
  const ca = createCA({
    subject: { commonName: `${commonName} CA ${randomBytes(4).toString("hex")}` },
    key: "ecdsa-p256",
    validityDays: 30,
  });
  const leaf = issueCert(ca, {
    subject: { commonName: altNames[0] ?? "localhost" },
    key: "ecdsa-p256",
    validityDays: 30,
    dnsNames: altNames.filter((n) => isIP(n) === 0),
    ipAddresses: altNames.filter((n) => isIP(n) !== 0),
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["serverAuth"],
  });
  return {
    caPem: ca.certPem,
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    fingerprint: leaf.cert.fingerprint256,
  };
}
