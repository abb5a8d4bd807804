/** metav1.StatusCause; its type travels as `reason` in JSON. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** A failed call to the Kubernetes API, with what a user needs to act on it (never a request body). */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly code: number;
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  /** Status details.causes, when the server gave them (e.g. `ResourceVersionTooLarge`). */
  readonly causes: StatusCause[];

  constructor(opts: {
    code: number;
    reason: string;
    message: string;
    method: string;
    path: string;
    causes?: StatusCause[];
  }) {
    super(`${opts.method} ${opts.path}: ${opts.code} ${opts.reason}: ${opts.message}`);
    this.code = opts.code;
    this.reason = opts.reason;
    this.method = opts.method;
    this.path = opts.path;
    this.causes = opts.causes ?? [];
  }
}

/**
 * A reconcile error that retrying cannot fix (invalid spec, missing permission the user must grant):
 * logged and counted, never requeued. Same meaning as controller-runtime's reconcile.TerminalError.
 */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isTerminal(err: unknown): boolean {
  return err instanceof TerminalError;
}

function hasCode(err: unknown, code: number): boolean {
  return err instanceof ApiError && err.code === code;
}

export const isNotFound = (err: unknown): boolean => hasCode(err, 404);
export const isConflict = (err: unknown): boolean => hasCode(err, 409);
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.code === 409 && err.reason === "AlreadyExists";
/** 410 Gone: the resourceVersion (or list continue token) is older than what etcd still keeps. */
export const isGone = (err: unknown): boolean => hasCode(err, 410);

/**
 * 504 "Too large resource version": the server's cache has not reached the resourceVersion asked for (a
 * resume point from before an etcd restore, or from another API server that is ahead). Waiting does not
 * help when the history went backwards, so watchers relist, as client-go's isTooLargeResourceVersionError:
 * the ResourceVersionTooLarge cause, or (API servers before 1.19) a Timeout whose message says so.
 */
export function isTooLargeResourceVersion(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  if (err.causes.some((c) => c.reason === "ResourceVersionTooLarge")) return true;
  if (err.code !== 504 && err.reason !== "Timeout") return false;
  return (
    err.causes.some((c) => c.message === "Too large resource version") ||
    err.message.includes("Too large resource version")
  );
}

/** Raised by the watch stream when the server ends it with an ERROR event (a Status object). */
export class WatchStatusError extends ApiError {}

/** The API server does not serve this kind (its CRD or API group is not installed), read from discovery. */
export class KindNotServedError extends Error {
  constructor(kind: string, apiVersion: string) {
    super(`the API server does not serve kind ${kind} in ${apiVersion}`);
    this.name = "KindNotServedError";
  }
}

/** One line for logs: the message plus the network cause undici hides behind "fetch failed". */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  const detail = cause ? ` (${cause.code ?? cause.message ?? String(cause)})` : "";
  return `${err.name === "Error" ? "" : `${err.name}: `}${err.message}${detail}`;
}
