// What a phase reports: done (its Condition True), waiting (False, look again after a delay) or failed
// (False, retried with the runtime's backoff). Errors from the three APIs become a reason a user can act on.
import {
  ProxmoxApiError,
  ProxmoxAuthenticationError,
  ProxmoxNetworkError,
  ProxmoxNodeUnreachableError,
  ProxmoxPermissionError,
  ProxmoxTaskFailedError,
  ProxmoxTaskTimeoutError,
  ProxmoxTlsError,
} from "../../proxmox/index.ts";
import { ApiError } from "../../runtime/index.ts";
import { TalosApiError } from "../../talos/client/errors.ts";

export type Outcome =
  | { done: true; reason: string; message: string }
  | {
      done: false;
      reason: string;
      message: string;
      requeueAfterMs: number;
      error?: unknown;
      /** Something is wrong (not just in progress): worth a Warning Event. */
      warn?: boolean;
    };

export const done = (reason: string, message: string): Outcome => ({ done: true, reason, message });

export const waiting = (reason: string, message: string, requeueAfterMs: number): Outcome => ({
  done: false,
  reason,
  message,
  requeueAfterMs,
});

/** A blocked phase: the user must change something; checked again after `requeueAfterMs`. */
export const blocked = (reason: string, message: string, requeueAfterMs: number): Outcome => ({
  done: false,
  reason,
  message,
  requeueAfterMs,
  warn: true,
});

/** Reasons that mean "the connection to Proxmox itself is wrong": Validate must look again. */
export const CONNECTION_REASONS = new Set([
  "CredentialsMissing",
  "ProxmoxAuthenticationFailed",
  "ProxmoxPrivilegeMissing",
  "ProxmoxTLSUntrusted",
  "ProxmoxUnreachable",
]);

export function describeFailure(err: unknown): { reason: string; message: string } {
  if (err instanceof CredentialsError) return { reason: "CredentialsMissing", message: err.message };
  if (err instanceof ProxmoxAuthenticationError)
    return {
      reason: "ProxmoxAuthenticationFailed",
      message: `Proxmox rejected the API token (401): check tokenID and secret in the credentials Secret`,
    };
  if (err instanceof ProxmoxPermissionError)
    return {
      reason: "ProxmoxPrivilegeMissing",
      message: `the API token lacks a privilege: ${err.proxmoxMessage}`,
    };
  if (err instanceof ProxmoxTlsError) return { reason: "ProxmoxTLSUntrusted", message: err.message };
  if (err instanceof ProxmoxNetworkError || err instanceof ProxmoxNodeUnreachableError)
    return { reason: "ProxmoxUnreachable", message: err.message };
  if (err instanceof ProxmoxTaskFailedError) {
    const tail = err.logTail.slice(-3).join(" | ");
    return { reason: "ProxmoxTaskFailed", message: `${err.message}${tail ? `: ${tail}` : ""}` };
  }
  if (err instanceof ProxmoxTaskTimeoutError) return { reason: "ProxmoxTaskTimeout", message: err.message };
  if (err instanceof ProxmoxApiError) return { reason: "ProxmoxError", message: err.message };
  if (err instanceof TalosApiError)
    return { reason: err.retryable ? "TalosUnavailable" : "TalosError", message: err.message };
  if (err instanceof ApiError) return { reason: "KubernetesError", message: err.message };
  return { reason: "ReconcileError", message: err instanceof Error ? err.message : String(err) };
}

export function failed(err: unknown): Outcome {
  const { reason, message } = describeFailure(err);
  return { done: false, reason, message: message.slice(0, 2048), requeueAfterMs: 0, error: err, warn: true };
}

/** The credentials Secret (or its CA bundle) is missing or incomplete: the user must create it. */
export class CredentialsError extends Error {
  override name = "CredentialsError";
}
