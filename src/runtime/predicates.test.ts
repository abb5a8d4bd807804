import { describe, expect, it } from "vitest";
import type { KubeObject } from "./object.ts";
import { specOrMetadataChanged } from "./predicates.ts";

const base: KubeObject = {
  metadata: { name: "a", generation: 3, resourceVersion: "10", labels: { x: "1" }, finalizers: ["f"] },
  status: { phase: "old" },
};
const changed = (meta: Record<string, unknown>, rest: Record<string, unknown> = {}): KubeObject => ({
  ...base,
  ...rest,
  metadata: { ...base.metadata, resourceVersion: "11", ...meta },
});

describe("specOrMetadataChanged", () => {
  const cases: Record<string, { old: KubeObject | undefined; obj: KubeObject; want: boolean }> = {
    "an add passes": { old: undefined, obj: base, want: true },
    "a resync (same object) passes": { old: base, obj: base, want: true },
    "a status-only update is dropped": {
      old: base,
      obj: changed({}, { status: { phase: "new" } }),
      want: false,
    },
    "a spec change (generation bump) passes": { old: base, obj: changed({ generation: 4 }), want: true },
    "deletion passes": { old: base, obj: changed({ deletionTimestamp: "2026-11-25T07:00:00Z" }), want: true },
    "a finalizer change passes": { old: base, obj: changed({ finalizers: [] }), want: true },
    "a label change passes": { old: base, obj: changed({ labels: { x: "2" } }), want: true },
    "an annotation added passes": { old: base, obj: changed({ annotations: { note: "n" } }), want: true },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(specOrMetadataChanged(c.old, c.obj)).toBe(c.want));
  }
});
