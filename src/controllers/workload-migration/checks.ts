// The user's checks (HTTP status and body, TCP connect), each with its own deadline.
import { connect } from "node:net";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";

export type Check = WorkloadMigration["spec"]["verify"]["checks"][number];

const CHECK_TIMEOUT_MS = 5_000;

/** Undefined when the check passed, else what was wrong. */
export async function runCheck(check: Check, signal: AbortSignal): Promise<string | undefined> {
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]);
  if (check.http) {
    const { url, status, bodyContains } = check.http;
    try {
      const res = await fetch(url, { signal: timeout, redirect: "manual" });
      const body = await res.text();
      if (res.status !== status) return `${check.name}: GET ${url} answered ${res.status}, want ${status}`;
      if (bodyContains !== undefined && !body.includes(bodyContains))
        return `${check.name}: GET ${url} body lacks ${JSON.stringify(bodyContains)}`;
      return undefined;
    } catch (err) {
      signal.throwIfAborted();
      return `${check.name}: GET ${url} failed: ${(err as Error).message}`;
    }
  }
  const { host, port } = check.tcp!;
  return new Promise((resolve) => {
    const socket = connect({ host, port, signal: timeout });
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("error", (err) => resolve(`${check.name}: TCP ${host}:${port} failed: ${err.message}`));
  });
}
