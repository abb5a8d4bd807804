// Walks every endpoint the simulator serves (and so every endpoint the client can use) and proves the
// simulator verifies parameters there the way Proxmox does: an unknown parameter, a malformed value and
// (where the schema has one) a missing required parameter each get HTTP 400 with the `errors` object.
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVED_ENDPOINTS } from "./extract-api-schema.ts";
import { type ProxmoxSimulator, startProxmoxSimulator } from "./server.ts";

let sim: ProxmoxSimulator;
let agent: Agent;

beforeAll(async () => {
  sim = await startProxmoxSimulator({ taskDurationMs: 5 });
  agent = new Agent({ connect: { ca: sim.caPem } });
});
afterAll(async () => {
  await agent.close();
  await sim.stop();
});

async function call(method: string, path: string, params: Record<string, string>) {
  const body = new URLSearchParams(params).toString();
  const hasBody = method === "POST" || method === "PUT";
  const response = await fetch(`${sim.url}/api2/json${path}${!hasBody && body ? `?${body}` : ""}`, {
    method,
    dispatcher: agent,
    headers: {
      authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`,
      ...(hasBody ? { "content-type": "application/x-www-form-urlencoded" } : {}),
    },
    ...(hasBody ? { body } : {}),
  });
  return { status: response.status, json: (await response.json()) as { errors?: Record<string, string> } };
}

const UPID = "UPID:pve1:00001000:00101000:6745A1B2:qmstart:100:root@pam:";
const fill = (template: string, overrides: Record<string, string> = {}) =>
  template.replace(/\{([^}]+)\}/g, (_m, name: string) =>
    encodeURIComponent(
      overrides[name] ??
        {
          node: "pve1",
          vmid: "100",
          storage: "local",
          sid: "vm:100",
          rule: "r1",
          upid: UPID,
          volume: "local:iso/x.iso",
        }[name]!,
    ),
  );

/**
 * Per endpoint: the otherwise-valid parameters the request needs, one malformed value with the error
 * Proxmox gives for it, and a required parameter to leave out (if any).
 */
const CASES: Record<
  string,
  {
    valid?: Record<string, string>;
    path?: Record<string, string>;
    bad: [string, string, RegExp];
    required?: string;
  }
> = {
  "GET /version": { bad: ["__path", "", /./] },
  "GET /nodes": { bad: ["__path", "", /./] },
  "GET /nodes/{node}/network": {
    bad: ["type", "wifi", /does not have a value in the enumeration/],
  },
  "GET /access/permissions": { bad: ["userid", "nobody", /value does not match the regex pattern/] },
  "GET /cluster/status": { bad: ["__path", "", /./] },
  "GET /nodes/{node}/status": {
    path: { node: "bad_node" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "GET /nodes/{node}/version": {
    path: { node: "-x" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "GET /nodes/{node}/storage/{storage}/status": {
    path: { storage: "1 bad" },
    bad: ["__path", "", /storage ID '1 bad' contains illegal characters/],
  },
  "GET /nodes/{node}/storage/{storage}/content/{volume}": {
    path: { node: "bad_node" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "DELETE /nodes/{node}/storage/{storage}/content/{volume}": {
    bad: ["delay", "0", /value must have a minimum value of 1/],
  },
  "GET /nodes/{node}/tasks": {
    bad: ["source", "some", /does not have a value in the enumeration 'archive, active, all'/],
  },
  "GET /cluster/resources": {
    bad: ["type", "vms", /does not have a value in the enumeration 'vm, storage, node, sdn'/],
  },
  "GET /cluster/nextid": { bad: ["vmid", "99", /invalid format - value does not look like a valid VM ID/] },
  "GET /nodes/{node}/qemu": { bad: ["full", "yes", /type check \('boolean'\) failed - got 'yes'/] },
  "POST /nodes/{node}/qemu": {
    valid: { vmid: "100" },
    bad: [
      "ipconfig0",
      "ip=10.0.3.300/24",
      /invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration/,
    ],
    required: "vmid",
  },
  "DELETE /nodes/{node}/qemu/{vmid}": { bad: ["purge", "maybe", /type check \('boolean'\) failed/] },
  "GET /nodes/{node}/qemu/{vmid}/config": {
    bad: ["current", "2", /type check \('boolean'\) failed - got '2'/],
  },
  "POST /nodes/{node}/qemu/{vmid}/config": {
    bad: ["net0", "virtio,bridge=vmbr0,fwgroup=x", /invalid key in comma-separated list property: fwgroup/],
  },
  "PUT /nodes/{node}/qemu/{vmid}/config": {
    bad: ["tags", "a b!", /invalid format - invalid characters in tag/],
  },
  "PUT /nodes/{node}/qemu/{vmid}/resize": {
    valid: { disk: "scsi0", size: "+1G" },
    bad: ["size", "1X", /value does not match the regex pattern/],
    required: "size",
  },
  "GET /nodes/{node}/qemu/{vmid}/status/current": {
    path: { vmid: "12x" },
    bad: ["__path", "", /type check \('integer'\) failed - got '12x'/],
  },
  "POST /nodes/{node}/qemu/{vmid}/status/start": {
    bad: ["timeout", "-1", /value must have a minimum value of 0/],
  },
  "POST /nodes/{node}/qemu/{vmid}/status/shutdown": {
    bad: ["forceStop", "true", /type check \('boolean'\) failed - got 'true'/],
  },
  "POST /nodes/{node}/qemu/{vmid}/status/stop": {
    bad: ["timeout", "soon", /type check \('integer'\) failed/],
  },
  "POST /nodes/{node}/qemu/{vmid}/status/reboot": {
    bad: ["timeout", "1.5", /type check \('integer'\) failed/],
  },
  "POST /nodes/{node}/qemu/{vmid}/agent/ping": {
    path: { node: "bad_node" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "GET /nodes/{node}/lxc": {
    path: { node: "bad_node" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "POST /nodes/{node}/lxc": {
    valid: { vmid: "100", ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst" },
    bad: ["swap", "-1", /value must have a minimum value of 0/],
    required: "ostemplate",
  },
  "DELETE /nodes/{node}/lxc/{vmid}": { bad: ["purge", "maybe", /type check \('boolean'\) failed/] },
  "GET /nodes/{node}/lxc/{vmid}/config": {
    bad: ["snapshot", "1bad", /invalid configuration ID '1bad'/],
  },
  "GET /nodes/{node}/lxc/{vmid}/status/current": {
    path: { vmid: "99" },
    bad: ["__path", "", /value does not look like a valid VM ID/],
  },
  "POST /nodes/{node}/lxc/{vmid}/status/start": { bad: ["debug", "yes", /type check \('boolean'\) failed/] },
  "POST /nodes/{node}/lxc/{vmid}/status/shutdown": {
    bad: ["timeout", "-5", /value must have a minimum value of 0/],
  },
  "POST /nodes/{node}/lxc/{vmid}/status/stop": {
    bad: ["overrule-shutdown", "x", /type check \('boolean'\) failed/],
  },
  "GET /nodes/{node}/storage": { bad: ["content", "movies", /invalid content type 'movies'/] },
  "GET /nodes/{node}/storage/{storage}/content": { bad: ["vmid", "abc", /type check \('integer'\) failed/] },
  "POST /nodes/{node}/storage/{storage}/download-url": {
    valid: { url: "https://factory.talos.dev/x.iso", content: "iso", filename: "x.iso" },
    bad: ["url", "ftp://example.org/x.iso", /value does not match the regex pattern/],
    required: "filename",
  },
  "GET /cluster/ha/resources": { bad: ["type", "lxc", /does not have a value in the enumeration 'ct, vm'/] },
  "POST /cluster/ha/resources": {
    valid: { sid: "vm:100" },
    bad: ["state", "running", /does not have a value in the enumeration/],
    required: "sid",
  },
  "GET /cluster/ha/resources/{sid}": {
    path: { sid: "vm:abc" },
    bad: ["__path", "", /unable to parse service id 'vm:abc'/],
  },
  "PUT /cluster/ha/resources/{sid}": { bad: ["max_restart", "-3", /value must have a minimum value of 0/] },
  "DELETE /cluster/ha/resources/{sid}": { bad: ["purge", "no", /type check \('boolean'\) failed/] },
  "GET /cluster/ha/rules": {
    bad: [
      "type",
      "anti-affinity",
      /does not have a value in the enumeration 'node-affinity, resource-affinity'/,
    ],
  },
  "POST /cluster/ha/rules": {
    valid: { rule: "r1", type: "resource-affinity", resources: "vm:100", affinity: "negative" },
    bad: ["affinity", "apart", /does not have a value in the enumeration 'positive, negative'/],
    required: "resources",
  },
  "GET /cluster/ha/rules/{rule}": {
    path: { rule: "1bad" },
    bad: ["__path", "", /invalid configuration ID '1bad'/],
  },
  "PUT /cluster/ha/rules/{rule}": {
    valid: { type: "node-affinity" },
    bad: ["nodes", "pve1:x", /unable to parse node 'pve1:x'/],
    required: "type",
  },
  "DELETE /cluster/ha/rules/{rule}": {
    path: { rule: "x" },
    bad: ["__path", "", /invalid configuration ID 'x'/],
  },
  "POST /nodes/{node}/vzdump": {
    bad: ["mode", "live", /does not have a value in the enumeration 'snapshot, suspend, stop'/],
  },
  "GET /nodes/{node}/tasks/{upid}/status": {
    path: { node: "-pve" },
    bad: ["__path", "", /value does not look like a valid node name/],
  },
  "GET /nodes/{node}/tasks/{upid}/log": { bad: ["limit", "-1", /value must have a minimum value of 0/] },
};

describe("the simulator verifies parameters on every served endpoint", () => {
  it("has a case for every endpoint it serves", () => {
    expect(Object.keys(CASES).sort()).toEqual(SERVED_ENDPOINTS.map(([m, p]) => `${m} ${p}`).sort());
  });

  for (const [method, template] of SERVED_ENDPOINTS) {
    const key = `${method} ${template}`;
    const c = CASES[key]!;
    describe(key, () => {
      it("rejects an unknown parameter with 400 and Proxmox's message", async () => {
        const r = await call(method, fill(template), { ...c.valid, bogus_param: "1" });
        expect(r.status).toBe(400);
        expect(r.json.errors).toEqual({
          bogus_param:
            "property is not defined in schema and the schema does not allow additional properties",
        });
      });

      const [param, value, message] = c.bad;
      if (param !== "__path" || c.path) {
        it(`rejects a malformed ${param === "__path" ? Object.keys(c.path!)[0] : param}`, async () => {
          const params = param === "__path" ? { ...c.valid } : { ...c.valid, [param]: value };
          const r = await call(method, fill(template, c.path), params);
          expect(r.status).toBe(400);
          const name = param === "__path" ? Object.keys(c.path!)[0]! : param;
          expect(r.json.errors?.[name]).toMatch(message);
        });
      }

      if (c.required) {
        it(`requires ${c.required}`, async () => {
          const { [c.required!]: _left, ...rest } = c.valid ?? {};
          const r = await call(method, fill(template), rest);
          expect(r.status).toBe(400);
          expect(r.json.errors?.[c.required!]).toBe("property is missing and it is not optional");
        });
      }
    });
  }
});
