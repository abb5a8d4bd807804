import { describe, expect, it } from "vitest";
import { catalogEntry } from "../components/catalog.ts";
import { LOCAL_GATEWAY_API_VERSION, mirrorRepositoryFor } from "./chart-mirror.ts";

const mirror = {
  url: "http://127.0.0.1:1234",
  charts: new Map([
    ["cilium", ["1.18.10", "1.19.6"]],
    ["cert-manager", ["v1.21.1"]],
  ]),
};
const entry = (name: string) => {
  const e = catalogEntry(name);
  if (!e) throw new Error(name);
  return e;
};

describe("local chart mirror: which components it serves", () => {
  it("serves the Gateway API CRDs at the catalog's pin", () => {
    expect(entry("gateway-api").source.version).toBe(LOCAL_GATEWAY_API_VERSION);
    expect(mirrorRepositoryFor(mirror, entry("gateway-api"), "v1.6.1")).toBe(
      "http://127.0.0.1:1234/gateway-api",
    );
    expect(mirrorRepositoryFor(mirror, entry("gateway-api"), "v1.7.0")).toBeUndefined();
  });

  it("serves a chart only at a version it has (a leading v does not matter), else upstream", () => {
    expect(mirrorRepositoryFor(mirror, entry("cilium"), "1.19.6")).toBe(mirror.url);
    expect(mirrorRepositoryFor(mirror, entry("cilium"), "1.20.0")).toBeUndefined();
    expect(mirrorRepositoryFor(mirror, entry("cert-manager"), "1.21.1")).toBe(mirror.url);
    expect(mirrorRepositoryFor(mirror, entry("knative-operator"), "v1.23.0")).toBeUndefined();
    // Builtin components are only objects: nothing to pull.
    expect(mirrorRepositoryFor(mirror, entry("main-gateway"), "builtin")).toBeUndefined();
  });
});
