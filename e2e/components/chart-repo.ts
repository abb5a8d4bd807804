// A Helm chart repository on loopback, served exactly as a real one is (index.yaml + .tgz over HTTP), plus
// the Gateway API release asset path, so the installer's code path is the one that pulls from the internet.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

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
}

export interface ChartRepo {
  url: string;
  /** Paths served under the root besides the charts (e.g. gateway-api/v1.6.1/standard-install.yaml). */
  requests: string[];
  stop(): Promise<void>;
}

export async function startChartRepo(
  helmPath: string,
  charts: ChartToServe[],
  files: Record<string, string> = {},
): Promise<ChartRepo> {
  const dir = await mkdtemp(join(tmpdir(), "homelab-chart-repo-"));
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(dir, ".cache"),
    HELM_CONFIG_HOME: join(dir, ".config"),
  };
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "");
    requests.push(path);
    const body = files[path];
    if (body !== undefined) {
      res.writeHead(200, { "content-type": "application/yaml" }).end(body);
      return;
    }
    if (path.includes("/") || path.includes("..")) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, path)).then(
      (data) => res.writeHead(200).end(data),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  const url = `http://127.0.0.1:${address.port}`;
  for (const chart of charts) {
    let source = chart.dir;
    if (chart.prepare) {
      source = join(dir, ".work", chart.dir.split("/").pop() as string);
      await cp(chart.dir, source, { recursive: true });
      await chart.prepare(source);
    }
    const args = ["package", source, "--destination", dir];
    if (chart.version) args.push("--version", chart.version, "--app-version", chart.version);
    await run(helmPath, args, { env: helmEnv });
  }
  await rm(join(dir, ".work"), { recursive: true, force: true });
  await run(helmPath, ["repo", "index", dir, "--url", url], { env: helmEnv });
  return {
    url,
    requests,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The vendored CRDs of a folder as one multi-document manifest, the shape of a release asset. */
export async function manifestOf(dir: string, prefix: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(prefix) && n.endsWith(".yaml")).sort();
  const docs = await Promise.all(names.map((n) => readFile(join(dir, n), "utf8")));
  return docs.map((d) => `---\n${d}`).join("\n");
}
