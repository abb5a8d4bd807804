// The simulator's answers have the shapes of the official schema's `returns` (pve-api-subset.json,
// cut from the PVE 9.1 API viewer schema): every field it declares as required is there with its
// type, every field sent has the declared type, and a field the schema does not declare is sent only
// where it is listed below with the reason (Proxmox sends it; its schema omits it).

import { type Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../client.ts";
import { methodSchema } from "./api-schema.ts";
import type { PropertySchema } from "./formats.ts";
import type { ProxmoxSimulator } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient } from "./test-support.ts";

/** Fields real Proxmox VE returns beyond its own schema, per endpoint (path of the field: reason). */
const UNDECLARED: Record<string, Record<string, string>> = {
  "GET /nodes": {
    "[].id": "pvesh get /nodes lists id node/<name>, as cluster resources do",
    "[].type": "pvesh get /nodes lists type node",
    "[].disk": "root disk usage, listed by pvesh get /nodes",
    "[].maxdisk": "root disk size, listed by pvesh get /nodes",
  },
  "GET /nodes/{node}/storage/{storage}/content": {
    "[].content": "Storage/Content.pm index copies each volume's content type into the entry",
  },
  "GET /cluster/nextid": {
    "(root)": "Proxmox sends the id as a JSON string; go-proxmox's NextID and proxmoxer parse a string",
  },
  "GET /cluster/ha/resources": Object.fromEntries(
    ["state", "max_restart", "max_relocate", "failback", "type", "digest", "comment"].map((k) => [
      `[].${k}`,
      "API2/HA/Resources.pm index lists each resource's config with sid, type and digest",
    ]),
  ),
  "GET /cluster/ha/rules": Object.fromEntries(
    ["type", "resources", "nodes", "strict", "affinity", "disable", "comment", "digest"].map((k) => [
      `[].${k}`,
      "API2/HA/Rules.pm get_api_ha_rule: the rule's section config plus rule and digest",
    ]),
  ),
  "GET /cluster/ha/rules/{rule}": Object.fromEntries(
    ["resources", "nodes", "strict", "affinity", "disable", "comment", "digest"].map((k) => [
      `.${k}`,
      "API2/HA/Rules.pm get_api_ha_rule: the rule's section config plus rule and digest",
    ]),
  ),
};

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let agent: Agent;

beforeAll(async () => {
  rig = await startSimulatorWithClient({ taskDurationMs: 5 });
  ({ sim, client, agent } = rig);
  await client.waitForTask(
    await client.createVm("pve1", 100, {
      name: "shape",
      scsi0: "local-lvm:1",
      ide2: "local-lvm:cloudinit",
      net0: "virtio,bridge=vmbr0",
      agent: "enabled=1",
      tags: "a;b",
    }),
  );
  await client.waitForTask(await client.start("pve1", 100));
  await client.waitForTask(
    await client.downloadUrl("pve1", "local", {
      url: "https://example.org/x.iso",
      content: "iso",
      filename: "x.iso",
    }),
  );
  await client.waitForTask(
    await client.downloadUrl("pve1", "local", {
      url: "https://example.org/debian-12-standard_12.7-1_amd64.tar.zst",
      content: "vztmpl",
      filename: "debian-12-standard_12.7-1_amd64.tar.zst",
    }),
  );
  await client.waitForTask(
    await client.createContainer(
      "pve1",
      101,
      {
        ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        hostname: "shape-ct",
        rootfs: "local-lvm:2",
        net0: "name=eth0,bridge=vmbr0,ip=dhcp",
        unprivileged: 1,
        tags: "c",
      },
      { start: true },
    ),
  );
  await client.addHaResource({ sid: "vm:100", state: "started" });
  await client.addHaRule({ rule: "r1", type: "node-affinity", resources: ["vm:100"], nodes: ["pve1"] });
});
afterAll(() => rig.stop());

function typeErrors(
  value: unknown,
  schema: PropertySchema,
  path: string,
  allowed: Record<string, string>,
): string[] {
  const type = schema["type"];
  const fail = (why: string) =>
    allowed[path || "(root)"] ? [] : [`${path || "(root)"}: ${why} (got ${JSON.stringify(value)})`];
  if (value === null || value === undefined) return type === "null" ? [] : fail(`expected ${String(type)}`);
  const en = schema["enum"];
  if (Array.isArray(en) && !en.includes(value)) return fail(`not in enum ${en.join(",")}`);
  switch (type) {
    case "integer":
      return Number.isInteger(value) ? [] : fail("expected integer");
    case "number":
      return typeof value === "number" ? [] : fail("expected number");
    case "boolean":
      return value === 0 || value === 1 || typeof value === "boolean" ? [] : fail("expected boolean (0/1)");
    case "string": {
      if (typeof value !== "string") return fail("expected string");
      const pattern = schema["pattern"];
      if (
        typeof pattern === "string" &&
        !new RegExp(`^(?:${pattern.replaceAll("(?^:", "(?:")})$`).test(value)
      )
        return fail(`does not match ${pattern}`);
      return [];
    }
    case "array": {
      if (!Array.isArray(value)) return fail("expected array");
      const items = schema["items"] as PropertySchema | undefined;
      return items
        ? value.flatMap((v, i) =>
            typeErrors(v, items, `${path}[]`, allowed).map((e) =>
              e.replace("[]", `[${i}]`).replace(`[${i}]`, "[]"),
            ),
          )
        : [];
    }
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) return fail("expected object");
      const props = schema["properties"] as Record<string, PropertySchema> | undefined;
      if (!props) return [];
      const record = value as Record<string, unknown>;
      const errors: string[] = [];
      // Indexed keys (scsi0, net0) are declared once as `scsi[n]`, `net[n]`.
      const declared = (key: string) => props[key] ?? props[key.replace(/\d+$/, "[n]")];
      for (const [key, sub] of Object.entries(props)) {
        if (key.endsWith("[n]")) continue;
        if (record[key] === undefined) {
          if (!sub["optional"]) errors.push(`${path}.${key}: required by the schema, missing`);
        }
      }
      for (const [key, v] of Object.entries(record)) {
        const sub = declared(key);
        if (sub) errors.push(...typeErrors(v, sub, `${path}.${key}`, allowed));
      }
      for (const key of Object.keys(record)) {
        if (declared(key) || schema["additionalProperties"]) continue;
        if (!allowed[`${path}.${key}`]) errors.push(`${path}.${key}: not declared by the schema`);
      }
      return errors;
    }
    default:
      return [];
  }
}

async function get(path: string) {
  const response = await fetch(`${sim.url}/api2/json${path}`, {
    dispatcher: agent,
    headers: { authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: unknown }).data;
}

const CALLS: [template: string, path: string][] = [
  ["/version", "/version"],
  ["/access/permissions", "/access/permissions"],
  ["/cluster/status", "/cluster/status"],
  ["/nodes", "/nodes"],
  ["/nodes/{node}/status", "/nodes/pve1/status"],
  ["/nodes/{node}/version", "/nodes/pve1/version"],
  ["/cluster/resources", "/cluster/resources"],
  ["/cluster/nextid", "/cluster/nextid"],
  ["/nodes/{node}/qemu", "/nodes/pve1/qemu"],
  ["/nodes/{node}/qemu/{vmid}/config", "/nodes/pve1/qemu/100/config"],
  ["/nodes/{node}/qemu/{vmid}/status/current", "/nodes/pve1/qemu/100/status/current"],
  ["/nodes/{node}/lxc", "/nodes/pve1/lxc"],
  ["/nodes/{node}/lxc/{vmid}/config", "/nodes/pve1/lxc/101/config"],
  ["/nodes/{node}/lxc/{vmid}/status/current", "/nodes/pve1/lxc/101/status/current"],
  ["/nodes/{node}/storage", "/nodes/pve1/storage"],
  ["/nodes/{node}/storage/{storage}/status", "/nodes/pve1/storage/local/status"],
  ["/nodes/{node}/storage/{storage}/content", "/nodes/pve1/storage/local/content"],
  ["/nodes/{node}/storage/{storage}/content/{volume}", "/nodes/pve1/storage/local/content/local:iso%2Fx.iso"],
  ["/cluster/ha/resources", "/cluster/ha/resources"],
  ["/cluster/ha/resources/{sid}", "/cluster/ha/resources/vm:100"],
  ["/cluster/ha/rules", "/cluster/ha/rules"],
  ["/cluster/ha/rules/{rule}", "/cluster/ha/rules/r1"],
  ["/nodes/{node}/tasks", "/nodes/pve1/tasks?source=all"],
];

describe("answers have the official schema's shapes", () => {
  for (const [template, path] of CALLS) {
    it(`GET ${template}`, async () => {
      const schema = methodSchema("GET", template).returnSchema;
      expect(schema).not.toBeNull();
      expect(typeErrors(await get(path), schema!, "", UNDECLARED[`GET ${template}`] ?? {})).toEqual([]);
    });
  }

  it("catches an undeclared field (the checker can fail)", () => {
    const schema = methodSchema("GET", "/version").returnSchema!;
    expect(
      typeErrors({ version: "9.1.1", release: "9.1", repoid: "abcdef12", extra: 1 }, schema, "", {}),
    ).toEqual([".extra: not declared by the schema"]);
    expect(typeErrors({ version: "9.1.1", release: "9.1", repoid: "simulator" }, schema, "", {})[0]).toMatch(
      /repoid: does not match/,
    );
  });
});
