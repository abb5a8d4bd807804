// `npm run sim:proxmox`: a standalone simulator for poking at with curl, pvesh-like scripts or the
// operator. Prints where it listens, its CA and a token; Ctrl-C stops it.
//   npm run sim:proxmox -- [--port 8006] [--nodes pve1,pve2,pve3] [--task-ms 500] [--state-dir DIR]
import { unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startProxmoxSimulator } from "./server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8006" },
    nodes: { type: "string", default: "pve1,pve2,pve3" },
    "task-ms": { type: "string", default: "500" },
    // Keeps VMs, volumes, HA and tasks in DIR across restarts (and kills).
    "state-dir": { type: "string" },
  },
});

const sim = await startProxmoxSimulator({
  port: Number(values.port),
  nodes: values.nodes.split(",").filter(Boolean),
  taskDurationMs: Number(values["task-ms"]),
  ...(values["state-dir"] ? { stateDir: values["state-dir"] } : {}),
});
const caFile = join(tmpdir(), `proxmox-simulator-ca-${process.pid}.pem`);
writeFileSync(caFile, sim.caPem);

console.log(`Proxmox VE simulator listening on ${sim.url}/api2/json
  nodes:        ${sim.cluster.nodes.join(", ")}
  CA:           ${caFile}
  fingerprint:  ${sim.fingerprint}
  token:        PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}
  admin:        curl --cacert ${caFile} -H 'Authorization: Bearer ${sim.adminSecret}' ${sim.url}/simulator/faults

  try: curl --cacert ${caFile} -H 'Authorization: PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}' ${sim.url}/api2/json/nodes
`);
console.log(sim.caPem);

const shutdown = async () => {
  await sim.stop();
  unlinkSync(caFile);
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
