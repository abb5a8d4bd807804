// `npm run sim:proxmox` as a user runs it: it prints a URL, a CA file and a token that work together.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Agent, fetch } from "undici";
import { describe, expect, it } from "vitest";

describe("sim:proxmox CLI", () => {
  it("prints a URL, CA file and token that answer /nodes, and removes the CA file on SIGTERM", async () => {
    const cli = spawn(
      process.execPath,
      [fileURLToPath(new URL("./cli.ts", import.meta.url)), "--port", "0", "--nodes", "a,b"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    await new Promise<void>((resolve, reject) => {
      cli.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("END CERTIFICATE")) resolve();
      });
      cli.once("exit", (code) => reject(new Error(`CLI exited with ${code}: ${out}`)));
    });
    const url = /listening on (https:\/\/\S+)\/api2\/json/.exec(out)![1]!;
    const caFile = /CA:\s+(\S+)/.exec(out)![1]!;
    const token = /token:\s+(PVEAPIToken=\S+)/.exec(out)![1]!;
    const agent = new Agent({ connect: { ca: readFileSync(caFile, "utf8") } });
    const response = await fetch(`${url}/api2/json/nodes`, {
      dispatcher: agent,
      headers: { authorization: token },
    });
    const body = (await response.json()) as { data: { node: string }[] };
    expect(body.data.map((n) => n.node)).toEqual(["a", "b"]);
    await agent.close();
    const exited = new Promise((r) => cli.once("exit", r));
    cli.kill("SIGTERM");
    await exited;
    expect(existsSync(caFile)).toBe(false);
  });
});
