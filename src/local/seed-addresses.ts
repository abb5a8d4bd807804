// The one seam between the seed's network and local mode: connections to the seed's addresses (the
// Talos machines at 10.0.3.16-18:50000, Proxmox VE at pve.home.shdr.ch:8006) are dialled to where the
// simulators listen instead. Controllers and clients keep using the seed's names and addresses, and
// TLS keeps verifying them (the simulators' certificates name them), so nothing else differs between
// local mode and a real homelab.
import type { Dial } from "../proxmox/transport.ts";

/** The seed's Proxmox nodes and the Talos VM on each (kubernetes-exploration.md). */
export const SEED_NODES = [
  { proxmoxNode: "trinity", talos: "talos-trinity", address: "10.0.3.16", loopback: "127.0.0.16" },
  { proxmoxNode: "neo", talos: "talos-neo", address: "10.0.3.17", loopback: "127.0.0.17" },
  { proxmoxNode: "niobe", talos: "talos-niobe", address: "10.0.3.18", loopback: "127.0.0.18" },
] as const;

export const SEED_PROXMOX = { host: "pve.home.shdr.ch", port: 8006 } as const;

export interface SimulatorAddresses {
  proxmox: { host: string; port: number };
  /** Per seed address, where that Talos machine's simulator listens. */
  talos: ReadonlyMap<string, { host: string; port: number }>;
}

/**
 * The dialler for the seed: the Proxmox endpoint goes to the Proxmox simulator, a Talos machine's
 * address (any port: apid 50000, trustd) to its loopback address, with the simulator's port for apid.
 * Everything else is dialled unchanged.
 */
export function seedDial(sims: SimulatorAddresses): Dial {
  return ({ host, port }) => {
    if (host.toLowerCase() === SEED_PROXMOX.host && port === SEED_PROXMOX.port) return sims.proxmox;
    const talos = sims.talos.get(host);
    if (talos) return port === 50000 ? talos : { host: talos.host, port };
    return { host, port };
  };
}
