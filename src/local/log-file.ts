// Where local mode's JSON logs go. On a terminal they would drown the progress lines, so they go to a
// file next to the local homelab's state (not inside it: --reset removes that folder); elsewhere (a
// pipe, CI, a test) they stay on stdout as in every other mode.
import { dirname, join } from "node:path";
import { pino } from "pino";
import { detectCluster } from "../config.ts";
import { localStateDir } from "./state-dir.ts";

export function localLogFile(env: NodeJS.ProcessEnv, stdoutIsTerminal: boolean): string | undefined {
  if (!stdoutIsTerminal || detectCluster(env).mode !== "local") return undefined;
  return join(dirname(localStateDir(env)), "operator.log");
}

export function localLogDestination(env: NodeJS.ProcessEnv, stdoutIsTerminal: boolean) {
  const file = localLogFile(env, stdoutIsTerminal);
  return file
    ? { file, destination: pino.destination({ dest: file, append: true, mkdir: true }) }
    : undefined;
}
