// How to reach one API server: a kubeconfig's current context (or the in-cluster service account) turned
// into a server URL, a TLS agent and the request headers. Our own, not @kubernetes/client-node's
// KubeConfig, because importing that package loads its 2,700 generated model modules: +80 MiB RSS in a
// process that needs none of them (measured: a bare node 24 process at 42 MiB RSS, 125 MiB after
// `import("@kubernetes/client-node")`). KubeClient still accepts a client-node KubeConfig (tests, the
// harness); the operator process uses this one.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import { Agent, type Dispatcher } from "undici";
import { parse } from "yaml";

const run = promisify(execFile);

/** A kubeconfig feature this loader does not implement (auth-provider, proxy-url): use client-node's. */
export class UnsupportedKubeconfigError extends Error {
  override readonly name = "UnsupportedKubeconfigError";
}

interface ExecSpec {
  apiVersion: string;
  command: string;
  args: string[];
  env: { name: string; value: string }[];
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  insecure: boolean;
  servername?: string;
}

type Auth =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | { kind: "tokenFile"; path: string }
  | { kind: "basic"; username: string; password: string }
  | { kind: "exec"; exec: ExecSpec };

/** Where one API server is and how to authenticate to it. */
export class RestConfig {
  readonly server: string;
  /** The context's namespace, if it names one. */
  readonly namespace: string | undefined;
  private readonly tls: TlsMaterial;
  private readonly auth: Auth;
  private agent: Agent | undefined;
  private agentCert: string | undefined;
  private fileToken: { value: string; readAt: number } | undefined;
  private execResult: { token?: string; cert?: string; key?: string; expiresAt: number } | undefined;

  constructor(opts: { server: string; namespace?: string; tls: TlsMaterial; auth: Auth }) {
    this.server = opts.server.replace(/\/+$/, "");
    this.namespace = opts.namespace;
    this.tls = opts.tls;
    this.auth = opts.auth;
  }

  /** Headers for the next request; rotating credentials (token files, exec plugins) are re-read here. */
  async headers(): Promise<Record<string, string>> {
    const auth = this.auth;
    switch (auth.kind) {
      case "none":
        return {};
      case "token":
        return { Authorization: `Bearer ${auth.token}` };
      case "basic":
        return {
          Authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`,
        };
      case "tokenFile": {
        // Projected service account tokens rotate; client-go re-reads the file at most once a minute.
        if (!this.fileToken || Date.now() - this.fileToken.readAt > 60_000) {
          this.fileToken = { value: readFileSync(auth.path, "utf8").trim(), readAt: Date.now() };
        }
        return { Authorization: `Bearer ${this.fileToken.value}` };
      }
      case "exec": {
        const result = await this.execCredential(auth.exec);
        return result.token ? { Authorization: `Bearer ${result.token}` } : {};
      }
    }
  }

  /** The TLS agent, one per client certificate (an exec plugin may hand out a new one). */
  async dispatcher(): Promise<Dispatcher | undefined> {
    if (!this.server.startsWith("https:")) return undefined;
    let cert = this.tls.cert;
    let key = this.tls.key;
    if (this.auth.kind === "exec") {
      const result = await this.execCredential(this.auth.exec);
      cert = result.cert ?? cert;
      key = result.key ?? key;
    }
    if (!this.agent || this.agentCert !== cert) {
      void this.agent?.close();
      this.agent = new Agent({
        connect: {
          ...(this.tls.ca ? { ca: this.tls.ca } : {}),
          ...(cert ? { cert } : {}),
          ...(key ? { key } : {}),
          rejectUnauthorized: !this.tls.insecure,
          ...(this.tls.servername ? { servername: this.tls.servername } : {}),
        },
      });
      this.agentCert = cert;
    }
    return this.agent;
  }

  private async execCredential(exec: ExecSpec): Promise<{ token?: string; cert?: string; key?: string }> {
    if (this.execResult && Date.now() < this.execResult.expiresAt) return this.execResult;
    const info = { apiVersion: exec.apiVersion, kind: "ExecCredential", spec: { interactive: false } };
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
    for (const e of exec.env) env[e.name] = e.value;
    const { stdout } = await run(exec.command, exec.args, { env, timeout: 60_000 });
    const status = (JSON.parse(stdout) as { status?: Record<string, string> }).status ?? {};
    const expiry = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : Number.NaN;
    this.execResult = {
      ...(status.token ? { token: status.token } : {}),
      ...(status.clientCertificateData ? { cert: status.clientCertificateData } : {}),
      ...(status.clientKeyData ? { key: status.clientKeyData } : {}),
      // No expiry: client-go keeps the credential until a 401; we ask again every 10 minutes.
      expiresAt: Number.isNaN(expiry) ? Date.now() + 10 * 60_000 : expiry - 30_000,
    };
    return this.execResult;
  }

  /** Closes the TLS agent's connections (a ClusterCache connection being torn down). */
  async close(): Promise<void> {
    await this.agent?.close();
    this.agent = undefined;
  }
}

interface KubeconfigDoc {
  "current-context"?: string;
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
  contexts?: { name: string; context: { cluster: string; user?: string; namespace?: string } }[];
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** The current context of a kubeconfig document; relative file paths are taken from `baseDir`. */
export function parseKubeconfig(text: string, opts: { baseDir?: string; context?: string } = {}): RestConfig {
  const doc = (parse(text) ?? {}) as KubeconfigDoc;
  const contextName = opts.context ?? doc["current-context"];
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`kubeconfig has no context ${contextName ?? "(no current-context)"}`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig has no cluster ${context.cluster}`);
  const user = (context.user ? doc.users?.find((u) => u.name === context.user)?.user : undefined) ?? {};
  const file = (p: string) =>
    readFileSync(isAbsolute(p) || !opts.baseDir ? p : join(opts.baseDir, p), "utf8");
  const material = (data: unknown, path: unknown): string | undefined => {
    const d = str(data);
    if (d) return Buffer.from(d, "base64").toString("utf8");
    const p = str(path);
    return p ? file(p) : undefined;
  };
  if (cluster["proxy-url"] !== undefined) throw new UnsupportedKubeconfigError("kubeconfig proxy-url");
  if (user["auth-provider"] !== undefined) throw new UnsupportedKubeconfigError("kubeconfig auth-provider");
  const server = str(cluster.server);
  if (!server) throw new Error(`kubeconfig cluster ${context.cluster} has no server`);
  const tls: TlsMaterial = { insecure: cluster["insecure-skip-tls-verify"] === true };
  const ca = material(cluster["certificate-authority-data"], cluster["certificate-authority"]);
  const cert = material(user["client-certificate-data"], user["client-certificate"]);
  const key = material(user["client-key-data"], user["client-key"]);
  const servername = str(cluster["tls-server-name"]);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (servername) tls.servername = servername;
  let auth: Auth = { kind: "none" };
  const exec = user.exec as Partial<ExecSpec> | undefined;
  if (str(user.token)) auth = { kind: "token", token: str(user.token)! };
  else if (str(user.tokenFile)) auth = { kind: "tokenFile", path: str(user.tokenFile)! };
  else if (str(user.username) && str(user.password)) {
    auth = { kind: "basic", username: str(user.username)!, password: str(user.password)! };
  } else if (exec?.command) {
    auth = {
      kind: "exec",
      exec: {
        apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1",
        command: exec.command,
        args: exec.args ?? [],
        env: exec.env ?? [],
      },
    };
  }
  return new RestConfig({
    server,
    ...(context.namespace ? { namespace: context.namespace } : {}),
    tls,
    auth,
  });
}

export function loadKubeconfigFile(path: string, context?: string): RestConfig {
  return parseKubeconfig(readFileSync(path, "utf8"), {
    baseDir: dirname(path),
    ...(context ? { context } : {}),
  });
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The pod's service account, as client-go's rest.InClusterConfig. */
export function inClusterConfig(): RestConfig {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return new RestConfig({
    server: `https://${hostPart}:${port}`,
    namespace: readFileSync(`${SA_DIR}/namespace`, "utf8").trim(),
    tls: { ca: readFileSync(`${SA_DIR}/ca.crt`, "utf8"), insecure: false },
    auth: { kind: "tokenFile", path: `${SA_DIR}/token` },
  });
}
