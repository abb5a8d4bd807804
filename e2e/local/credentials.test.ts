// Local mode keeps the simulators' credentials in place (src/local/credentials.ts) from watches: at rest
// it sends no request at all to those objects, and a Secret replaced by the example placeholders or a
// deleted ConfigMap is put back with one write. Counted from the API server's audit log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { watchLocalCredentials } from "../../src/local/credentials.ts";
import type { LocalSimulators } from "../../src/local/simulators.ts";
import { createLogger, KubeClient } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import {
  type AuditEvent,
  type AuditedCluster,
  startAuditedCluster,
  WRITE_VERBS,
} from "../runtime/audited-cluster.ts";

const NS = "local-credentials";
const OURS = new Set(["proxmox-token", "proxmox-ca", "local-simulators"]);
// Only the fields credentials.ts reads; no simulator runs here.
const sims = {
  proxmox: {
    url: "https://192.168.1.10:8006",
    tokenId: "root@pam!homelab",
    tokenSecret: "simulator-secret",
    caPem: "-----BEGIN CERTIFICATE-----\nsimulator\n-----END CERTIFICATE-----\n",
    fingerprint: "AA:BB",
  },
  talosEndpoints: { "192.168.1.21": "127.0.0.1:50000" },
} as unknown as LocalSimulators;
const b64 = (s: string) => Buffer.from(s).toString("base64");

let cluster: AuditedCluster;
let client: KubeClient;
let stopWatch: (() => Promise<void>) | undefined;

beforeAll(async () => {
  cluster = await startAuditedCluster("credentials");
  client = new KubeClient(cluster.cp.kubeConfig());
  await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
}, 180_000);

afterAll(async () => {
  await stopWatch?.();
  await cluster?.stop();
});

/** Requests to our three objects, by name (a watch or list of the namespace names none). */
const toOurs = (events: AuditEvent[]) =>
  events.filter((e) => e.objectRef?.namespace === NS && OURS.has(e.objectRef.name ?? ""));
const writes = (events: AuditEvent[]) => toOurs(events).filter((e) => WRITE_VERBS.has(e.verb));

describe("local credentials", () => {
  it("sends no request at rest and puts a replaced Secret or a deleted ConfigMap back with one write", async () => {
    const w = watchLocalCredentials(client, NS, sims, createLogger({ level: "warn" }));
    stopWatch = () => w.stop();
    await w.ready;
    expect(
      writes(await cluster.events())
        .map((e) => e.objectRef?.name)
        .sort(),
    ).toEqual(["local-simulators", "proxmox-ca", "proxmox-token"]);

    // At rest: several seconds (the old loop polled every second) without a single request to them.
    const atRest = toOurs(await cluster.events()).length;
    await new Promise((r) => setTimeout(r, 4_000));
    expect(toOurs(await cluster.events()).length).toBe(atRest);

    // `kubectl apply -f examples/` puts placeholders over the token: it comes back, with one write of ours.
    const before = writes(await cluster.events()).length;
    await client.patch(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: NS, name: "proxmox-token" },
      { data: { secret: b64("REPLACE-ME") } },
      "merge",
    );
    await waitFor("the token put back", async () => {
      const s = await client.get<{ data?: Record<string, string> }>(
        { apiVersion: "v1", kind: "Secret" },
        { namespace: NS, name: "proxmox-token" },
      );
      return s.data?.["secret"] === b64("simulator-secret") ? true : undefined;
    });
    await client.delete({ apiVersion: "v1", kind: "ConfigMap" }, { namespace: NS, name: "local-simulators" });
    await waitFor("the ConfigMap made again", async () =>
      (await client.getOrUndefined(
        { apiVersion: "v1", kind: "ConfigMap" },
        { namespace: NS, name: "local-simulators" },
      ))
        ? true
        : undefined,
    );
    await new Promise((r) => setTimeout(r, 2_000)); // our own writes' watch events find nothing more to do
    // Ours: the patch and the delete; its: one apply each.
    expect(writes(await cluster.events()).length - before).toBe(4);
  });
});
