// @grpc/grpc-js and @grpc/proto-loader (with protobufjs) are loaded when the first Talos client is
// built, not when the operator starts: a cluster with no HomelabCluster never talks to Talos, and the
// two cost ~6 MiB of heap and 2-4 MiB RSS at start (README, Benchmarks). Both are CommonJS, so
// require() loads them synchronously where they are first needed and keeps the callers synchronous.
import { createRequire } from "node:module";
import type * as GrpcJs from "@grpc/grpc-js";
import type * as ProtoLoader from "@grpc/proto-loader";

const require = createRequire(import.meta.url);

export function grpcJs(): typeof GrpcJs {
  return require("@grpc/grpc-js") as typeof GrpcJs;
}

export function protoLoader(): typeof ProtoLoader {
  return require("@grpc/proto-loader") as typeof ProtoLoader;
}
