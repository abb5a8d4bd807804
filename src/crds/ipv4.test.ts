import { describe, expect, it } from "vitest";
import { cidrContainsIP, cidrsOverlap, isIPv4, isIPv4NetworkCIDR, parseIPv4 } from "./ipv4.ts";

describe("parseIPv4 (mirrors CEL's ip(): no leading zeros, four octets)", () => {
  it.each([
    ["10.0.3.16", 0x0a000310],
    ["0.0.0.0", 0],
    ["255.255.255.255", 0xffffffff],
    ["10.0.3.016", undefined],
    ["10.0.3", undefined],
    ["10.0.3.256", undefined],
    ["10.0.3.1.5", undefined],
    ["10.0.3.-1", undefined],
    ["::1", undefined],
    ["", undefined],
  ])("%s -> %s", (text, expected) => {
    expect(parseIPv4(text)).toBe(expected);
    expect(isIPv4(text)).toBe(expected !== undefined);
  });
});

describe("isIPv4NetworkCIDR (mirrors cidr(x) == cidr(x).masked())", () => {
  it.each([
    ["10.0.3.0/24", true],
    ["10.96.0.0/12", true],
    ["0.0.0.0/0", true],
    ["10.0.3.16/32", true],
    ["10.0.3.1/24", false],
    ["10.0.3.0/33", false],
    ["10.0.3.0/024", false],
    ["10.0.3.0", false],
  ])("%s -> %s", (text, expected) => {
    expect(isIPv4NetworkCIDR(text)).toBe(expected);
  });
});

describe("cidrContainsIP", () => {
  it.each([
    ["10.0.3.0/24", "10.0.3.16", true],
    ["10.0.3.0/24", "10.0.3.255", true],
    ["10.0.3.0/24", "10.0.4.1", false],
    ["0.0.0.0/0", "192.168.1.1", true],
    ["10.0.3.16/32", "10.0.3.16", true],
    ["10.0.3.16/32", "10.0.3.17", false],
    ["bad", "10.0.3.1", false],
  ])("%s contains %s: %s", (cidr, ip, expected) => {
    expect(cidrContainsIP(cidr, ip)).toBe(expected);
  });
});

describe("cidrsOverlap", () => {
  it.each([
    ["10.244.0.0/16", "10.0.3.0/24", false],
    ["10.0.0.0/16", "10.0.3.0/24", true],
    ["10.0.3.0/24", "10.0.0.0/16", true],
    ["10.96.0.0/12", "10.244.0.0/16", false],
    ["10.96.0.0/12", "10.100.0.0/16", true],
  ])("%s and %s: %s", (a, b, expected) => {
    expect(cidrsOverlap(a, b)).toBe(expected);
  });
});
