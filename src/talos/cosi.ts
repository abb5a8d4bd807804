// The resource specs Talos serves over COSI that we decode: a Resource's spec.proto_spec is the
// protobuf encoding of the type's talos.resource.definitions.* message. Only ManifestSpec so far
// (Manifests.kubernetes.talos.dev): items, each a google.protobuf.Struct holding one Kubernetes object.
// protobufjs (what @grpc/proto-loader is built on) is loaded on first use, like grpc-js (grpc.ts).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type * as Protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const K8S_PROTO = fileURLToPath(new URL("./proto/resource/definitions/k8s/k8s.proto", import.meta.url));

export const MANIFESTS_TYPE = "Manifests.kubernetes.talos.dev";
/** Talos keeps the bootstrap manifests in the control-plane namespace (k8s.ControlPlaneNamespaceName). */
export const CONTROL_PLANE_NAMESPACE = "controlplane";

let manifestSpec: Protobuf.Type | undefined;

function manifestSpecType(): Protobuf.Type {
  if (manifestSpec) return manifestSpec;
  const protobuf = require("protobufjs") as typeof Protobuf;
  const root = new protobuf.Root();
  // google/protobuf/struct.proto is one of protobufjs' bundled well-known types.
  root.resolvePath = (origin, target) =>
    target.startsWith("google/protobuf/") ? target : protobuf.util.path.resolve(origin, target);
  root.loadSync(K8S_PROTO, { keepCase: false });
  manifestSpec = root.lookupType("talos.resource.definitions.k8s.ManifestSpec");
  return manifestSpec;
}

// biome-ignore lint/suspicious/noExplicitAny: google.protobuf.Value is a JSON value
type Json = any;
type ProtoValue = {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, ProtoValue> };
  listValue?: { values?: ProtoValue[] };
};

function toValue(v: Json): ProtoValue {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

function toStruct(o: Record<string, Json>): { fields: Record<string, ProtoValue> } {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toValue(v);
  return { fields };
}

function fromValue(v: ProtoValue): Json {
  if (v.structValue) return fromStruct(v.structValue);
  if (v.listValue) return (v.listValue.values ?? []).map(fromValue);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

function fromStruct(s: { fields?: Record<string, ProtoValue> }): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = fromValue(v);
  return out;
}

/** The objects of a ManifestSpec, encoded as Talos' proto_spec. */
export function encodeManifestSpec(objects: readonly Record<string, Json>[]): Buffer {
  const type = manifestSpecType();
  const message = type.fromObject({ items: objects.map((o) => ({ object: toStruct(o) })) });
  return Buffer.from(type.encode(message).finish());
}

/** A Manifests resource's proto_spec back to its Kubernetes objects, in the order Talos keeps them. */
export function decodeManifestSpec(bytes: Uint8Array): Record<string, Json>[] {
  const type = manifestSpecType();
  const decoded = type.toObject(type.decode(bytes), { defaults: false, oneofs: false }) as {
    items?: { object?: { fields?: Record<string, ProtoValue> } }[];
  };
  return (decoded.items ?? []).map((i) => fromStruct(i.object ?? {}));
}
