import { describe, expect, it } from "vitest";
import { ItemBackoff, JitteredBackoff } from "./backoff.ts";

describe("ItemBackoff", () => {
  it("doubles per consecutive failure from the base and caps at the maximum (client-go 5ms..1000s)", () => {
    const b = new ItemBackoff();
    const delays = Array.from({ length: 30 }, () => b.when("ns/a"));
    expect(delays.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    expect(delays[17]).toBe(5 * 2 ** 17); // 655.36 s, still under the cap
    expect(delays[18]).toBe(1_000_000); // 1310.72 s would exceed 1000 s
    expect(delays.slice(18).every((d) => d === 1_000_000)).toBe(true);
  });

  it("keeps a separate count per key and starts over after forget", () => {
    const b = new ItemBackoff({ baseMs: 10, maxMs: 100 });
    expect([b.when("a"), b.when("a"), b.when("b")]).toEqual([10, 20, 10]);
    b.forget("a");
    expect(b.retries("a")).toBe(0);
    expect(b.when("a")).toBe(10);
  });

  it("never overflows past the cap after thousands of failures", () => {
    const b = new ItemBackoff({ baseMs: 5, maxMs: 1000 });
    let last = 0;
    for (let i = 0; i < 5000; i++) last = b.when("k");
    expect(last).toBe(1000);
  });
});

describe("JitteredBackoff", () => {
  it("grows exponentially within ±20% jitter, caps, and resets", () => {
    const low = new JitteredBackoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([low.next(), low.next(), low.next(), low.next(), low.next()]).toEqual([80, 160, 320, 640, 800]);
    const high = new JitteredBackoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    expect([high.next(), high.next()]).toEqual([120, 240]);
    high.reset();
    expect(high.next()).toBe(120);
  });
});
