// How the controller reaches the homelab. Production reaches the addresses in the spec directly; local
// mode and tests map them onto simulators on loopback. This is the one seam: no phase code differs.
import { connect } from "node:net";
import type { Dial } from "../../proxmox/transport.ts";
import { TALOS_API_PORT } from "../../talos/client/talos-client.ts";

export interface Connections {
  /** The Proxmox API base URL to call for `spec.proxmox.endpoint`. */
  proxmoxUrl(endpoint: string): string;
  /** host:port of the Talos API of the node at `ip`. */
  talosEndpoint(ip: string): string;
  /** host:port pairs that must not answer at `ip` before its VM exists (Talos API, Kubernetes API). */
  probeTargets(ip: string): { host: string; port: number }[];
  /** Where a connection really goes (TLS still verifies the name called); unset: where it says. */
  dial?: Dial;
}

export const directConnections: Connections = {
  proxmoxUrl: (endpoint) => endpoint,
  talosEndpoint: (ip) => `${ip}:${TALOS_API_PORT}`,
  probeTargets: (ip) => [
    { host: ip, port: TALOS_API_PORT },
    { host: ip, port: 6443 },
  ],
};

/**
 * The spec's addresses, each connection sent where `dial` says (local mode's seam to its simulators at
 * the seed's addresses). Clients keep the seed's names, so TLS still verifies them.
 */
export function dialledConnections(dial: Dial): Connections {
  return {
    ...directConnections,
    probeTargets: (ip) => directConnections.probeTargets(ip).map(dial),
    dial,
  };
}

/** True when something accepts a TCP connection at host:port within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
