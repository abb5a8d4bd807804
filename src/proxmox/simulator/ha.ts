// HA resources and PVE 9 HA rules (pve-ha-manager src/PVE/API2/HA/{Resources,Rules}.pm,
// src/PVE/HA/Rules/{NodeAffinity,ResourceAffinity}.pm), plus where the HA manager would recover a
// service when its node is fenced: node-affinity priorities (strict = only those nodes), negative
// resource affinity = never next to the rule's other services, positive = next to them.
import { die, paramError } from "./failure.ts";
import { splitList } from "./formats.ts";

export interface HaResource {
  sid: string;
  state: string;
  comment?: string;
  max_restart: number;
  max_relocate: number;
  failback: number;
}

export interface HaRule {
  rule: string;
  type: "node-affinity" | "resource-affinity";
  resources: string;
  nodes?: string;
  strict?: number;
  affinity?: string;
  disable?: number;
  comment?: string;
  order: number;
}

/**
 * HA::Config parse_sid: a bare guest id becomes `vm:<id>` or `ct:<id>` by the guest's type in the
 * cluster's VM list (`kindOf`); an id no guest has stays `vm:<id>` (looked up, and refused, later).
 */
export function normalizeSid(
  sid: string,
  kindOf: (vmid: number) => "qemu" | "lxc" | undefined = () => undefined,
): string {
  if (!/^\d+$/.test(sid)) return sid;
  return `${kindOf(Number(sid)) === "lxc" ? "ct" : "vm"}:${sid}`;
}

/** The HA service id of a guest: `vm:<id>` for a VM, `ct:<id>` for a container. */
export const sidOf = (vmid: number, type: "qemu" | "lxc") => `${type === "lxc" ? "ct" : "vm"}:${vmid}`;

export class SimHa {
  readonly resources = new Map<string, HaResource>();
  readonly rules = new Map<string, HaRule>();
  private readonly nodes: string[];
  private readonly kindOf: (vmid: number) => "qemu" | "lxc" | undefined;
  private order = 0;

  constructor(nodes: string[], kindOf: (vmid: number) => "qemu" | "lxc" | undefined = () => undefined) {
    this.nodes = nodes;
    this.kindOf = kindOf;
  }

  resource(sid: string): HaResource {
    const r = this.resources.get(normalizeSid(sid, this.kindOf));
    if (!r) die(`no such resource '${normalizeSid(sid, this.kindOf)}'`);
    return r!;
  }

  add(params: Record<string, string>): HaResource {
    const sid = normalizeSid(params["sid"]!, this.kindOf);
    if (params["group"] !== undefined) die("ha groups have been migrated to rules");
    if (this.resources.has(sid)) die(`resource ID '${sid}' already defined`);
    const r: HaResource = { sid, state: "started", max_restart: 1, max_relocate: 1, failback: 1 };
    applyResourceParams(r, params);
    this.resources.set(sid, r);
    return r;
  }

  update(sid: string, params: Record<string, string>): void {
    const r = this.resource(sid);
    for (const key of splitList(params["delete"] ?? "")) if (key === "comment") delete r.comment;
    applyResourceParams(r, params);
  }

  delete(sid: string, purge: boolean): void {
    const r = this.resource(sid);
    this.resources.delete(r.sid);
    if (purge) this.removeFromRules(r.sid);
  }

  /** A purged guest leaves every rule; a rule left without resources goes too. */
  removeFromRules(sid: string): void {
    for (const rule of [...this.rules.values()]) {
      const left = splitList(rule.resources).filter((s) => s !== sid);
      if (left.length === 0) this.rules.delete(rule.rule);
      else rule.resources = left.join(",");
    }
  }

  rule(id: string): HaRule {
    const rule = this.rules.get(id);
    if (!rule) die(`no such ha rule '${id}'`);
    return rule!;
  }

  private checkRuleFields(type: string, params: Record<string, string>): void {
    const foreign = type === "node-affinity" ? ["affinity"] : ["nodes", "strict"];
    const errors: Record<string, string> = {};
    for (const key of foreign) {
      if (params[key] !== undefined) errors[key] = `property is not allowed for type '${type}'`;
    }
    for (const node of splitList(params["nodes"] ?? "")) {
      const name = node.split(":")[0]!;
      if (!this.nodes.includes(name)) errors["nodes"] = `node '${name}' does not exist`;
    }
    if (Object.keys(errors).length) paramError(errors);
  }

  addRule(params: Record<string, string>): void {
    const id = params["rule"]!;
    const type = params["type"] as HaRule["type"];
    if (this.rules.has(id)) die(`ha rule '${id}' already defined`);
    this.checkRuleFields(type, params);
    if (type === "node-affinity" && !params["nodes"])
      paramError({ nodes: "property is missing and it is not optional" });
    if (type === "resource-affinity" && !params["affinity"])
      paramError({ affinity: "property is missing and it is not optional" });
    const rule: HaRule = { rule: id, type, resources: params["resources"]!, order: ++this.order };
    applyRuleParams(rule, params);
    this.rules.set(id, rule);
  }

  updateRule(id: string, params: Record<string, string>): void {
    const rule = this.rule(id);
    if (params["type"] !== rule.type)
      die(`rule type '${params["type"]}' does not match existing rule type '${rule.type}'`);
    this.checkRuleFields(rule.type, params);
    for (const key of splitList(params["delete"] ?? "")) {
      delete (rule as unknown as Record<string, unknown>)[key];
    }
    applyRuleParams(rule, params);
  }

  deleteRule(id: string): void {
    this.rule(id);
    this.rules.delete(id);
  }

  /** Everything the HA manager knows, for saving the simulator's state. */
  snapshot(): { resources: HaResource[]; rules: HaRule[]; order: number } {
    return {
      resources: [...this.resources.values()].map((r) => ({ ...r })),
      rules: [...this.rules.values()].map((r) => ({ ...r })),
      order: this.order,
    };
  }

  restore(state: { resources: HaResource[]; rules: HaRule[]; order: number }): void {
    this.resources.clear();
    this.rules.clear();
    for (const r of state.resources) this.resources.set(r.sid, { ...r });
    for (const r of state.rules) this.rules.set(r.rule, { ...r });
    this.order = state.order;
  }

  /** `hastate` in cluster resources / `ha` in VM status. */
  status(vmid: number, type: "qemu" | "lxc" = "qemu"): { managed: number; state?: string } {
    const r = this.resources.get(sidOf(vmid, type));
    return r ? { managed: 1, state: r.state } : { managed: 0 };
  }

  /**
   * The node a fenced service is recovered to, or undefined when no node may take it. `nodeOf` tells
   * where other services currently are; `load` how many services a node runs (ties go to the emptier).
   */
  recoveryNode(
    sid: string,
    online: string[],
    nodeOf: (sid: string) => string | undefined,
    load: (node: string) => number,
  ): string | undefined {
    const active = [...this.rules.values()].filter((r) => !r.disable && splitList(r.resources).includes(sid));
    let candidates = [...online];
    const priority = new Map<string, number>();
    for (const rule of active.filter((r) => r.type === "node-affinity")) {
      const listed = splitList(rule.nodes ?? "").map((n) => {
        const [name, pri] = n.split(":");
        return [name!, Number(pri ?? 0)] as const;
      });
      for (const [name, pri] of listed) priority.set(name, Math.max(priority.get(name) ?? 0, pri + 1));
      if (rule.strict) candidates = candidates.filter((n) => listed.some(([name]) => name === n));
    }
    for (const rule of active.filter((r) => r.type === "resource-affinity")) {
      const peers = splitList(rule.resources)
        .filter((s) => s !== sid)
        .map(nodeOf)
        .filter((n): n is string => n !== undefined);
      if (rule.affinity === "negative") candidates = candidates.filter((n) => !peers.includes(n));
      else if (peers.length) candidates = candidates.filter((n) => peers.includes(n));
    }
    const best = Math.max(0, ...candidates.map((n) => priority.get(n) ?? 0));
    return candidates
      .filter((n) => (priority.get(n) ?? 0) === best)
      .sort((a, b) => load(a) - load(b) || a.localeCompare(b))[0];
  }
}

function applyResourceParams(r: HaResource, params: Record<string, string>): void {
  if (params["state"] !== undefined) r.state = params["state"] === "enabled" ? "started" : params["state"];
  if (params["comment"] !== undefined) r.comment = params["comment"];
  if (params["max_restart"] !== undefined) r.max_restart = Number(params["max_restart"]);
  if (params["max_relocate"] !== undefined) r.max_relocate = Number(params["max_relocate"]);
  if (params["failback"] !== undefined) r.failback = Number(params["failback"]);
}

function applyRuleParams(rule: HaRule, params: Record<string, string>): void {
  if (params["resources"] !== undefined) rule.resources = params["resources"];
  if (params["nodes"] !== undefined) rule.nodes = params["nodes"];
  if (params["strict"] !== undefined) rule.strict = Number(params["strict"]);
  if (params["affinity"] !== undefined) rule.affinity = params["affinity"];
  if (params["disable"] !== undefined) rule.disable = Number(params["disable"]);
  if (params["comment"] !== undefined) rule.comment = params["comment"];
}
