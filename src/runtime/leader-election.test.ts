import { describe, expect, it } from "vitest";
import { decideLease } from "./leader-election.ts";

describe("decideLease", () => {
  const D = 15_000;
  const cases: Record<
    string,
    { spec: Parameters<typeof decideLease>[0]; observedAt: number; now: number; want: string }
  > = {
    "no lease record yet: acquire": { spec: undefined, observedAt: 0, now: 0, want: "acquire" },
    "released lease (empty holder): acquire at once": {
      spec: { holderIdentity: "" },
      observedAt: 100,
      now: 101,
      want: "acquire",
    },
    "our own lease: renew": { spec: { holderIdentity: "me" }, observedAt: 0, now: 1e9, want: "renew" },
    "another holder seen renewing recently: wait": {
      spec: { holderIdentity: "other" },
      observedAt: 1000,
      now: 1000 + D - 1,
      want: "wait",
    },
    "another holder silent for a full lease duration: acquire": {
      spec: { holderIdentity: "other" },
      observedAt: 1000,
      now: 1000 + D,
      want: "acquire",
    },
    "the record's longer leaseDurationSeconds wins over the local setting: wait": {
      spec: { holderIdentity: "other", leaseDurationSeconds: 60 },
      observedAt: 1000,
      now: 1000 + D + 1,
      want: "wait",
    },
    "the record's longer leaseDurationSeconds, once passed: acquire": {
      spec: { holderIdentity: "other", leaseDurationSeconds: 60 },
      observedAt: 1000,
      now: 1000 + 60_000,
      want: "acquire",
    },
    "the record's shorter leaseDurationSeconds wins too: acquire before the local 15 s": {
      spec: { holderIdentity: "other", leaseDurationSeconds: 5 },
      observedAt: 1000,
      now: 1000 + 5_000,
      want: "acquire",
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(decideLease(c.spec, "me", c.observedAt, c.now, D)).toBe(c.want));
  }
});
