// A throwaway PKI for one test control plane, made in-process with the project's X.509 builder
// (src/pki): a CA, the API server's serving certificate, client certificates for the admin and the
// controller manager, and the service-account signing key.
import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCA, createCsr, generateKey, issueCert, privateKeyToPem } from "../../src/pki/index.ts";

export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

const DAYS = 2;

/** Writes CA, serving cert (loopback + in-cluster names), admin and controller-manager client certs, SA keys. */
export async function createControlPlanePki(dir: string, serviceIP: string): Promise<ControlPlanePki> {
  const p = (f: string) => join(dir, f);
  const write = (f: string, pem: string) => writeFile(p(f), pem, { mode: 0o600 });
  const ca = createCA({ subject: { commonName: "homelab-operator-test-ca" }, validityDays: DAYS });
  const serving = issueCert(ca, {
    subject: { commonName: "kube-apiserver" },
    validityDays: DAYS,
    dnsNames: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    ipAddresses: ["127.0.0.1", serviceIP],
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extKeyUsage: ["serverAuth"],
  });
  const client = (commonName: string, organizations: string[]) =>
    issueCert(ca, {
      subject: { commonName, organizations },
      validityDays: DAYS,
      extKeyUsage: ["clientAuth"],
    });
  // system:masters bypasses RBAC: the admin of a test cluster, like envtest's default user.
  const admin = client("homelab-admin", ["system:masters"]);
  const controllerManager = client("system:kube-controller-manager", ["system:masters"]);
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await Promise.all([
    write("ca.crt", ca.certPem),
    write("ca.key", ca.keyPem),
    write("apiserver.crt", serving.certPem),
    write("apiserver.key", serving.keyPem),
    write("admin.crt", admin.certPem),
    write("admin.key", admin.keyPem),
    write("controller-manager.crt", controllerManager.certPem),
    write("controller-manager.key", controllerManager.keyPem),
    write("service-account.key", sa.privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
    write("service-account.pub", sa.publicKey.export({ type: "spki", format: "pem" }).toString()),
  ]);
  return {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    servingCert: p("apiserver.crt"),
    servingKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    controllerManagerCert: p("controller-manager.crt"),
    controllerManagerKey: p("controller-manager.key"),
    serviceAccountKey: p("service-account.key"),
    serviceAccountPub: p("service-account.pub"),
  };
}

/** A new P-256 key (written to `<dir>/<base>.key`) and a PEM CSR for CN=commonName, O=organizations. */
export async function createClientCsr(
  dir: string,
  base: string,
  commonName: string,
  organizations: string[],
): Promise<{ keyFile: string; csrPem: string }> {
  const key = generateKey("ecdsa-p256");
  const keyFile = join(dir, `${base}.key`);
  await writeFile(keyFile, privateKeyToPem(key), { mode: 0o600 });
  return { keyFile, csrPem: createCsr({ commonName, organizations }, key) };
}
