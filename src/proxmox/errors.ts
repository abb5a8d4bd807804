// Typed errors of the Proxmox client. Callers decide retry vs. stop by class, not by parsing text.
// Messages name the request (method and path) and Proxmox's reason; they never contain the token.

export class ProxmoxError extends Error {
  override name = "ProxmoxError";
}

/** Proxmox answered with an error status. */
export class ProxmoxApiError extends ProxmoxError {
  override name = "ProxmoxApiError";
  readonly status: number;
  /** Proxmox's own message, e.g. "VM is locked (create)". */
  readonly proxmoxMessage: string;
  /** Per-parameter problems of a 400 "Parameter verification failed.". */
  readonly errors: Record<string, string>;
  readonly method: string;
  readonly path: string;

  constructor(init: {
    status: number;
    proxmoxMessage: string;
    errors?: Record<string, string> | undefined;
    method: string;
    path: string;
  }) {
    const errors = init.errors ?? {};
    const details = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v.trim()}`)
      .join("; ");
    super(
      `Proxmox ${init.method} ${init.path} failed with ${init.status}: ${init.proxmoxMessage.trim()}${details ? ` (${details})` : ""}`,
    );
    this.status = init.status;
    this.proxmoxMessage = init.proxmoxMessage.trim();
    this.errors = errors;
    this.method = init.method;
    this.path = init.path;
  }
}

/** 400: the request's parameters were rejected; `errors` says which and why. */
export class ProxmoxParameterError extends ProxmoxApiError {
  override name = "ProxmoxParameterError";
}

/** 401: the token is unknown, expired or its secret is wrong. */
export class ProxmoxAuthenticationError extends ProxmoxApiError {
  override name = "ProxmoxAuthenticationError";
}

/** 403: the token lacks a privilege; the message names the ACL path and privilege. */
export class ProxmoxPermissionError extends ProxmoxApiError {
  override name = "ProxmoxPermissionError";
}

/**
 * The object does not exist. Proxmox reports a missing VM as a 500 "Configuration file
 * 'nodes/<node>/qemu-server/<vmid>.conf' does not exist" (pve-guest-common AbstractConfig load_config),
 * not a 404, so this is recognised by the message.
 */
export class ProxmoxNotFoundError extends ProxmoxApiError {
  override name = "ProxmoxNotFoundError";
}

/** The VM is locked by a running operation ("VM is locked (backup)"); retry after it finishes. */
export class ProxmoxLockedError extends ProxmoxApiError {
  override name = "ProxmoxLockedError";
  get lock(): string {
    return /is locked \(([^)]+)\)/.exec(this.proxmoxMessage)?.[1] ?? "unknown";
  }
}

/** 595: the API node could not reach the target cluster node (it is down or partitioned). */
export class ProxmoxNodeUnreachableError extends ProxmoxApiError {
  override name = "ProxmoxNodeUnreachableError";
}

/** Transport failure: no HTTP answer. `mayHaveApplied` is true when the request might have been processed. */
export class ProxmoxNetworkError extends ProxmoxError {
  override name = "ProxmoxNetworkError";
  readonly code: string | undefined;
  readonly mayHaveApplied: boolean;
  constructor(message: string, code: string | undefined, mayHaveApplied: boolean, cause?: unknown) {
    super(message, { cause });
    this.code = code;
    this.mayHaveApplied = mayHaveApplied;
  }
}

/** The server's certificate did not match the pinned fingerprint or the CA bundle. */
export class ProxmoxTlsError extends ProxmoxError {
  override name = "ProxmoxTlsError";
}

/** A response did not have the shape the client relies on. */
export class ProxmoxResponseError extends ProxmoxError {
  override name = "ProxmoxResponseError";
}

/** A task ended with an exit status other than OK / WARNINGS. */
export class ProxmoxTaskFailedError extends ProxmoxError {
  override name = "ProxmoxTaskFailedError";
  readonly upid: string;
  readonly exitstatus: string;
  /** The task log's last lines, oldest first. */
  readonly logTail: string[];
  constructor(upid: string, exitstatus: string, logTail: string[]) {
    super(`Proxmox task ${upid} failed: ${exitstatus}${logTail.length ? `\n${logTail.join("\n")}` : ""}`);
    this.upid = upid;
    this.exitstatus = exitstatus;
    this.logTail = logTail;
  }
}

/** waitForTask's deadline passed while the task was still running. */
export class ProxmoxTaskTimeoutError extends ProxmoxError {
  override name = "ProxmoxTaskTimeoutError";
  readonly upid: string;
  constructor(upid: string, timeoutMs: number) {
    super(`Proxmox task ${upid} still running after ${timeoutMs} ms`);
    this.upid = upid;
  }
}

const NOT_FOUND = [/does not exist/i, /^no such /i];

/** Picks the error class for a Proxmox error answer. */
export function apiErrorFor(init: {
  status: number;
  proxmoxMessage: string;
  errors?: Record<string, string> | undefined;
  method: string;
  path: string;
}): ProxmoxApiError {
  const msg = init.proxmoxMessage.trim();
  if (init.status === 400) return new ProxmoxParameterError(init);
  if (init.status === 401) return new ProxmoxAuthenticationError(init);
  if (init.status === 403) return new ProxmoxPermissionError(init);
  if (init.status === 404 || (init.status === 500 && NOT_FOUND.some((re) => re.test(msg))))
    return new ProxmoxNotFoundError(init);
  if (init.status === 500 && /is locked \(/.test(msg)) return new ProxmoxLockedError(init);
  if (init.status === 595) return new ProxmoxNodeUnreachableError(init);
  return new ProxmoxApiError(init);
}
