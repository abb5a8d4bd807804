import { homedir } from "node:os";
import { join } from "node:path";

/** `$XDG_DATA_HOME/homelab-operator/local`, else `~/.local/share/homelab-operator/local`. */
export function localStateDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const data = env.XDG_DATA_HOME || join(home, ".local", "share");
  return join(data, "homelab-operator", "local");
}

/** `--reset` on the command line or HOMELAB_LOCAL_RESET=true. */
export function resetRequested(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return argv.includes("--reset") || /^(1|true|yes|on)$/i.test(env.HOMELAB_LOCAL_RESET ?? "");
}
