// User config patches, with Talos' two flavours (docs "Configuration Patches"):
// - strategic merge: YAML documents merged over the config; maps merge key by key, lists are appended,
//   `$patch: delete` on a map removes that key; a document with `kind` targets the document of the same
//   kind (and `name`), or is appended when none exists;
// - JSON 6902 (RFC 6902): operations on the v1alpha1 document only (Talos refuses them on multi-document
//   configs' other documents).

import { parseAllDocuments } from "yaml";
import type { ConfigPatch, Json6902Operation } from "./input.ts";

export type YamlMap = Record<string, unknown>;

export class ConfigPatchError extends Error {
  override name = "ConfigPatchError";
}

const isMap = (v: unknown): v is YamlMap => v !== null && typeof v === "object" && !Array.isArray(v);

export function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isMap(patch) && patch.$patch === "delete") return undefined;
  if (isMap(base) && isMap(patch)) {
    const out: YamlMap = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k === "$patch") continue;
      const merged = strategicMerge(base[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) return [...base, ...patch];
  return structuredClone(patch);
}

/** A document's identity for targeting: v1alpha1 has no `kind`. */
function docKey(doc: YamlMap): string {
  if (typeof doc.kind !== "string") return "v1alpha1";
  return typeof doc.name === "string" ? `${doc.kind}/${doc.name}` : doc.kind;
}

function applyStrategic(docs: YamlMap[], patchText: string): YamlMap[] {
  const out = [...docs];
  for (const parsed of parseAllDocuments(patchText)) {
    if (parsed.errors.length > 0)
      throw new ConfigPatchError(`patch is not valid YAML: ${parsed.errors[0]?.message}`);
    const patch = parsed.toJS() as unknown;
    if (patch === null || patch === undefined) continue;
    if (!isMap(patch)) throw new ConfigPatchError("a strategic-merge patch document must be a mapping");
    const key = docKey(patch);
    const index = out.findIndex((d) => docKey(d) === key);
    if (index < 0) {
      if (key === "v1alpha1") throw new ConfigPatchError("config has no v1alpha1 document to patch");
      out.push(structuredClone(patch));
      continue;
    }
    const merged = strategicMerge(out[index], patch);
    if (merged === undefined) out.splice(index, 1);
    else out[index] = merged as YamlMap;
  }
  return out;
}

function decodePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new ConfigPatchError(`JSON pointer must start with "/": ${pointer}`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function resolveParent(root: unknown, tokens: string[], pointer: string): { parent: unknown; last: string } {
  let node = root;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(t)];
    else if (isMap(node)) node = node[t];
    else node = undefined;
    if (node === undefined) throw new ConfigPatchError(`path ${pointer} does not exist`);
  }
  const last = tokens[tokens.length - 1];
  if (last === undefined) throw new ConfigPatchError("the root document cannot be the target");
  return { parent: node, last };
}

function getAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const t of decodePointer(pointer)) {
    if (Array.isArray(node)) node = node[Number(t)];
    else if (isMap(node)) node = node[t];
    else node = undefined;
    if (node === undefined) throw new ConfigPatchError(`path ${pointer} does not exist`);
  }
  return node;
}

function addAt(root: unknown, pointer: string, value: unknown, replace: boolean): void {
  const { parent, last } = resolveParent(root, decodePointer(pointer), pointer);
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length - (replace ? 1 : 0)) {
      throw new ConfigPatchError(`array index out of range in ${pointer}`);
    }
    parent.splice(index, replace ? 1 : 0, structuredClone(value));
  } else if (isMap(parent)) {
    if (replace && !(last in parent)) throw new ConfigPatchError(`path ${pointer} does not exist`);
    parent[last] = structuredClone(value);
  } else {
    throw new ConfigPatchError(`path ${pointer} does not exist`);
  }
}

function removeAt(root: unknown, pointer: string): void {
  const { parent, last } = resolveParent(root, decodePointer(pointer), pointer);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!(index >= 0 && index < parent.length))
      throw new ConfigPatchError(`array index out of range in ${pointer}`);
    parent.splice(index, 1);
  } else if (isMap(parent) && last in parent) {
    delete parent[last];
  } else {
    throw new ConfigPatchError(`path ${pointer} does not exist`);
  }
}

export function applyJson6902(doc: YamlMap, ops: readonly Json6902Operation[]): YamlMap {
  const out = structuredClone(doc);
  for (const op of ops) {
    switch (op.op) {
      case "add":
        addAt(out, op.path, op.value, false);
        break;
      case "replace":
        addAt(out, op.path, op.value, true);
        break;
      case "remove":
        removeAt(out, op.path);
        break;
      case "move": {
        if (op.from === undefined) throw new ConfigPatchError("move needs from");
        const value = getAt(out, op.from);
        removeAt(out, op.from);
        addAt(out, op.path, value, false);
        break;
      }
      case "copy":
        if (op.from === undefined) throw new ConfigPatchError("copy needs from");
        addAt(out, op.path, getAt(out, op.from), false);
        break;
      case "test":
        if (JSON.stringify(getAt(out, op.path)) !== JSON.stringify(op.value)) {
          throw new ConfigPatchError(`test failed at ${op.path}`);
        }
        break;
      default:
        throw new ConfigPatchError(`unknown JSON patch op ${(op as { op: string }).op}`);
    }
  }
  return out;
}

/** Applies patches in order to a multi-document config. */
export function applyPatches(docs: readonly YamlMap[], patches: readonly ConfigPatch[]): YamlMap[] {
  let out = docs.map((d) => structuredClone(d));
  for (const patch of patches) {
    if (typeof patch === "string") {
      out = applyStrategic(out, patch);
    } else {
      const index = out.findIndex((d) => docKey(d) === "v1alpha1");
      const target = out[index];
      if (!target) throw new ConfigPatchError("config has no v1alpha1 document to patch");
      out[index] = applyJson6902(target, patch);
    }
  }
  return out;
}
