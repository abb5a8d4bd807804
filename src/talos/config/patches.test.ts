import { describe, expect, it } from "vitest";
import { applyJson6902, applyPatches, ConfigPatchError, strategicMerge } from "./patches.ts";

describe("strategicMerge", () => {
  it.each([
    ["merges maps key by key", { a: { b: 1, c: 2 } }, { a: { c: 3, d: 4 } }, { a: { b: 1, c: 3, d: 4 } }],
    ["appends lists", { l: [1, 2] }, { l: [3] }, { l: [1, 2, 3] }],
    ["replaces scalars", { s: "x" }, { s: "y" }, { s: "y" }],
    ["deletes a key with $patch: delete", { a: { b: 1 }, c: 2 }, { a: { $patch: "delete" } }, { c: 2 }],
    ["adds new keys", {}, { n: { m: true } }, { n: { m: true } }],
  ])("%s", (_name, base, patch, expected) => {
    expect(strategicMerge(base, patch)).toEqual(expected);
  });
});

describe("applyJson6902", () => {
  const doc = { machine: { certSANs: ["a"], kubelet: { image: "k" } } };
  it.each([
    [
      "add to a map",
      [{ op: "add", path: "/machine/sysctls", value: { x: "1" } }],
      { ...doc, machine: { ...doc.machine, sysctls: { x: "1" } } },
    ],
    [
      "append to a list with -",
      [{ op: "add", path: "/machine/certSANs/-", value: "b" }],
      { machine: { ...doc.machine, certSANs: ["a", "b"] } },
    ],
    [
      "replace",
      [{ op: "replace", path: "/machine/kubelet/image", value: "z" }],
      { machine: { ...doc.machine, kubelet: { image: "z" } } },
    ],
    ["remove", [{ op: "remove", path: "/machine/kubelet" }], { machine: { certSANs: ["a"] } }],
    [
      "copy",
      [{ op: "copy", from: "/machine/kubelet/image", path: "/machine/img" }],
      { machine: { ...doc.machine, img: "k" } },
    ],
    [
      "move",
      [{ op: "move", from: "/machine/kubelet", path: "/kubelet" }],
      { machine: { certSANs: ["a"] }, kubelet: { image: "k" } },
    ],
  ] as const)("%s", (_name, ops, expected) => {
    expect(applyJson6902(doc, ops)).toEqual(expected);
    expect(doc.machine.certSANs).toEqual(["a"]);
  });

  it.each([
    ["a missing path", [{ op: "remove", path: "/machine/nope" }]],
    ["replace of a missing key", [{ op: "replace", path: "/machine/nope", value: 1 }]],
    ["a failed test", [{ op: "test", path: "/machine/kubelet/image", value: "other" }]],
  ] as const)("rejects %s", (_name, ops) => {
    expect(() => applyJson6902(doc, ops)).toThrow(ConfigPatchError);
  });
});

describe("applyPatches", () => {
  const docs = [
    { version: "v1alpha1", machine: { type: "controlplane" } },
    { kind: "HostnameConfig", auto: "stable" },
  ];

  it("merges a v1alpha1 patch and a kind-addressed document in one YAML stream", () => {
    const out = applyPatches(docs, [
      "machine:\n  sysctls:\n    a: b\n---\nkind: HostnameConfig\nauto: off\n---\napiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: ghcr.io\n",
    ]);
    expect(out).toEqual([
      { version: "v1alpha1", machine: { type: "controlplane", sysctls: { a: "b" } } },
      { kind: "HostnameConfig", auto: "off" },
      { apiVersion: "v1alpha1", kind: "RegistryMirrorConfig", name: "ghcr.io" },
    ]);
  });

  it("removes a document with $patch: delete", () => {
    expect(applyPatches(docs, ["kind: HostnameConfig\n$patch: delete\n"])).toEqual([docs[0]]);
  });

  it("applies JSON 6902 operations to the v1alpha1 document", () => {
    const out = applyPatches(docs, [[{ op: "add", path: "/machine/x", value: 1 }]]);
    expect(out[0]).toEqual({ version: "v1alpha1", machine: { type: "controlplane", x: 1 } });
  });

  it("reports invalid YAML", () => {
    expect(() => applyPatches(docs, ["machine: [unclosed"])).toThrow(ConfigPatchError);
  });
});
