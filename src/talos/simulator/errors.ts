import { status as Status } from "@grpc/grpc-js";

/** A gRPC status the simulator answers with, carrying Talos' own message texts where known. */
export class SimStatusError extends Error {
  readonly code: Status;
  readonly details: string;
  constructor(code: Status, details: string) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

export const unimplementedInMaintenance = () =>
  // Text of Talos' maintenance server for RPCs it does not serve (internal/app/maintenance/server.go).
  new SimStatusError(Status.UNIMPLEMENTED, "API is not implemented in maintenance mode");

export const notAuthorized = () => new SimStatusError(Status.PERMISSION_DENIED, "not authorized");
