// An envtest-style Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager
// as real processes, each control plane in its own temp folder with its own throwaway PKI and free ports.
// Several can run at once (e.g. a management and a workload cluster). See README "Development".
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { ensureControlPlaneBinaries } from "./binaries.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { type ManagedProcess, startProcess, waitUntilReady } from "./managed-process.ts";
import { createControlPlanePki } from "./pki.ts";
import { freePort } from "./ports.ts";
import { kubeConfigForUser } from "./users.ts";

/**
 * The controllers a test needs to see a real cluster's behaviour: namespace finalization, ownerReference
 * garbage collection, quota usage, default service accounts and their tokens, the aggregated admin/edit/view
 * roles, the kube-root-ca.crt ConfigMap, CSR signing (used to mint user client certificates), and the type
 * checking of ValidatingAdmissionPolicies (their status shows CEL mistakes).
 */
export const DEFAULT_CONTROLLERS = [
  "namespace-controller",
  "garbage-collector-controller",
  "resourcequota-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "clusterrole-aggregation-controller",
  "root-ca-certificate-publisher-controller",
  "certificatesigningrequest-signing-controller",
  "validatingadmissionpolicy-status-controller",
];

const SERVICE_CIDR = "10.0.0.0/24";
const FIRST_SERVICE_IP = "10.0.0.1";

export interface ControlPlaneOptions {
  /** Used in the temp folder and kubeconfig names. */
  name?: string;
  controllers?: string[];
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. an audit policy for a benchmark that counts writes. */
  extraApiServerArgs?: string[];
  /**
   * Stop this control plane on SIGINT/SIGTERM and then exit as the signal would (default true). A
   * process with its own shutdown order (the operator's local mode) turns this off and calls stop().
   */
  handleSignals?: boolean;
}

export interface ControlPlane {
  name: string;
  dir: string;
  server: string;
  kubeconfigPath: string;
  /** Milliseconds from the first process spawned to the API server and controllers ready. */
  startupMs: number;
  kubeConfig(): KubeConfig;
  /** A client authenticated (by client certificate) as `user` in `groups`, subject to RBAC. */
  userKubeConfig(user: string, groups?: string[]): Promise<KubeConfig>;
  stop(): Promise<void>;
}

const live = new Set<ControlPlane>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // On Ctrl-C or SIGTERM, stop every control plane this process started, then exit as the signal would.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...live].map((cp) => cp.stop())).finally(() => {
        process.kill(process.pid, signal);
      });
    });
  }
}

function httpsProbe(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; insecure?: boolean }) {
  return () =>
    new Promise<boolean>((resolve) => {
      const req = request(
        url,
        {
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          rejectUnauthorized: !tls.insecure,
          timeout: 2_000,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on("error", () => resolve(false));
      req.on("timeout", () => {
        req.destroy();
        resolve(false);
      });
      req.end();
    });
}

async function httpProbe(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.ok;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const name = options.name ?? "test";
  const timeout = options.startTimeoutMs ?? 60_000;
  const bins = await ensureControlPlaneBinaries();
  const dir = await mkdtemp(join(tmpdir(), `homelab-cp-${name}-`));
  const pidFile = join(dir, "pids");
  const reaper = spawn(
    process.execPath,
    [fileURLToPath(new URL("./reaper.ts", import.meta.url)), String(process.pid), dir],
    { detached: true, stdio: "ignore" },
  );
  reaper.unref();
  if (options.handleSignals ?? true) installExitHooks();

  const procs: ManagedProcess[] = [];
  const track = async (p: ManagedProcess) => {
    procs.push(p);
    await appendFile(pidFile, `${p.pid}\n`);
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Reverse start order: controllers first, etcd last, so nothing logs errors about a vanished peer.
    for (const p of [...procs].reverse()) await p.stop();
    await rm(dir, { recursive: true, force: true });
    live.delete(handle);
  };
  // Registered before start-up so an interrupted start is cleaned up too.
  const handle: ControlPlane = {
    name,
    dir,
    server: "",
    kubeconfigPath: join(dir, "admin.kubeconfig"),
    startupMs: 0,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(handle.kubeconfigPath);
      return kc;
    },
    userKubeConfig(user, groups = []) {
      return kubeConfigForUser(handle.kubeConfig(), { dir: join(dir, "users"), user, groups });
    },
    stop,
  };
  live.add(handle);

  try {
    const pkiDir = join(dir, "pki");
    await mkdir(pkiDir);
    const [pki, etcdClientPort, etcdPeerPort, apiPort, kcmPort] = await Promise.all([
      createControlPlanePki(pkiDir, FIRST_SERVICE_IP),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const started = Date.now();

    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeer = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startProcess(
      "etcd",
      bins.etcd,
      [
        "--name=default",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${etcdPeer}`,
        `--initial-advertise-peer-urls=${etcdPeer}`,
        `--initial-cluster=default=${etcdPeer}`,
        // Test data is disposable: skipping fsync makes writes an order of magnitude faster.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    );
    await track(etcd);
    await waitUntilReady(etcd, () => httpProbe(`${etcdUrl}/health`), timeout);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startProcess(
      "kube-apiserver",
      bins.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,PodSecurity,ValidatingAdmissionPolicy,NodeRestriction,DefaultStorageClass",
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        "--profiling=false",
        ...(options.extraApiServerArgs ?? []),
      ],
      join(dir, "kube-apiserver.log"),
    );
    await track(apiserver);
    const adminTls = {
      ca: readFileSync(pki.caCert),
      cert: readFileSync(pki.adminCert),
      key: readFileSync(pki.adminKey),
    };
    await waitUntilReady(apiserver, httpsProbe(`${server}/readyz`, adminTls), timeout);

    await writeKubeconfig(handle.kubeconfigPath, `homelab-${name}`, server, pki.caCert, {
      name: "homelab-admin",
      certFile: pki.adminCert,
      keyFile: pki.adminKey,
    });
    const kcmKubeconfig = join(dir, "controller-manager.kubeconfig");
    await writeKubeconfig(kcmKubeconfig, `homelab-${name}`, server, pki.caCert, {
      name: "system:kube-controller-manager",
      certFile: pki.controllerManagerCert,
      keyFile: pki.controllerManagerKey,
    });
    const kcm = startProcess(
      "kube-controller-manager",
      bins.kubeControllerManager,
      [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, "controller-manager-certs")}`,
        `--controllers=${(options.controllers ?? DEFAULT_CONTROLLERS).join(",")}`,
        "--leader-elect=false",
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--root-ca-file=${pki.caCert}`,
        `--cluster-signing-cert-file=${pki.caCert}`,
        `--cluster-signing-key-file=${pki.caKey}`,
        "--use-service-account-credentials=false",
        "--profiling=false",
      ],
      join(dir, "kube-controller-manager.log"),
    );
    await track(kcm);
    // Its serving certificate is self-signed in cert-dir: only liveness matters here, not identity.
    await waitUntilReady(
      kcm,
      httpsProbe(`https://127.0.0.1:${kcmPort}/healthz`, { insecure: true }),
      timeout,
    );

    handle.server = server;
    handle.startupMs = Date.now() - started;
    return handle;
  } catch (err) {
    await stop();
    throw err;
  }
}
