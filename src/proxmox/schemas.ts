// zod schemas of every Proxmox response the client reads. Objects are loose: Proxmox adds fields between
// releases and the client must not break on them; it only insists on what it uses. Some numbers arrive
// as strings (e.g. /cluster/nextid), hence the coercions.
import { z } from "zod";

const num = z.coerce.number();
const flag = z
  .union([z.number(), z.boolean(), z.string()])
  .transform((v) => v === true || v === 1 || v === "1");

export const versionSchema = z.looseObject({ version: z.string(), release: z.string().optional() });

export const nodeSchema = z.looseObject({
  node: z.string(),
  status: z.enum(["online", "offline", "unknown"]),
  maxcpu: num.optional(),
  maxmem: num.optional(),
  uptime: num.optional(),
});
export type ProxmoxNode = z.infer<typeof nodeSchema>;

export const vmResourceSchema = z.looseObject({
  id: z.string(),
  type: z.enum(["qemu", "lxc"]),
  vmid: num,
  node: z.string(),
  name: z.string().optional(),
  status: z.string(),
  template: flag.optional(),
  tags: z.string().optional(),
  lock: z.string().optional(),
  hastate: z.string().optional(),
  maxmem: num.optional(),
  maxcpu: num.optional(),
  maxdisk: num.optional(),
  uptime: num.optional(),
});
export type VmResource = z.infer<typeof vmResourceSchema>;

export const nodeResourceSchema = z.looseObject({
  id: z.string(),
  type: z.literal("node"),
  node: z.string(),
  status: z.string(),
});
export type NodeResource = z.infer<typeof nodeResourceSchema>;

export const storageResourceSchema = z.looseObject({
  id: z.string(),
  type: z.literal("storage"),
  storage: z.string(),
  node: z.string(),
  status: z.string(),
  content: z.string().optional(),
  shared: flag.optional(),
  plugintype: z.string().optional(),
});
export type StorageResource = z.infer<typeof storageResourceSchema>;

export const nextIdSchema = num.pipe(z.number().int().min(100));

export const vmConfigSchema = z
  .record(z.string(), z.union([z.string(), z.number()]))
  .transform(
    (r): Record<string, string> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
  )
  .refine((c) => typeof c["digest"] === "string", "a VM config always carries its digest");
export type VmConfig = z.infer<typeof vmConfigSchema>;

export const vmStatusSchema = z.looseObject({
  vmid: num,
  status: z.enum(["running", "stopped"]),
  qmpstatus: z.string().optional(),
  name: z.string().optional(),
  uptime: num.optional(),
  lock: z.string().optional(),
  tags: z.string().optional(),
  agent: flag.optional(),
  ha: z.looseObject({ managed: flag, state: z.string().optional() }).optional(),
});
export type VmStatus = z.infer<typeof vmStatusSchema>;

export const storageSchema = z.looseObject({
  storage: z.string(),
  type: z.string(),
  content: z.string(),
  shared: flag.optional(),
  active: flag.optional(),
  total: num.optional(),
  avail: num.optional(),
});
export type StorageInfo = z.infer<typeof storageSchema>;

export const storageContentSchema = z.looseObject({
  volid: z.string(),
  content: z.string(),
  format: z.string().optional(),
  size: num,
  vmid: num.optional(),
  ctime: num.optional(),
  notes: z.string().optional(),
});
export type StorageVolume = z.infer<typeof storageContentSchema>;

export const haResourceSchema = z.looseObject({
  sid: z.string(),
  type: z.string().optional(),
  state: z.string().optional(),
  comment: z.string().optional(),
  max_restart: num.optional(),
  max_relocate: num.optional(),
  failback: flag.optional(),
});
export type HaResource = z.infer<typeof haResourceSchema>;

export const haRuleSchema = z.looseObject({
  rule: z.string(),
  type: z.enum(["node-affinity", "resource-affinity"]),
  resources: z.string(),
  nodes: z.string().optional(),
  strict: flag.optional(),
  affinity: z.enum(["positive", "negative"]).optional(),
  disable: flag.optional(),
  comment: z.string().optional(),
});
export type HaRuleInfo = z.infer<typeof haRuleSchema>;

export const taskStatusSchema = z.looseObject({
  upid: z.string(),
  node: z.string(),
  status: z.enum(["running", "stopped"]),
  exitstatus: z.string().optional(),
  type: z.string(),
  id: z.string().optional(),
  user: z.string(),
  starttime: num.optional(),
});
export type TaskStatus = z.infer<typeof taskStatusSchema>;

export const taskLogSchema = z.array(z.looseObject({ n: num, t: z.string() }));

export const upidTextSchema = z.string().startsWith("UPID:");

export const agentPingSchema = z.looseObject({ result: z.unknown() }).or(z.null());
