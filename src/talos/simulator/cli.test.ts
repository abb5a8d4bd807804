import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TalosClient } from "../client/talos-client.ts";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));

describe("npm run sim:talos", () => {
  it("serves the requested nodes and writes configs and a talosconfig for them", async () => {
    const out = await mkdtemp(join(tmpdir(), "sim-cli-"));
    const child = spawn(
      process.execPath,
      [CLI, "--node", "n1=127.0.32.1", "--node", "n2=127.0.32.2@v1.12.6", "--out", out],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      let output = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`CLI did not start:\n${output}`)), 20_000);
        child.stdout.on("data", (d) => {
          output += String(d);
          if (output.includes("wrote secrets.yaml")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once("exit", (code) => reject(new Error(`CLI exited with ${code}:\n${output}`)));
      });
      const endpoint = /^n2\t(\S+)$/m.exec(output)?.[1];
      expect(endpoint).toMatch(/^127\.0\.32\.2:\d+$/);
      const client = TalosClient.maintenance(endpoint ?? "", { timeoutMs: 5_000 });
      try {
        expect((await client.version()).tag).toBe("v1.12.6");
      } finally {
        client.close();
      }
      expect(await readFile(join(out, "n1.yaml"), "utf8")).toContain("hostname: n1");
      expect(await readFile(join(out, "talosconfig"), "utf8")).toMatch(/^context: sim$/m);
    } finally {
      child.kill("SIGTERM");
      await rm(out, { recursive: true, force: true });
    }
  });
});
