// A throwaway PKI for one test control plane, made with the openssl CLI: Node can create keys but
// neither certificates nor CSRs. Keys are ECDSA P-256 (fast to generate, accepted everywhere in k8s).
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run("openssl", args, { cwd });
  return stdout;
}

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

/** Builds a subject like "/CN=alice/O=peers-alice/O=other"; rejects characters that would split it. */
export function subjectFor(commonName: string, organizations: string[] = []): string {
  for (const part of [commonName, ...organizations]) {
    if (/[/=+,\n]/.test(part))
      throw new Error(`certificate subject part ${JSON.stringify(part)} is not allowed`);
  }
  return `/CN=${commonName}${organizations.map((o) => `/O=${o}`).join("")}`;
}

async function newKey(dir: string, file: string): Promise<void> {
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file], dir);
}

async function signedCert(
  dir: string,
  base: string,
  subject: string,
  extensions: string,
  days = 2,
): Promise<void> {
  await newKey(dir, `${base}.key`);
  await openssl(["req", "-new", "-key", `${base}.key`, "-subj", subject, "-out", `${base}.csr`], dir);
  await writeFile(join(dir, `${base}.ext`), extensions);
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      String(days),
      "-sha256",
      "-extfile",
      `${base}.ext`,
      "-out",
      `${base}.crt`,
    ],
    dir,
  );
}

/** Creates CA, serving cert (loopback + in-cluster names), admin and controller-manager client certs, SA keys. */
export async function createControlPlanePki(dir: string, serviceIP: string): Promise<ControlPlanePki> {
  await newKey(dir, "ca.key");
  await openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-subj",
      "/CN=homelab-operator-test-ca",
      "-days",
      "2",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
      "-out",
      "ca.crt",
    ],
    dir,
  );
  const serverSans = [
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:127.0.0.1",
    `IP:${serviceIP}`,
  ].join(",");
  await signedCert(
    dir,
    "apiserver",
    "/CN=kube-apiserver",
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${serverSans}\n`,
  );
  const clientExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
  // system:masters bypasses RBAC: the admin of a test cluster, like envtest's default user.
  await signedCert(dir, "admin", subjectFor("homelab-admin", ["system:masters"]), clientExt);
  await signedCert(
    dir,
    "controller-manager",
    subjectFor("system:kube-controller-manager", ["system:masters"]),
    clientExt,
  );
  await openssl(
    ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "service-account.key"],
    dir,
  );
  await openssl(["pkey", "-in", "service-account.key", "-pubout", "-out", "service-account.pub"], dir);
  const p = (f: string) => join(dir, f);
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

/** A new P-256 key and a PEM CSR for the subject, for the certificates.k8s.io API. */
export async function createClientCsr(
  dir: string,
  base: string,
  commonName: string,
  organizations: string[],
): Promise<{ keyFile: string; csrPem: string }> {
  await newKey(dir, `${base}.key`);
  const csrPem = await openssl(
    ["req", "-new", "-key", `${base}.key`, "-subj", subjectFor(commonName, organizations)],
    dir,
  );
  return { keyFile: join(dir, `${base}.key`), csrPem };
}
