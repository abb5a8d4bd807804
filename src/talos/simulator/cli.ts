// `npm run sim:talos -- [--node name=127.0.0.x[@vX.Y.Z]]... [--kubeconfig FILE] [--out DIR]`
// Starts simulated Talos nodes until interrupted. With --out, also writes a secrets bundle, a machine
// config per node and an admin talosconfig for them, so talosctl can be pointed at the simulator:
//   talosctl apply-config --insecure -n 127.0.0.2 -e 127.0.0.2 --file DIR/<node>.yaml
//   talosctl --talosconfig DIR/talosconfig -n 127.0.0.2 -e 127.0.0.2 bootstrap
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exampleClusterInput as homelabInput } from "../config/example-input.ts";
import {
  bundleToYaml,
  ensureSecretsBundle,
  generateAdminTalosconfig,
  generateClusterConfigs,
  talosconfigToYaml,
} from "../config/index.ts";
import { type SimulatorNodeSpec, startTalosSimulator } from "./simulator.ts";

const { values } = parseArgs({
  options: {
    node: { type: "string", multiple: true },
    kubeconfig: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(
    "usage: npm run sim:talos -- [--node name=127.0.0.x[@vX.Y.Z]]... [--kubeconfig FILE] [--out DIR]",
  );
  process.exit(0);
}

const specs: SimulatorNodeSpec[] = (
  values.node ?? ["talos-1=127.0.0.2", "talos-2=127.0.0.3", "talos-3=127.0.0.4"]
).map((arg) => {
  const m = /^([a-z0-9-]+)=(127\.\d+\.\d+\.\d+)(?:@(v\d+\.\d+\.\d+))?$/.exec(arg);
  if (!m) throw new Error(`--node ${arg}: expected name=127.x.y.z[@vX.Y.Z]`);
  return { name: m[1] as string, ip: m[2] as string, talosVersion: m[3] };
});

const kubeconfig = values.kubeconfig ? await readFile(values.kubeconfig, "utf8") : undefined;
const sim = await startTalosSimulator({
  nodes: specs,
  kubeconfig,
  log: (line) => console.log(`[sim] ${line}`),
});

for (const n of sim.nodes) console.log(`${n.name}\t${n.endpoint}`);

if (values.out) {
  await mkdir(values.out, { recursive: true });
  const secrets = ensureSecretsBundle();
  const first = specs[0]?.ip ?? "127.0.0.2";
  const input = {
    ...homelabInput,
    clusterName: "sim",
    endpoint: `https://${first}:6443`,
    network: { ...homelabInput.network, controlPlaneVip: undefined },
    nodes: specs.map((s) => ({ name: s.name, ip: s.ip, role: "controlplane" as const })),
  };
  await writeFile(join(values.out, "secrets.yaml"), bundleToYaml(secrets), { mode: 0o600 });
  for (const c of generateClusterConfigs(input, secrets)) {
    await writeFile(join(values.out, `${c.node}.yaml`), c.yaml, { mode: 0o600 });
  }
  const talosconfig = generateAdminTalosconfig(secrets, {
    contextName: "sim",
    endpoints: sim.nodes.map((n) => n.endpoint),
  });
  await writeFile(join(values.out, "talosconfig"), talosconfigToYaml(talosconfig), { mode: 0o600 });
  console.log(`wrote secrets.yaml, talosconfig and one config per node to ${values.out}`);
}

const stop = async () => {
  await sim.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
