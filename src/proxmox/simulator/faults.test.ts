import { describe, expect, it } from "vitest";
import { Faults } from "./faults.ts";

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe("Faults", () => {
  it("hits a path rule with its rate, by method and path regex", () => {
    const faults = new Faults(sequence(0.1, 0.9, 0.4, 0.6));
    faults.set({ errors: [{ method: "GET", path: "^/cluster/", rate: 0.5, status: 503 }] });
    const hits = [1, 2, 3, 4].map(() => faults.injectedError("GET", "/cluster/resources")?.status);
    expect(hits).toEqual([503, undefined, 503, undefined]);
    expect(faults.injectedError("POST", "/cluster/resources")).toBeUndefined();
    expect(faults.injectedError("GET", "/nodes")).toBeUndefined();
  });

  it("a rule with a count disappears after that many hits", () => {
    const faults = new Faults();
    faults.set({ dropConnections: [{ path: "qemu", count: 2 }] });
    expect([1, 2, 3].map(() => faults.dropsConnection("POST", "/nodes/pve1/qemu"))).toEqual([
      true,
      true,
      false,
    ]);
    expect(faults.current().dropConnections).toEqual([]);
  });

  it("task faults match by type and id; hangs last until cleared and notify listeners", () => {
    const faults = new Faults();
    let changes = 0;
    faults.onChange = () => changes++;
    faults.set({
      failTasks: [{ type: "qmstart", id: "100", message: "boom", count: 1 }],
      hangTasks: [{ type: "vzdump" }],
    });
    expect(faults.taskFailure("qmstart", "101")).toBeUndefined();
    expect(faults.taskFailure("qmstart", "100")).toBe("boom");
    expect(faults.taskFailure("qmstart", "100")).toBeUndefined();
    expect(faults.taskHangs("vzdump", "7")).toBe(true);
    expect(faults.taskHangs("vzdump", "7")).toBe(true);
    faults.reset();
    expect(faults.taskHangs("vzdump", "7")).toBe(false);
    expect(changes).toBe(2);
  });

  it("rejects settings outside their ranges", () => {
    expect(() => new Faults().set({ errors: [{ path: "x", rate: 2 }] })).toThrow();
  });
});
