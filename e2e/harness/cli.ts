// `npm run control-plane`: one control plane in the foreground until Ctrl-C.

import { pinnedVersions } from "../../src/local/control-plane/versions.ts";
import { startControlPlane } from "./control-plane.ts";

const versions = pinnedVersions();
const cp = await startControlPlane({ name: process.argv[2] ?? "dev" });
console.log(
  `Kubernetes ${versions.kubernetes} (etcd ${versions.etcd}) ready in ${(cp.startupMs / 1000).toFixed(1)} s`,
);
console.log(`API server: ${cp.server}`);
console.log(`kubeconfig: ${cp.kubeconfigPath}`);
console.log(`  export KUBECONFIG=${cp.kubeconfigPath}`);
console.log("Ctrl-C stops it and removes its folder.");
// Keep the process alive; control-plane.ts stops the processes and removes the folder on SIGINT/SIGTERM.
setInterval(() => {}, 1 << 30);
