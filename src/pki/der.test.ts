import { describe, expect, it } from "vitest";
import * as der from "./der.ts";

describe("DER encoding", () => {
  it.each([
    [0, "020100"],
    [127, "02017f"],
    [128, "02020080"],
    [256, "02020100"],
    [0xffffffffn, "020500ffffffff"],
  ])("INTEGER %s", (value, hex) => {
    expect(der.integer(value).toString("hex")).toBe(hex);
  });

  it("strips redundant leading zero bytes of an unsigned byte string", () => {
    expect(der.integer(Buffer.from([0, 0, 0x01])).toString("hex")).toBe("020101");
  });

  it.each([
    ["2.5.4.3", "0603550403"],
    ["1.2.840.10045.4.3.2", "06082a8648ce3d040302"],
    ["1.3.101.112", "06032b6570"],
  ])("OID %s", (id, hex) => {
    expect(der.oid(id).toString("hex")).toBe(hex);
  });

  it("uses long-form lengths above 127 bytes", () => {
    const encoded = der.octetString(Buffer.alloc(300));
    expect(encoded.subarray(0, 4).toString("hex")).toBe("0482012c");
    expect(der.readTlv(encoded).content.length).toBe(300);
  });

  it("encodes UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280)", () => {
    expect(der.time(new Date("2026-11-25T06:38:29Z")).toString("latin1")).toBe("\x17\x0d261125063829Z");
    expect(der.time(new Date("2051-01-02T03:04:05Z")).toString("latin1")).toBe("\x18\x0f20510102030405Z");
  });

  it("sorts SET OF members by encoding", () => {
    const a = der.utf8String("b");
    const b = der.utf8String("a");
    expect(der.set(a, b).toString("hex")).toBe(`3106${b.toString("hex")}${a.toString("hex")}`);
  });
});
