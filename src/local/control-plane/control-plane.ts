// A Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager and optionally
// kube-scheduler as real processes, each control plane in its own folder with its own PKI and ports.
// Several can run at once (local mode runs a management and a workload cluster). With `dir` the folder
// is kept (etcd data, PKI, ports) so the next start resumes the same cluster; without it a temp folder
// is used and removed on stop. See README "Local mode" and "Development".
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { ensureControlPlaneBinaries } from "./binaries.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { type ManagedProcess, startProcess, waitUntilReady } from "./managed-process.ts";
import { type ControlPlanePki, controlPlanePki } from "./pki.ts";
import { freePort, portFree } from "./ports.ts";
import { killStaleProcesses, ownerLine, pidFileName } from "./stale.ts";

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
  /** Used in the folder and kubeconfig names. */
  name?: string;
  /**
   * A folder to keep the cluster in (created if missing). A later start with the same folder resumes
   * the same cluster: same CA, same etcd data, the same ports when they are still free. Default: a
   * temp folder, removed on stop.
   */
  dir?: string;
  controllers?: string[];
  /** Also run kube-scheduler, so pods get bound to nodes (default false). */
  scheduler?: boolean;
  /** Extra names and addresses for the API server's serving certificate. */
  servingNames?: { dnsNames?: string[]; ipAddresses?: string[] };
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
  pki: ControlPlanePki;
  /** Milliseconds from the first process spawned to the API server and controllers ready. */
  startupMs: number;
  kubeConfig(): KubeConfig;
  /** A further process that belongs to this cluster (e.g. kwok): reaped with it, stopped before it. */
  adopt(process: ManagedProcess): Promise<void>;
  /** Stops the processes; removes the folder unless it was given as `dir`. */
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

type PortName = "etcdClient" | "etcdPeer" | "api" | "controllerManager" | "scheduler";
const PORT_NAMES: PortName[] = ["etcdClient", "etcdPeer", "api", "controllerManager", "scheduler"];

/** The ports of the last run when still free (the kubeconfig and etcd's peer URL stay valid), else new ones. */
async function choosePorts(dir: string): Promise<Record<PortName, number>> {
  const file = join(dir, "ports.json");
  const previous: Partial<Record<PortName, number>> = existsSync(file)
    ? JSON.parse(await readFile(file, "utf8"))
    : {};
  const chosen = {} as Record<PortName, number>;
  for (const name of PORT_NAMES) {
    const before = previous[name];
    chosen[name] = before && (await portFree(before)) ? before : await freePort();
  }
  await writeFile(file, JSON.stringify(chosen));
  return chosen;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const name = options.name ?? "test";
  const timeout = options.startTimeoutMs ?? 60_000;
  const keep = options.dir !== undefined;
  const bins = await ensureControlPlaneBinaries();
  let dir: string;
  if (options.dir) {
    dir = options.dir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A previous owner killed with SIGKILL may have left its processes running on this folder's data.
    await killStaleProcesses(dir);
  } else {
    dir = await mkdtemp(join(tmpdir(), `homelab-cp-${name}-`));
  }
  const pidFile = join(dir, pidFileName(process.pid));
  await writeFile(pidFile, ownerLine());
  const reaper = spawn(
    process.execPath,
    [
      // reaper.js beside this module when it runs from tsc's output (scripts/build.ts).
      fileURLToPath(
        new URL(import.meta.url.endsWith(".js") ? "./reaper.js" : "./reaper.ts", import.meta.url),
      ),
      String(process.pid),
      dir,
      keep ? "keep" : "remove",
    ],
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
    // The reaper exits once its pid file is gone.
    if (keep) await rm(pidFile, { force: true });
    else await rm(dir, { recursive: true, force: true });
    if (handle) live.delete(handle);
  };
  const kubeconfigPath = join(dir, "admin.kubeconfig");
  let handle: ControlPlane | undefined;

  try {
    const pki = await controlPlanePki(join(dir, "pki"), {
      serviceIP: FIRST_SERVICE_IP,
      // A kept cluster lives as long as its folder; a throwaway one only needs to outlast a test run.
      validityDays: keep ? 3650 : 2,
      dnsNames: options.servingNames?.dnsNames ?? [],
      ipAddresses: options.servingNames?.ipAddresses ?? [],
    });
    // Registered before start-up so an interrupted start is cleaned up too.
    handle = {
      name,
      dir,
      server: "",
      kubeconfigPath,
      pki,
      startupMs: 0,
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
      adopt: track,
      stop,
    };
    live.add(handle);
    const ports = await choosePorts(dir);
    const started = Date.now();

    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const etcdPeer = `http://127.0.0.1:${ports.etcdPeer}`;
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
        // Test data is disposable: skipping fsync makes writes an order of magnitude faster. Kept data
        // (local mode) is fsynced, so it survives a machine crash, not only a killed process.
        `--unsafe-no-fsync=${!keep}`,
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    );
    await track(etcd);
    await waitUntilReady(etcd, () => httpProbe(`${etcdUrl}/health`), timeout);

    const server = `https://127.0.0.1:${ports.api}`;
    const apiserver = startProcess(
      "kube-apiserver",
      bins.kubeApiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${ports.api}`,
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

    await writeKubeconfig(kubeconfigPath, `homelab-${name}`, server, pki.caCert, {
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
        `--secure-port=${ports.controllerManager}`,
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
      httpsProbe(`https://127.0.0.1:${ports.controllerManager}/healthz`, { insecure: true }),
      timeout,
    );

    if (options.scheduler) {
      const schedulerKubeconfig = join(dir, "scheduler.kubeconfig");
      await writeKubeconfig(schedulerKubeconfig, `homelab-${name}`, server, pki.caCert, {
        name: "system:kube-scheduler",
        certFile: pki.schedulerCert,
        keyFile: pki.schedulerKey,
      });
      const scheduler = startProcess(
        "kube-scheduler",
        bins.kubeScheduler,
        [
          `--kubeconfig=${schedulerKubeconfig}`,
          `--authentication-kubeconfig=${schedulerKubeconfig}`,
          `--authorization-kubeconfig=${schedulerKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${ports.scheduler}`,
          `--cert-dir=${join(dir, "scheduler-certs")}`,
          "--leader-elect=false",
          "--profiling=false",
        ],
        join(dir, "kube-scheduler.log"),
      );
      await track(scheduler);
      await waitUntilReady(
        scheduler,
        httpsProbe(`https://127.0.0.1:${ports.scheduler}/healthz`, { insecure: true }),
        timeout,
      );
    }

    handle.server = server;
    handle.startupMs = Date.now() - started;
    return handle;
  } catch (err) {
    await stop();
    throw err;
  }
}
