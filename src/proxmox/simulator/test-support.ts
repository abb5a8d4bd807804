// Unit tests only (production code never imports this): a simulator on loopback with a ProxmoxClient that
// trusts its CA and retries fast, plus an undici Agent for tests that send raw requests past the client.
import { Agent } from "undici";
import { ProxmoxClient, type ProxmoxClientOptions } from "../client.ts";
import { type ProxmoxSimulator, type ProxmoxSimulatorOptions, startProxmoxSimulator } from "./server.ts";

export interface SimulatorWithClient {
  sim: ProxmoxSimulator;
  client: ProxmoxClient;
  agent: Agent;
  /** Closes the agent and the client, then stops the simulator. */
  stop(): Promise<void>;
}

export async function startSimulatorWithClient(
  options: ProxmoxSimulatorOptions = {},
  client: Pick<ProxmoxClientOptions, "timeoutMs"> = {},
): Promise<SimulatorWithClient> {
  const sim = await startProxmoxSimulator(options);
  const agent = new Agent({ connect: { ca: sim.caPem } });
  const proxmox = new ProxmoxClient({
    url: sim.url,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { caPem: sim.caPem },
    retry: { baseMs: 5 },
    ...client,
  });
  return {
    sim,
    client: proxmox,
    agent,
    async stop() {
      await agent.close();
      await proxmox.close();
      await sim.stop();
    },
  };
}
