import { describe, expect, it } from "vitest";
import { SimHa } from "./ha.ts";

const NODES = ["pve1", "pve2", "pve3", "pve4"];

function ha(rules: Record<string, string>[]): SimHa {
  const h = new SimHa(NODES);
  rules.forEach((r, i) => {
    h.addRule({ rule: `r${i}`, ...r });
  });
  return h;
}

describe("recoveryNode: where the HA manager restarts a fenced VM", () => {
  const where: Record<string, string> = { "vm:1": "pve1", "vm:2": "pve2", "vm:3": "pve3" };
  const load = (n: string) => Object.values(where).filter((x) => x === n).length;
  it.each<[string, Record<string, string>[], string[], string | undefined]>([
    ["no rules: the least loaded online node", [], ["pve2", "pve3", "pve4"], "pve4"],
    [
      "negative affinity avoids the peers' nodes",
      [{ type: "resource-affinity", affinity: "negative", resources: "vm:1,vm:2,vm:3" }],
      ["pve2", "pve3", "pve4"],
      "pve4",
    ],
    [
      "negative affinity with no free node: nowhere",
      [{ type: "resource-affinity", affinity: "negative", resources: "vm:1,vm:2,vm:3" }],
      ["pve2", "pve3"],
      undefined,
    ],
    [
      "positive affinity joins the peers",
      [{ type: "resource-affinity", affinity: "positive", resources: "vm:1,vm:3" }],
      ["pve2", "pve3", "pve4"],
      "pve3",
    ],
    [
      "node affinity prefers the highest priority",
      [{ type: "node-affinity", nodes: "pve2:1,pve3:5", resources: "vm:1" }],
      ["pve2", "pve3", "pve4"],
      "pve3",
    ],
    [
      "non-strict node affinity falls back to any node",
      [{ type: "node-affinity", nodes: "pve1", resources: "vm:1" }],
      ["pve2", "pve4"],
      "pve4",
    ],
    [
      "strict node affinity never leaves its nodes",
      [{ type: "node-affinity", nodes: "pve1", strict: "1", resources: "vm:1" }],
      ["pve2", "pve3", "pve4"],
      undefined,
    ],
    [
      "disabled rules do not count",
      [{ type: "node-affinity", nodes: "pve1", strict: "1", disable: "1", resources: "vm:1" }],
      ["pve2", "pve3", "pve4"],
      "pve4",
    ],
  ])("%s", (_name, rules, online, expected) => {
    expect(ha(rules).recoveryNode("vm:1", online, (sid) => where[sid], load)).toBe(expected);
  });
});
