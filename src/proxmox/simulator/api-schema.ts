// The official schema of the endpoints the simulator serves (see extract-api-schema.ts), indexed for
// routing: a request is matched to its schema path, then checked against that method's parameters and
// permissions.
import { readFileSync } from "node:fs";
import type { PropertySchema } from "./formats.ts";
import type { ParametersSchema } from "./param-check.ts";

export interface MethodSchema {
  parameters: ParametersSchema;
  permissions: PermissionSpec | null;
  returns: string | null;
  /** The official schema of the answer (`returns`), prose removed. */
  returnSchema: PropertySchema | null;
  allowtoken: number;
}

export interface PermissionSpec {
  check?: PermissionCheck;
  user?: string;
  description?: string;
}
export type PermissionCheck = unknown[];

export interface Route {
  template: string;
  pattern: RegExp;
  names: string[];
  methods: Record<string, MethodSchema>;
}

const subset = JSON.parse(readFileSync(new URL("./pve-api-subset.json", import.meta.url), "utf8")) as Record<
  string,
  Record<string, MethodSchema>
>;

export const ROUTES: Route[] = Object.entries(subset).map(([template, methods]) => {
  const names: string[] = [];
  const source = template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  return { template, pattern: new RegExp(`^${source}$`), names, methods };
});

export function matchRoute(path: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    route.names.forEach((n, i) => {
      params[n] = decodeURIComponent(m[i + 1]!);
    });
    return { route, params };
  }
  return undefined;
}

export function methodSchema(method: string, template: string): MethodSchema {
  const schema = subset[template]?.[method];
  if (!schema) throw new Error(`no schema for ${method} ${template}`);
  return schema;
}

/** The property schemas of a VM config key (`scsi0` -> `scsi[n]`), from the create-VM method. */
export const QEMU_CONFIG_PROPERTIES: Record<string, PropertySchema> =
  methodSchema("POST", "/nodes/{node}/qemu").parameters.properties ?? {};

/** The property schemas of a container config key (`mp0` -> `mp[n]`), from the create-container method. */
export const LXC_CONFIG_PROPERTIES: Record<string, PropertySchema> =
  methodSchema("POST", "/nodes/{node}/lxc").parameters.properties ?? {};
