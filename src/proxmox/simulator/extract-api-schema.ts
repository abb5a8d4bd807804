// Regenerates pve-api-subset.json: the parts of the official Proxmox VE API schema
// (../shared/reference/proxmox-ve-api-schema.json, PVE 9.1) that the simulator serves, without the
// prose. The simulator checks every request against this file, so the endpoints and their parameter
// rules come from Proxmox, not from us.
//   node src/proxmox/simulator/extract-api-schema.ts [path/to/proxmox-ve-api-schema.json]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Every endpoint the simulator implements; the client uses a subset of these. */
export const SERVED_ENDPOINTS: ReadonlyArray<readonly [method: string, path: string]> = [
  ["GET", "/version"],
  ["GET", "/access/permissions"],
  ["GET", "/cluster/status"],
  ["GET", "/nodes"],
  ["GET", "/nodes/{node}/status"],
  ["GET", "/nodes/{node}/network"],
  ["GET", "/nodes/{node}/version"],
  ["GET", "/cluster/resources"],
  ["GET", "/cluster/nextid"],
  ["GET", "/nodes/{node}/qemu"],
  ["POST", "/nodes/{node}/qemu"],
  ["DELETE", "/nodes/{node}/qemu/{vmid}"],
  ["GET", "/nodes/{node}/qemu/{vmid}/config"],
  ["POST", "/nodes/{node}/qemu/{vmid}/config"],
  ["PUT", "/nodes/{node}/qemu/{vmid}/config"],
  ["PUT", "/nodes/{node}/qemu/{vmid}/resize"],
  ["GET", "/nodes/{node}/qemu/{vmid}/status/current"],
  ["POST", "/nodes/{node}/qemu/{vmid}/status/start"],
  ["POST", "/nodes/{node}/qemu/{vmid}/status/shutdown"],
  ["POST", "/nodes/{node}/qemu/{vmid}/status/stop"],
  ["POST", "/nodes/{node}/qemu/{vmid}/status/reboot"],
  ["POST", "/nodes/{node}/qemu/{vmid}/agent/ping"],
  ["GET", "/nodes/{node}/lxc"],
  ["POST", "/nodes/{node}/lxc"],
  ["DELETE", "/nodes/{node}/lxc/{vmid}"],
  ["GET", "/nodes/{node}/lxc/{vmid}/config"],
  ["GET", "/nodes/{node}/lxc/{vmid}/status/current"],
  ["POST", "/nodes/{node}/lxc/{vmid}/status/start"],
  ["POST", "/nodes/{node}/lxc/{vmid}/status/shutdown"],
  ["POST", "/nodes/{node}/lxc/{vmid}/status/stop"],
  ["GET", "/nodes/{node}/storage"],
  ["GET", "/nodes/{node}/storage/{storage}/status"],
  ["GET", "/nodes/{node}/storage/{storage}/content"],
  ["GET", "/nodes/{node}/storage/{storage}/content/{volume}"],
  ["DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"],
  ["POST", "/nodes/{node}/storage/{storage}/download-url"],
  ["GET", "/cluster/ha/resources"],
  ["POST", "/cluster/ha/resources"],
  ["GET", "/cluster/ha/resources/{sid}"],
  ["PUT", "/cluster/ha/resources/{sid}"],
  ["DELETE", "/cluster/ha/resources/{sid}"],
  ["GET", "/cluster/ha/rules"],
  ["POST", "/cluster/ha/rules"],
  ["GET", "/cluster/ha/rules/{rule}"],
  ["PUT", "/cluster/ha/rules/{rule}"],
  ["DELETE", "/cluster/ha/rules/{rule}"],
  ["POST", "/nodes/{node}/vzdump"],
  ["GET", "/nodes/{node}/tasks"],
  ["GET", "/nodes/{node}/tasks/{upid}/status"],
  ["GET", "/nodes/{node}/tasks/{upid}/log"],
];

interface RawNode {
  path: string;
  info?: Record<string, RawMethod>;
  children?: RawNode[];
}
interface RawMethod {
  parameters?: { properties?: Record<string, unknown>; additionalProperties?: unknown };
  permissions?: unknown;
  returns?: { type?: string } & Record<string, unknown>;
  allowtoken?: number;
  protected?: number;
}

const PROSE = new Set(["description", "verbose_description", "typetext", "format_description", "title"]);

function stripProse(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripProse);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (!PROSE.has(k)) out[k] = stripProse(v);
    return out;
  }
  return value;
}

export function extractSubset(tree: RawNode[]): Record<string, Record<string, unknown>> {
  const byPath = new Map<string, RawNode>();
  const walk = (nodes: RawNode[]) => {
    for (const n of nodes) {
      byPath.set(n.path, n);
      walk(n.children ?? []);
    }
  };
  walk(tree);
  const out: Record<string, Record<string, unknown>> = {};
  for (const [method, path] of SERVED_ENDPOINTS) {
    const info = byPath.get(path)?.info?.[method];
    if (!info) throw new Error(`${method} ${path} is not in the Proxmox API schema`);
    out[path] ??= {};
    out[path][method] = {
      parameters: stripProse(info.parameters ?? {}),
      // Permission descriptions stay: some checks exist only as prose ("user": "all" + description).
      permissions: info.permissions ?? null,
      returns: info.returns?.type ?? null,
      // The answer's shape: what the simulator may put in a response (checked by response-shape.test.ts).
      returnSchema: stripProse(info.returns ?? null),
      allowtoken: info.allowtoken ?? 1,
    };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const source = process.argv[2] ?? join(here, "../../../../shared/reference/proxmox-ve-api-schema.json");
  const tree = JSON.parse(readFileSync(source, "utf8")) as RawNode[];
  const subset = extractSubset(tree);
  writeFileSync(join(here, "pve-api-subset.json"), `${JSON.stringify(subset, null, 1)}\n`);
  console.log(`wrote ${Object.keys(subset).length} paths from ${source}`);
}
