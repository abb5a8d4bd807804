import { readFile, writeFile } from "node:fs/promises";
import { stringify } from "yaml";

export interface KubeconfigUser {
  name: string;
  certFile: string;
  keyFile: string;
}

/** Writes a self-contained kubeconfig (certificates embedded) for one cluster and one user. */
export async function writeKubeconfig(
  path: string,
  clusterName: string,
  server: string,
  caFile: string,
  user: KubeconfigUser,
): Promise<void> {
  const b64 = async (file: string) => (await readFile(file)).toString("base64");
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: clusterName, cluster: { server, "certificate-authority-data": await b64(caFile) } }],
    users: [
      {
        name: user.name,
        user: {
          "client-certificate-data": await b64(user.certFile),
          "client-key-data": await b64(user.keyFile),
        },
      },
    ],
    contexts: [{ name: `${user.name}@${clusterName}`, context: { cluster: clusterName, user: user.name } }],
    "current-context": `${user.name}@${clusterName}`,
  };
  await writeFile(path, stringify(doc), { mode: 0o600 });
}
