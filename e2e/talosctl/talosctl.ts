// Finds (building on first use) the pinned talosctl and runs it. The build is ~4 minutes cold on 2 cores,
// so CI runs e2e/talosctl/build-talosctl.sh before the tests; here it is only a cache lookup.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const BUILD_SCRIPT = fileURLToPath(new URL("./build-talosctl.sh", import.meta.url));

let cached: Promise<string> | undefined;

export function talosctlPath(): Promise<string> {
  cached ??= run("bash", [BUILD_SCRIPT], { maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 }).then((r) => {
    const path = r.stdout.trim().split("\n").pop();
    if (!path) throw new Error(`build-talosctl.sh printed no path:\n${r.stderr}`);
    return path;
  });
  return cached;
}

export interface TalosctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs talosctl; never throws on a non-zero exit (tests assert on code and output). */
export async function talosctl(
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<TalosctlResult> {
  const bin = await talosctlPath();
  try {
    const r = await run(bin, [...args], {
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
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

const VALIDATOR_SCRIPT = fileURLToPath(new URL("./build-config-validator.sh", import.meta.url));
let validator: Promise<string> | undefined;

/** Talos' config validation from the pinned pkg/machinery (the v1.14 multi-document contract). */
export function configValidatorPath(): Promise<string> {
  validator ??= run("bash", [VALIDATOR_SCRIPT], { maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 }).then(
    (r) => {
      const path = r.stdout.trim().split("\n").pop();
      if (!path) throw new Error(`build-config-validator.sh printed no path:\n${r.stderr}`);
      return path;
    },
  );
  return validator;
}

export async function validateConfigs(files: readonly string[]): Promise<TalosctlResult> {
  const bin = await configValidatorPath();
  try {
    const r = await run(bin, ["--mode", "cloud", ...files], { timeout: 60_000 });
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
