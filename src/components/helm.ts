// Drives the pinned Helm v4 CLI. The kubeconfig and the values live in a private temp folder for the one
// command and are removed afterwards; secrets are never on a command line (ps shows those to every user).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChartSource } from "./catalog.ts";

/** Release label that marks a release as installed by this operator. */
export const OWNER_LABEL = "homelab-operator.dev/managed-by";
export const OWNER_VALUE = "homelab-operator";
/** Release label naming the HomelabCluster, so two clusters sharing a workload cluster cannot collide. */
export const CLUSTER_LABEL = "homelab-operator.dev/cluster";

export interface HelmOptions {
  helmPath: string;
  /** Helm's cache/config/data homes: chart downloads are kept between runs, nothing lands in $HOME. */
  stateDir: string;
  /** Per-command limit, also passed as --timeout for hooks. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * How an aborted helm is stopped (default SIGTERM, which lets Helm record the release as failed when it
   * gets the chance; tests pass SIGKILL to stand in for an operator crash).
   */
  killSignal?: NodeJS.Signals;
}

export class HelmError extends Error {
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super(message);
    this.name = "HelmError";
    this.stderr = stderr;
  }
}

export interface ReleaseInfo {
  name: string;
  namespace: string;
  revision: number;
  status: string;
  chartVersion: string;
  labels: Record<string, string>;
}

export interface InstallRequest {
  release: string;
  namespace: string;
  source: ChartSource;
  values: Record<string, unknown>;
  labels: Record<string, string>;
}

export class Helm {
  readonly #opts: HelmOptions;
  readonly #kubeconfig: string;

  /** `kubeconfig` is the workload cluster's kubeconfig YAML (from the `<cluster>-kubeconfig` Secret). */
  constructor(opts: HelmOptions, kubeconfig: string) {
    this.#opts = opts;
    this.#kubeconfig = kubeconfig;
  }

  async #run(args: string[], files: Record<string, string> = {}): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "homelab-helm-"));
    try {
      const kubeconfig = join(dir, "kubeconfig");
      await writeFile(kubeconfig, this.#kubeconfig, { mode: 0o600 });
      const paths: Record<string, string> = {};
      for (const [name, content] of Object.entries(files)) {
        paths[name] = join(dir, name);
        await writeFile(paths[name], content, { mode: 0o600 });
      }
      const full = args.map((a) => (a.startsWith("@file:") ? (paths[a.slice(6)] ?? a) : a));
      full.push("--kubeconfig", kubeconfig);
      const s = this.#opts.stateDir;
      const { signal } = this.#opts;
      signal?.throwIfAborted();
      return await new Promise<string>((resolve, reject) => {
        // The abort is ours, not execFile's `signal` option: Node's execFile does not hand its killSignal
        // to spawn, whose abort always sends SIGTERM (found when SIGKILL still let Helm mark a release
        // failed). killSignal below covers the timeout only.
        const onAbort = () => child.kill(this.#opts.killSignal ?? "SIGTERM");
        const child = execFile(
          this.#opts.helmPath,
          full,
          {
            env: {
              PATH: process.env.PATH ?? "/usr/bin:/bin",
              HOME: s,
              HELM_CACHE_HOME: join(s, "cache"),
              HELM_CONFIG_HOME: join(s, "config"),
              HELM_DATA_HOME: join(s, "data"),
              ...(process.env.HTTPS_PROXY ? { HTTPS_PROXY: process.env.HTTPS_PROXY } : {}),
              ...(process.env.NO_PROXY ? { NO_PROXY: process.env.NO_PROXY } : {}),
              // A chart mirror behind a private CA: Go reads its trusted roots from this file.
              ...(process.env.SSL_CERT_FILE ? { SSL_CERT_FILE: process.env.SSL_CERT_FILE } : {}),
            },
            timeout: this.#opts.timeoutMs ?? 300_000,
            maxBuffer: 64 * 1024 * 1024,
            ...(this.#opts.killSignal ? { killSignal: this.#opts.killSignal } : {}),
          },
          (err, stdout, stderr) => {
            signal?.removeEventListener("abort", onAbort);
            if (signal?.aborted) reject(signal.reason);
            else if (err) {
              // Only the last stderr line (Helm's "Error: ..." summary) goes into the Condition message.
              const first = stderr.trim().split("\n").slice(-1)[0] ?? err.message;
              reject(new HelmError(`helm ${args[0]} failed: ${first}`, stderr));
            } else resolve(stdout);
          },
        );
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The newest revision of `release` (`helm get metadata` has status, chart version and labels). */
  async status(release: string, namespace: string): Promise<ReleaseInfo | undefined> {
    let out: string;
    try {
      out = await this.#run(["get", "metadata", release, "--namespace", namespace, "--output", "json"]);
    } catch (err) {
      if (err instanceof HelmError && /release: not found/.test(err.stderr)) return undefined;
      throw err;
    }
    const meta = JSON.parse(out) as {
      name: string;
      namespace: string;
      revision: number;
      status: string;
      version: string;
      labels?: Record<string, string>;
    };
    return {
      name: meta.name,
      namespace: meta.namespace,
      revision: meta.revision,
      status: meta.status,
      chartVersion: meta.version,
      labels: meta.labels ?? {},
    };
  }

  /** The user-supplied values of the deployed revision (what -f gave), for drift comparison. */
  async values(release: string, namespace: string): Promise<Record<string, unknown>> {
    const out = await this.#run(["get", "values", release, "--namespace", namespace, "--output", "json"]);
    return (JSON.parse(out || "null") as Record<string, unknown> | null) ?? {};
  }

  async manifest(release: string, namespace: string): Promise<string> {
    return this.#run(["get", "manifest", release, "--namespace", namespace]);
  }

  /**
   * `helm upgrade --install` without --wait: readiness is ours (readiness.ts). Hooks still run and are
   * waited for (Helm's default hookOnly), so cert-manager's startupapicheck and Gatekeeper's CRD job work.
   */
  async upgradeInstall(req: InstallRequest): Promise<void> {
    await this.#run(...this.#upgradeArgs(req));
  }

  /**
   * The objects `upgradeInstall(req)` would apply (the release manifest, then each hook's), rendered by
   * `--dry-run=server` (lookups reach the cluster) and stored nowhere. Helm v4.3.1 sends none of them to
   * the API server in a dry run (a Deployment with `cpu: lots` passes), so the caller validates them.
   */
  async render(req: InstallRequest): Promise<string[]> {
    const [args, files] = this.#upgradeArgs(req);
    const out = await this.#run([...args, "--dry-run=server", "--output", "json"], files);
    const r = JSON.parse(out) as { manifest?: string; hooks?: { manifest?: string }[] };
    return [r.manifest ?? "", ...(r.hooks ?? []).map((h) => h.manifest ?? "")];
  }

  #upgradeArgs(req: InstallRequest): [string[], Record<string, string>] {
    const { source } = req;
    const oci = source.repository.startsWith("oci://");
    const chartArgs = oci
      ? [`${source.repository.replace(/\/$/, "")}/${source.chart}`]
      : [source.chart, "--repo", source.repository];
    const labels = Object.entries(req.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    return [
      [
        "upgrade",
        "--install",
        req.release,
        ...chartArgs,
        "--version",
        source.version,
        "--namespace",
        req.namespace,
        "--create-namespace",
        "--values",
        "@file:values.json",
        // Start from the chart's defaults every time: --reuse-values would keep a value the user removed.
        "--reset-values",
        // Server-side apply, and our own release's fields taken back from whoever changed them by hand
        // (kubectl edit leaves that field to another manager, and a plain apply would then conflict). Only
        // ever run on releases that carry our labels (installer.ts and the WorkloadMigration controller
        // refuse the others).
        "--server-side",
        "true",
        "--force-conflicts",
        "--labels",
        labels,
        "--timeout",
        `${Math.round((this.#opts.timeoutMs ?? 300_000) / 1000)}s`,
      ],
      { "values.json": JSON.stringify(req.values) },
    ];
  }

  /** Back to the previous revision: clears a pending-upgrade left by a helm process that was killed. */
  async rollback(release: string, namespace: string): Promise<void> {
    await this.#run(["rollback", release, "--namespace", namespace]);
  }

  async uninstall(release: string, namespace: string): Promise<void> {
    await this.#run(["uninstall", release, "--namespace", namespace, "--wait=hookOnly"]);
  }
}
