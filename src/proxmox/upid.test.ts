import { describe, expect, it } from "vitest";
import { formatUpid, parseUpid, taskSucceeded } from "./upid.ts";

describe("UPID", () => {
  it("parses the fields of a real Proxmox task id", () => {
    const u = parseUpid("UPID:pve1:0002A3F1:01B2C3D4:6745A1B2:qmcreate:1030:homelab@pve!operator:");
    expect(u).toMatchObject({
      node: "pve1",
      pid: 0x2a3f1,
      pstart: 0x1b2c3d4,
      starttime: 0x6745a1b2,
      type: "qmcreate",
      id: "1030",
      user: "homelab@pve!operator",
    });
  });

  it("accepts a 9-digit pstart and an empty id", () => {
    expect(parseUpid("UPID:neo:00000001:123456789:00000002:download::root@pam:").id).toBe("");
  });

  it.each([
    ["missing trailing colon", "UPID:pve1:0002A3F1:01B2C3D4:6745A1B2:qmstart:100:root@pam"],
    ["short pid", "UPID:pve1:2A3F1:01B2C3D4:6745A1B2:qmstart:100:root@pam:"],
    ["not a UPID", "OK"],
  ])("rejects %s", (_name, text) => {
    expect(() => parseUpid(text)).toThrow(/not a Proxmox task id/);
  });

  it("formats what it parses", () => {
    const raw = "UPID:niobe:000000FF:0000ABCD:6745A1B2:vzdump:1010:homelab@pve!operator:";
    expect(formatUpid(parseUpid(raw))).toBe(raw);
  });

  it.each([
    ["OK", true],
    ["WARNINGS: 2", true],
    ["VM 100 already running", false],
    ["unexpected status", false],
  ])("exit status %s means success = %s", (status, ok) => {
    expect(taskSucceeded(status)).toBe(ok);
  });
});
