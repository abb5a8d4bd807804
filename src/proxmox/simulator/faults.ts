// Fault injection, changed by tests in-process (`sim.faults.set(...)`) or over the admin endpoint
// (`PUT /simulator/faults`). Rules with `count` apply that many times, then disappear.
import { z } from "zod";

const pathRule = z.object({
  /** HTTP method to match; any when absent. */
  method: z.string().optional(),
  /** Regular expression tested against the path after /api2/json. */
  path: z.string(),
  /** Probability 0..1 that a matching request is hit; 1 when absent. */
  rate: z.number().min(0).max(1).optional(),
  count: z.number().int().positive().optional(),
});

const taskRule = z.object({
  /** Task type (qmcreate, qmstart, download, vzdump, ...); any when absent. */
  type: z.string().optional(),
  /** Task id, usually the VM id; any when absent. */
  id: z.string().optional(),
  count: z.number().int().positive().optional(),
});

export const faultSettingsSchema = z.object({
  /** Added to every API request before it is answered. */
  latencyMs: z.number().int().min(0).optional(),
  /** Answer matching requests with this error instead of handling them. */
  errors: z
    .array(
      pathRule.extend({
        status: z.number().int().min(400).max(599).optional(),
        message: z.string().optional(),
      }),
    )
    .optional(),
  /** Close the connection without answering. */
  dropConnections: z.array(pathRule).optional(),
  /**
   * Handle matching requests, then hold the answer back this long: the request took effect in the
   * cluster while its client does not know yet (the window in which a client can die having asked).
   */
  slowAnswers: z.array(pathRule.extend({ delayMs: z.number().int().min(1).max(600_000) })).optional(),
  /** Matching tasks end with this exit status (their log's last line reads "TASK ERROR: <message>"). */
  failTasks: z.array(taskRule.extend({ message: z.string() })).optional(),
  /** Matching tasks stay "running" until the fault is cleared. */
  hangTasks: z.array(taskRule).optional(),
  /** Nodes that are unreachable: proxied calls get 595, they show "offline" in cluster resources. */
  nodesDown: z.array(z.string()).optional(),
  /** VM ids whose guest agent does not answer even when the VM runs. */
  agentDown: z.array(z.number().int()).optional(),
});
export type FaultSettings = z.infer<typeof faultSettingsSchema>;
type PathRule = z.infer<typeof pathRule>;
type TaskRule = z.infer<typeof taskRule>;

export class Faults {
  private settings: FaultSettings = {};
  private readonly random: () => number;
  /** Called when a hang rule is removed, so held tasks can finish. */
  onChange: () => void = () => {};

  constructor(random: () => number = Math.random) {
    this.random = random;
  }

  /** Replaces the given kinds of faults (others stay as they are). */
  set(patch: FaultSettings): void {
    this.settings = { ...this.settings, ...faultSettingsSchema.parse(patch) };
    this.onChange();
  }

  reset(): void {
    this.settings = {};
    this.onChange();
  }

  current(): FaultSettings {
    return structuredClone(this.settings);
  }

  latencyMs(): number {
    return this.settings.latencyMs ?? 0;
  }

  private hitPath<R extends PathRule>(rules: R[] | undefined, method: string, path: string): R | undefined {
    if (!rules) return undefined;
    for (const rule of rules) {
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      if (!new RegExp(rule.path).test(path)) continue;
      if (this.random() >= (rule.rate ?? 1)) continue;
      consume(rules, rule);
      return rule;
    }
    return undefined;
  }

  injectedError(method: string, path: string): { status: number; message: string } | undefined {
    const rule = this.hitPath(this.settings.errors, method, path);
    return rule && { status: rule.status ?? 500, message: rule.message ?? "injected fault" };
  }

  /** How long to hold back the answer to a handled request (0: answer at once). */
  answerDelayMs(method: string, path: string): number {
    return this.hitPath(this.settings.slowAnswers, method, path)?.delayMs ?? 0;
  }

  dropsConnection(method: string, path: string): boolean {
    return this.hitPath(this.settings.dropConnections, method, path) !== undefined;
  }

  private hitTask<R extends TaskRule>(rules: R[] | undefined, type: string, id: string): R | undefined {
    const rule = rules?.find((r) => (!r.type || r.type === type) && (!r.id || r.id === id));
    if (rule && rules) consume(rules, rule);
    return rule;
  }

  taskFailure(type: string, id: string): string | undefined {
    return this.hitTask(this.settings.failTasks, type, id)?.message;
  }

  /** Whether a task hangs; not consumed, so the task keeps hanging while the rule exists. */
  taskHangs(type: string, id: string): boolean {
    return (this.settings.hangTasks ?? []).some(
      (r) => (!r.type || r.type === type) && (!r.id || r.id === id),
    );
  }

  nodeDown(node: string): boolean {
    return this.settings.nodesDown?.includes(node) ?? false;
  }

  agentDown(vmid: number): boolean {
    return this.settings.agentDown?.includes(vmid) ?? false;
  }
}

function consume<R extends { count?: number | undefined }>(rules: R[], rule: R): void {
  if (rule.count === undefined) return;
  rule.count -= 1;
  if (rule.count <= 0) rules.splice(rules.indexOf(rule), 1);
}
