// Local mode's connections keep the spec's addresses (so TLS verifies the seed's names) and only change
// where connections go; the address probe must dial the same place the clients would.
import { describe, expect, it } from "vitest";
import { dialledConnections, directConnections } from "./connections.ts";

describe("dialledConnections", () => {
  const dial = ({ host, port }: { host: string; port: number }) =>
    host === "10.0.3.16" ? { host: "127.0.0.16", port: port === 50000 ? 41000 : port } : { host, port };
  const c = dialledConnections(dial);

  it("keeps the spec's Proxmox URL and Talos address, and hands the dial to the clients", () => {
    expect(c.proxmoxUrl("https://pve.home.shdr.ch:8006")).toBe("https://pve.home.shdr.ch:8006");
    expect(c.talosEndpoint("10.0.3.16")).toBe("10.0.3.16:50000");
    expect(c.dial).toBe(dial);
    expect(directConnections.dial).toBeUndefined();
  });

  it("probes where the clients would connect, on both ports", () => {
    expect(c.probeTargets("10.0.3.16")).toEqual([
      { host: "127.0.0.16", port: 41000 },
      { host: "127.0.0.16", port: 6443 },
    ]);
    expect(c.probeTargets("10.0.3.99")).toEqual(directConnections.probeTargets("10.0.3.99"));
  });
});
