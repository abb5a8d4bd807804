// A Helm chart repository on loopback, served exactly as a real one is (index.yaml + .tgz over HTTP), plus
// plain files such as the Gateway API release asset, so the components controller's code path is the
// one that pulls from the internet. Local mode serves a folder of unpacked charts with it (opt-in:
// HOMELAB_LOCAL_CHARTS); the components e2e serves the reference charts and its own small ones.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import type { CatalogEntry } from "../components/catalog.ts";
import { WORKLOAD_CRDS_DIR } from "./container-stand-ins.ts";

const run = promisify(execFile);

export interface ChartToServe {
  dir: string;
  /** Sets the packaged version (cert-manager's and Crossplane's repo trees say v0.0.0 / 0.0.1). */
  version?: string;
  /**
   * The steps of the project's own packaging that its repository tree has not run yet, done on a copy of
   * the folder (the original is never changed), e.g. External Secrets' generated CRD templates.
   */
  prepare?: (copy: string) => Promise<void>;
  /** A chart Helm cannot package is left out (and named in `skipped`) instead of failing the repository. */
  optional?: boolean;
}

export interface ChartRepo {
  url: string;
  /** Every path asked for, in order (tests check where charts came from). */
  requests: string[];
  /** Optional charts left out, each with Helm's reason. */
  skipped: { dir: string; reason: string }[];
  stop(): Promise<void>;
}

export async function startChartRepo(
  helmPath: string,
  charts: ChartToServe[],
  files: Record<string, string> = {},
  /** Serve over HTTPS with this certificate (an https:// repository, as a WorkloadMigration needs one). */
  tls?: { certPem: string; keyPem: string },
): Promise<ChartRepo> {
  const dir = await mkdtemp(join(tmpdir(), "homelab-chart-repo-"));
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(dir, ".cache"),
    HELM_CONFIG_HOME: join(dir, ".config"),
  };
  const requests: string[] = [];
  const skipped: ChartRepo["skipped"] = [];
  const handler: RequestListener = (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "");
    requests.push(path);
    const body = files[path];
    if (body !== undefined) {
      res.writeHead(200, { "content-type": "application/yaml" }).end(body);
      return;
    }
    if (path.includes("/") || path.includes("..") || path.startsWith(".")) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, path)).then(
      (data) => res.writeHead(200).end(data),
      () => res.writeHead(404).end(),
    );
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler)
    : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  const url = `${tls ? "https" : "http"}://127.0.0.1:${address.port}`;
  const stop = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const chart of charts) {
      let source = chart.dir;
      if (chart.prepare) {
        source = join(dir, ".work", chart.dir.split("/").pop() as string);
        await cp(chart.dir, source, { recursive: true });
        await chart.prepare(source);
      }
      const args = ["package", source, "--destination", dir];
      if (chart.version) args.push("--version", chart.version, "--app-version", chart.version);
      try {
        await run(helmPath, args, { env: helmEnv });
      } catch (err) {
        if (!chart.optional) throw err;
        const reason = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
        skipped.push({ dir: chart.dir, reason });
      }
    }
    await rm(join(dir, ".work"), { recursive: true, force: true });
    await run(helmPath, ["repo", "index", dir, "--url", url], { env: helmEnv });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, requests, skipped, stop };
}

/** The vendored CRDs of a folder as one multi-document manifest, the shape of a release asset. */
export async function manifestOf(dir: string, prefix: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(prefix) && n.endsWith(".yaml")).sort();
  const docs = await Promise.all(names.map((n) => readFile(join(dir, n), "utf8")));
  return docs.map((d) => `---\n${d}`).join("\n");
}

/** The Gateway API version whose CRDs local mode serves (the catalog's pin; a unit test keeps them equal). */
export const LOCAL_GATEWAY_API_VERSION = "v1.6.1";

export interface LocalChartMirror extends ChartRepo {
  /** Chart name → the versions served. */
  charts: Map<string, string[]>;
}

/**
 * Local mode's mirror of a folder of unpacked charts named `<chart>-<version>` (the layout of
 * ../shared/reference/charts), each packaged at the version its folder names, plus the Gateway API CRDs
 * at `gateway-api/<version>/standard-install.yaml`. A folder Helm cannot package is left out and named.
 */
export async function startLocalChartMirror(helmPath: string, chartsDir: string): Promise<LocalChartMirror> {
  const found: { chart: ChartToServe; name: string; version: string }[] = [];
  for (const folder of (await readdir(chartsDir, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    const match = /^(.+)-(v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)$/.exec(folder.name);
    const dir = join(chartsDir, folder.name);
    const meta = await readFile(join(dir, "Chart.yaml"), "utf8").then(
      (t) => parse(t) as { name?: string; version?: string },
      () => undefined,
    );
    if (!match || !meta?.name) continue;
    const version = match[2] as string;
    found.push({
      chart: { dir, optional: true, ...(meta.version !== version ? { version } : {}) },
      name: meta.name,
      version,
    });
  }
  const repo = await startChartRepo(
    helmPath,
    found.map((f) => f.chart),
    {
      [`gateway-api/${LOCAL_GATEWAY_API_VERSION}/standard-install.yaml`]: await manifestOf(
        WORKLOAD_CRDS_DIR,
        "gateway.networking.k8s.io_",
      ),
    },
  );
  const charts = new Map<string, string[]>();
  for (const f of found) {
    if (repo.skipped.some((s) => s.dir === f.chart.dir)) continue;
    charts.set(f.name, [...(charts.get(f.name) ?? []), f.version]);
  }
  return { ...repo, charts };
}

/** The mirror's repository for a catalog entry at `version`, when it serves that chart (or manifest). */
export function mirrorRepositoryFor(
  mirror: Pick<LocalChartMirror, "url" | "charts">,
  entry: CatalogEntry,
  version: string,
): string | undefined {
  const bare = (v: string) => v.replace(/^v/, "");
  if (entry.source.kind === "chart") {
    const served = mirror.charts.get(entry.source.chart) ?? [];
    return served.some((v) => bare(v) === bare(version)) ? mirror.url : undefined;
  }
  return entry.name === "gateway-api" && version === LOCAL_GATEWAY_API_VERSION
    ? `${mirror.url}/gateway-api`
    : undefined;
}
