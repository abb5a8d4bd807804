// The local homelab's Proxmox simulator, reached the way the operator reaches it: the seed's URL, the
// credentials local mode stores as Secrets, dialled through the seam to where the simulator listens.
import { SEED_PROXMOX, seedDial } from "../../src/local/seed-addresses.ts";
import { ProxmoxClient } from "../../src/proxmox/client.ts";
import type { KubeClient, KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";

export async function seedProxmox(kube: KubeClient): Promise<ProxmoxClient> {
  const data = async (kind: string, name: string) =>
    (
      await kube.get<KubeObject & { data?: Record<string, string> }>(
        { apiVersion: "v1", kind },
        { namespace: "homelab-system", name },
      )
    ).data ?? {};
  const decode = (b64?: string) => Buffer.from(b64 ?? "", "base64").toString();
  // `kubectl apply -f examples/` writes the example Secrets' placeholders; local mode puts its real
  // credentials back, so wait until it has.
  const token = await waitFor(
    "local mode's Proxmox token in place of the example's placeholder",
    async () => {
      const t = await data("Secret", "proxmox-token");
      return decode(t.secret).includes("REPLACE") ? undefined : t;
    },
    60_000,
    500,
  );
  const ca = await data("Secret", "proxmox-ca");
  const url = new URL((await data("ConfigMap", "local-simulators"))["proxmox.url"] ?? "");
  return new ProxmoxClient({
    url: `https://${SEED_PROXMOX.host}:${SEED_PROXMOX.port}`,
    tokenId: decode(token.tokenID),
    tokenSecret: decode(token.secret),
    tls: { caPem: decode(ca["ca.crt"]) },
    dial: seedDial({ proxmox: { host: url.hostname, port: Number(url.port) }, talos: new Map() }),
  });
}
