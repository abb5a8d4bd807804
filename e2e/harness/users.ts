// Clients that authenticate as any user and groups. A client certificate (CN = user, O = groups) is issued
// through the certificates.k8s.io API with the kube-apiserver-client signer, so the apiserver sees a real
// authenticated identity, exactly as with an OIDC user in production. The same path works on our own
// control plane (its controller-manager signs CSRs) and on an existing cluster such as kind.
// Impersonation headers were not used: @kubernetes/client-node can only send one Impersonate-User header,
// and no Impersonate-Group.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CertificatesV1Api, KubeConfig } from "@kubernetes/client-node";
import { writeKubeconfig } from "../../src/local/control-plane/kubeconfig.ts";
import { createClientCsr } from "../../src/local/control-plane/pki.ts";

export interface UserClientOptions {
  /** Folder for the user's key, certificate and kubeconfig. */
  dir: string;
  user: string;
  groups?: string[];
}

export async function kubeconfigForUser(admin: KubeConfig, opts: UserClientOptions): Promise<string> {
  const groups = opts.groups ?? [];
  const base = `${opts.user}--${groups.join("+") || "nogroups"}`.replace(/[^a-zA-Z0-9_.+-]/g, "_");
  await mkdir(opts.dir, { recursive: true });
  const kubeconfigPath = join(opts.dir, `${base}.kubeconfig`);
  try {
    await readFile(kubeconfigPath);
    return kubeconfigPath; // issued earlier for the same identity
  } catch {
    // not issued yet
  }
  const { keyFile, csrPem } = await createClientCsr(opts.dir, base, opts.user, groups);
  const api = admin.makeApiClient(CertificatesV1Api);
  const csrName =
    `homelab-test-${base.toLowerCase().replace(/[^a-z0-9.-]/g, "-")}-${Date.now().toString(36)}`.slice(
      0,
      253,
    );
  await api.createCertificateSigningRequest({
    body: {
      metadata: { name: csrName },
      spec: {
        signerName: "kubernetes.io/kube-apiserver-client",
        request: Buffer.from(csrPem).toString("base64"),
        usages: ["client auth"],
        expirationSeconds: 24 * 3600,
      },
    },
  });
  const csr = await api.readCertificateSigningRequest({ name: csrName });
  csr.status = {
    ...csr.status,
    conditions: [
      {
        type: "Approved",
        status: "True",
        reason: "HomelabTestHarness",
        message: "approved by the homelab-operator test harness",
      },
    ],
  };
  await api.replaceCertificateSigningRequestApproval({ name: csrName, body: csr });
  const deadline = Date.now() + 30_000;
  let certificate: string | undefined;
  while (!certificate) {
    if (Date.now() > deadline) throw new Error(`CSR ${csrName} was approved but not signed within 30 s`);
    const current = await api.readCertificateSigningRequest({ name: csrName });
    certificate = current.status?.certificate;
    if (!certificate) await new Promise((r) => setTimeout(r, 100));
  }
  const certFile = join(opts.dir, `${base}.crt`);
  await writeFile(certFile, Buffer.from(certificate, "base64"));
  await api.deleteCertificateSigningRequest({ name: csrName });
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error("the admin kubeconfig has no current cluster");
  const caFile = join(opts.dir, "cluster-ca.crt");
  if (cluster.caData) await writeFile(caFile, Buffer.from(cluster.caData, "base64"));
  else if (cluster.caFile) await writeFile(caFile, await readFile(cluster.caFile));
  await writeKubeconfig(kubeconfigPath, cluster.name, cluster.server, caFile, {
    name: opts.user,
    certFile,
    keyFile,
  });
  return kubeconfigPath;
}

export async function kubeConfigForUser(admin: KubeConfig, opts: UserClientOptions): Promise<KubeConfig> {
  const kc = new KubeConfig();
  kc.loadFromFile(await kubeconfigForUser(admin, opts));
  return kc;
}
