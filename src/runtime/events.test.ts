import { describe, expect, it } from "vitest";
import { microTime } from "./events.ts";

describe("microTime", () => {
  it("formats RFC 3339 with microseconds, as events.k8s.io/v1 eventTime requires", () => {
    expect(microTime(new Date("2026-11-25T06:00:00.123Z"))).toBe("2026-11-25T06:00:00.123000Z");
  });
});
