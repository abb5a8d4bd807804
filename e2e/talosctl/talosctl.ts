// Finds (building on first use) the pinned talosctl and runs it. The build is ~4 minutes cold on 2 cores,
// so CI runs e2e/talosctl/build-talosctl.sh before the tests; here it is only a cache lookup.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const BUILD_SCRIPT = fileURLToPath(new URL("./build-talosctl.sh", import.meta.url));

/** Runs a peer build script once per process and resolves to the binary path it prints last. */
function builtOnce(script: string, args: readonly string[] = []): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= run("bash", [script, ...args], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 20 * 60_000,
    }).then((r) => {
      const path = r.stdout.trim().split("\n").pop();
      if (!path) throw new Error(`${script} printed no path:\n${r.stderr}`);
      return path;
    });
    return pending;
  };
}

export const talosctlPath = builtOnce(BUILD_SCRIPT);

/** talosctl of the seed's Talos release (versions.env TALOSCTL_SEED_VERSION). */
export const seedTalosctlPath = builtOnce(BUILD_SCRIPT, ["seed"]);

export interface TalosctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary; never throws on a non-zero exit (tests assert on code and output). */
async function runCapturing(
  bin: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<TalosctlResult> {
  try {
    const r = await run(bin, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? String(err),
    };
  }
}

/** Runs talosctl (the seed release's with `seed`); never throws on a non-zero exit. */
export async function talosctl(
  args: readonly string[],
  options: { timeoutMs?: number; seed?: boolean } = {},
): Promise<TalosctlResult> {
  const bin = options.seed ? await seedTalosctlPath() : await talosctlPath();
  return runCapturing(bin, args, options.timeoutMs ?? 60_000);
}

const VALIDATOR_SCRIPT = fileURLToPath(new URL("./build-config-validator.sh", import.meta.url));

/** Talos' config validation from the pinned pkg/machinery (the v1.14 multi-document contract). */
export const configValidatorPath = builtOnce(VALIDATOR_SCRIPT);

export async function validateConfigs(files: readonly string[]): Promise<TalosctlResult> {
  return runCapturing(await configValidatorPath(), ["--mode", "cloud", ...files], 60_000);
}
