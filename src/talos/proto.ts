// Loads our Talos proto subset for @grpc/grpc-js. longs as strings: etcd member ids are uint64 and do
// not fit a JS number.
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import { grpcJs, protoLoader as loadProtoLoader } from "./grpc.ts";

const PROTO_ROOT = fileURLToPath(new URL("./proto/", import.meta.url));
const FILES = ["machine/machine.proto", "machine/image.proto", "machine/lifecycle.proto", "cosi/state.proto"];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

interface ServiceCtor {
  new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions): grpc.Client;
  service: grpc.ServiceDefinition;
}

export interface TalosServices {
  MachineService: ServiceCtor;
  ImageService: ServiceCtor;
  LifecycleService: ServiceCtor;
  /** COSI cosi.resource.State (read side): Talos' resources, as `talosctl get` reads them. */
  State: ServiceCtor;
}

let cached: TalosServices | undefined;

export function loadTalosServices(): TalosServices {
  if (cached) return cached;
  const definition = loadProtoLoader().loadSync(FILES, LOADER_OPTIONS);
  const pkg = grpcJs().loadPackageDefinition(definition) as unknown as {
    machine: Omit<TalosServices, "State">;
    cosi: { resource: { State: ServiceCtor } };
  };
  cached = { ...pkg.machine, State: pkg.cosi.resource.State };
  return cached;
}
