import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export type Check = () => boolean | Promise<boolean>;

/**
 * One small HTTP server for probes and metrics: `/metrics` (Prometheus text), `/healthz` (liveness: the
 * event loop answers and its checks pass), `/readyz` (readiness: caches synced; not "is leader", so a
 * standby replica stays Ready), and `/healthz/<name>`, `/readyz/<name>` for single checks, as
 * controller-runtime serves them.
 */
export class HealthServer {
  private readonly registry: Registry;
  private readonly healthz = new Map<string, Check>();
  private readonly readyz = new Map<string, Check>();
  private server: Server | undefined;

  constructor(registry: Registry) {
    this.registry = registry;
  }

  addHealthzCheck(name: string, check: Check): void {
    this.healthz.set(name, check);
  }

  addReadyzCheck(name: string, check: Check): void {
    this.readyz.set(name, check);
  }

  private async run(
    checks: Map<string, Check>,
    only: string | undefined,
  ): Promise<{ ok: boolean; body: string }> {
    const lines: string[] = [];
    let ok = true;
    for (const [name, check] of checks) {
      if (only && name !== only) continue;
      let passed = false;
      try {
        passed = await check();
      } catch {
        passed = false;
      }
      ok &&= passed;
      lines.push(`[${passed ? "+" : "-"}]${name} ${passed ? "ok" : "failed"}`);
    }
    if (only && lines.length === 0) return { ok: false, body: `no check named ${only}\n` };
    return { ok, body: `${lines.join("\n")}\n${ok ? "ok" : "failed"}\n` };
  }

  async listen(port: number, host = "0.0.0.0"): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0]!;
      const respond = async () => {
        if (path === "/metrics") {
          res.writeHead(200, { "Content-Type": this.registry.contentType });
          res.end(await this.registry.metrics());
          return;
        }
        const m = /^\/(healthz|readyz)(?:\/([^/]+))?$/.exec(path);
        if (!m) {
          res.writeHead(404).end("not found\n");
          return;
        }
        const { ok, body } = await this.run(m[1] === "healthz" ? this.healthz : this.readyz, m[2]);
        res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(body);
      };
      respond().catch(() => res.writeHead(500).end("internal error\n"));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
