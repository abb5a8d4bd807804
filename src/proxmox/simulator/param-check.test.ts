import { describe, expect, it } from "vitest";
import { methodSchema } from "./api-schema.ts";
import { verifyParameters } from "./param-check.ts";

const createVm = methodSchema("POST", "/nodes/{node}/qemu").parameters;
const base = { node: "pve1", vmid: "100" };

describe("verifyParameters against the official create-VM schema", () => {
  it.each<[string, Record<string, unknown>, Record<string, string>]>([
    [
      "accepts a Talos VM",
      {
        name: "talos-1",
        cores: 4,
        memory: "8192",
        scsi0: "local-lvm:32",
        net0: "virtio,bridge=vmbr0",
        ipconfig0: "ip=10.0.3.16/24,gw=10.0.3.1",
        nameserver: "10.0.3.1 1.1.1.1",
        agent: "enabled=1",
        boot: "order=scsi0;ide0",
        tags: "talos;cp",
      },
      {},
    ],
    ["accepts JSON booleans and numbers", { onboot: true, cores: 2 }, {}],
    [
      "resolves indexed keys (net31 exists, net32 does not)",
      { net31: "virtio", net32: "virtio" },
      { net32: "property is not defined in schema and the schema does not allow additional properties" },
    ],
    [
      "rejects 'true' for a boolean (Proxmox takes only 1/0)",
      { onboot: "true" },
      { onboot: "type check ('boolean') failed - got 'true'" },
    ],
    [
      "checks enums",
      { bios: "uefi" },
      { bios: "value 'uefi' does not have a value in the enumeration 'seabios, ovmf'" },
    ],
    ["checks minimums", { cores: 0 }, { cores: "value must have a minimum value of 1" }],
    ["boolean keys inside property strings take on/off", { net0: "virtio,bridge=vmbr0,firewall=on" }, {}],
    [
      "reports unknown keys inside property strings",
      { net0: "virtio,bridge=vmbr0,speed=10" },
      { net0: "invalid format - invalid key in comma-separated list property: speed\n" },
    ],
    [
      "reports bad sub-values with the nested path",
      { scsi0: "local-lvm:32,cache=fast" },
      {
        scsi0:
          "invalid format - format error\nscsi0.cache: value 'fast' does not have a value in the enumeration 'none, writethrough, writeback, unsafe, directsync'\n",
      },
    ],
    [
      "a drive without a storage is not a volume id",
      { scsi0: "local-lvm" },
      {
        scsi0:
          "invalid format - format error\nscsi0.file: invalid format - unable to parse volume ID 'local-lvm'\n\n",
      },
    ],
    [
      "missing required parameters",
      { vmid: undefined },
      { vmid: "property is missing and it is not optional" },
    ],
  ])("%s", (_name, extra, errors) => {
    expect(verifyParameters(createVm, { ...base, ...extra })).toEqual(errors);
  });
});
