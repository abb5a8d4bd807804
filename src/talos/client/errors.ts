// Talos API failures as typed results a controller can act on. Sources for the meanings:
// Unimplemented = the node serves the maintenance API (not configured yet, or reset) or the RPC is newer
// than its Talos (terraform-provider-talos #236, talos #8403); Unavailable = rebooting / not listening;
// AlreadyExists from Bootstrap = etcd already bootstrapped; NotFound from EtcdRemoveMemberByID = no such
// member (v1alpha1_server.go @v1.12.0).

import type { ServiceError } from "@grpc/grpc-js";
import { grpcJs } from "../grpc.ts";

export type TalosErrorKind =
  | "unimplemented"
  | "unavailable"
  | "deadline-exceeded"
  | "unauthenticated"
  | "permission-denied"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "invalid-argument"
  | "upgrade-failed"
  | "unknown";

let kindByCode: Partial<Record<number, TalosErrorKind>> | undefined;

/** Built on first use: gRPC's status codes come from @grpc/grpc-js, loaded only with a client (../grpc.ts). */
function kindOf(code: number): TalosErrorKind | undefined {
  const Status = grpcJs().status;
  kindByCode ??= {
    [Status.UNIMPLEMENTED]: "unimplemented",
    [Status.UNAVAILABLE]: "unavailable",
    [Status.DEADLINE_EXCEEDED]: "deadline-exceeded",
    [Status.UNAUTHENTICATED]: "unauthenticated",
    [Status.PERMISSION_DENIED]: "permission-denied",
    [Status.NOT_FOUND]: "not-found",
    [Status.ALREADY_EXISTS]: "already-exists",
    [Status.FAILED_PRECONDITION]: "failed-precondition",
    [Status.INVALID_ARGUMENT]: "invalid-argument",
  };
  return kindByCode[code];
}

export class TalosApiError extends Error {
  override name = "TalosApiError";
  readonly kind: TalosErrorKind;
  /** gRPC status code, when the failure came from gRPC. */
  readonly code: number | undefined;
  readonly method: string;
  readonly endpoint: string;

  constructor(kind: TalosErrorKind, method: string, endpoint: string, detail: string, code?: number) {
    super(`Talos ${method} on ${endpoint}: ${kind}: ${detail}`);
    this.kind = kind;
    this.code = code;
    this.method = method;
    this.endpoint = endpoint;
  }

  /** The node answers only the maintenance API: it still waits for its first config. */
  get inMaintenance(): boolean {
    return this.kind === "unimplemented";
  }

  /** Transient: the node reboots, is down or too slow; retry later. */
  get retryable(): boolean {
    return this.kind === "unavailable" || this.kind === "deadline-exceeded";
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number";
}

export function toTalosError(err: unknown, method: string, endpoint: string): TalosApiError {
  if (err instanceof TalosApiError) return err;
  if (isServiceError(err)) {
    return new TalosApiError(
      kindOf(err.code) ?? "unknown",
      method,
      endpoint,
      err.details || err.message,
      err.code,
    );
  }
  return new TalosApiError("unknown", method, endpoint, err instanceof Error ? err.message : String(err));
}
