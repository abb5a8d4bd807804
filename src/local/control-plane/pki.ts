// The PKI of one control plane, made in-process with the project's X.509 builder (src/pki): a CA, the
// API server's serving certificate, client certificates for the admin, the controller manager and the
// scheduler, and the service-account signing key. A folder that already holds them is reused, so a kept
// cluster keeps its CA (and every kubeconfig handed out stays valid).
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCA, createCsr, generateKey, issueCert, privateKeyToPem } from "../../pki/index.ts";

export interface ControlPlanePki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  schedulerCert: string;
  schedulerKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export interface PkiOptions {
  /** The first address of the service range (the in-cluster `kubernetes` Service). */
  serviceIP: string;
  validityDays: number;
  /** Names and addresses the API server is reached at besides loopback and the in-cluster names. */
  dnsNames?: string[];
  ipAddresses?: string[];
}

const FILES = {
  caCert: "ca.crt",
  caKey: "ca.key",
  servingCert: "apiserver.crt",
  servingKey: "apiserver.key",
  adminCert: "admin.crt",
  adminKey: "admin.key",
  controllerManagerCert: "controller-manager.crt",
  controllerManagerKey: "controller-manager.key",
  schedulerCert: "scheduler.crt",
  schedulerKey: "scheduler.key",
  serviceAccountKey: "service-account.key",
  serviceAccountPub: "service-account.pub",
} satisfies Record<keyof ControlPlanePki, string>;

function paths(dir: string): ControlPlanePki {
  const out = {} as ControlPlanePki;
  for (const k of Object.keys(FILES) as (keyof ControlPlanePki)[]) out[k] = join(dir, FILES[k]);
  return out;
}

/** The PKI in `dir`: the one already there (all files present), or a new one written atomically. */
export async function controlPlanePki(dir: string, options: PkiOptions): Promise<ControlPlanePki> {
  const existing = paths(dir);
  if (Object.values(existing).every((p) => existsSync(p))) return existing;
  // Written to a sibling folder and renamed: a start killed half-way never leaves a partial PKI.
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  await writePki(tmp, options);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return existing;
}

async function writePki(dir: string, options: PkiOptions): Promise<void> {
  const days = options.validityDays;
  const ca = createCA({ subject: { commonName: "homelab-operator-control-plane-ca" }, validityDays: days });
  const serving = issueCert(ca, {
    subject: { commonName: "kube-apiserver" },
    validityDays: days,
    dnsNames: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      ...(options.dnsNames ?? []),
    ],
    ipAddresses: ["127.0.0.1", options.serviceIP, ...(options.ipAddresses ?? [])],
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extKeyUsage: ["serverAuth"],
  });
  const client = (commonName: string, organizations: string[]) =>
    issueCert(ca, {
      subject: { commonName, organizations },
      validityDays: days,
      extKeyUsage: ["clientAuth"],
    });
  // system:masters bypasses RBAC: the admin of a local cluster, like envtest's default user.
  const admin = client("homelab-admin", ["system:masters"]);
  const controllerManager = client("system:kube-controller-manager", ["system:masters"]);
  // The scheduler's own identity: the bootstrap RBAC role system:kube-scheduler is bound to this user.
  const scheduler = client("system:kube-scheduler", []);
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const contents: Record<keyof ControlPlanePki, string> = {
    caCert: ca.certPem,
    caKey: ca.keyPem,
    servingCert: serving.certPem,
    servingKey: serving.keyPem,
    adminCert: admin.certPem,
    adminKey: admin.keyPem,
    controllerManagerCert: controllerManager.certPem,
    controllerManagerKey: controllerManager.keyPem,
    schedulerCert: scheduler.certPem,
    schedulerKey: scheduler.keyPem,
    serviceAccountKey: sa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    serviceAccountPub: sa.publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
  const target = paths(dir);
  await Promise.all(
    (Object.keys(contents) as (keyof ControlPlanePki)[]).map((k) =>
      writeFile(target[k], contents[k], { mode: 0o600 }),
    ),
  );
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
