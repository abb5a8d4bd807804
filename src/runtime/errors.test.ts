import { describe, expect, it } from "vitest";
import { ApiError, isTooLargeResourceVersion } from "./errors.ts";

const err = (
  code: number,
  reason: string,
  message: string,
  causes: { reason?: string; message?: string }[] = [],
) => new ApiError({ code, reason, message, method: "WATCH", path: "/api/v1/configmaps", causes });

describe("isTooLargeResourceVersion (client-go's isTooLargeResourceVersionError)", () => {
  it("recognises the ResourceVersionTooLarge cause whatever the message", () => {
    expect(isTooLargeResourceVersion(err(504, "Timeout", "x", [{ reason: "ResourceVersionTooLarge" }]))).toBe(
      true,
    );
  });

  it("recognises older servers' Timeout by the cause message or the status message", () => {
    expect(
      isTooLargeResourceVersion(err(504, "Timeout", "x", [{ message: "Too large resource version" }])),
    ).toBe(true);
    expect(
      isTooLargeResourceVersion(err(504, "Timeout", "Timeout: Too large resource version: 9, current: 3")),
    ).toBe(true);
  });

  it("is false for other timeouts, other codes with that text, and non-API errors", () => {
    expect(isTooLargeResourceVersion(err(504, "Timeout", "Timeout: request did not complete"))).toBe(false);
    expect(isTooLargeResourceVersion(err(500, "InternalError", "Too large resource version"))).toBe(false);
    expect(isTooLargeResourceVersion(new Error("Too large resource version"))).toBe(false);
  });
});
