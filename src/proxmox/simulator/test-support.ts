// Unit tests only (production code never imports this): a simulator on loopback with a ProxmoxClient that
// trusts its CA and retries fast, plus an undici Agent for tests that send raw requests past the client.
import { Agent } from "undici";
import { ProxmoxClient, type ProxmoxClientOptions } from "../client.ts";
import { ProxmoxTaskFailedError } from "../errors.ts";
import type { Upid } from "../upid.ts";
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

/** The task's exit status: "OK", or the failure text of a task that ended in error. */
export async function taskOutcome(client: ProxmoxClient, task: Promise<Upid>): Promise<string> {
  try {
    return (await client.waitForTask(await task)).exitstatus ?? "";
  } catch (err) {
    if (err instanceof ProxmoxTaskFailedError) return err.exitstatus;
    throw err;
  }
}
