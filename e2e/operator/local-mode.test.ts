// `npm start` with no cluster configured: the operator brings up the embedded control plane, installs
// the CRDs, becomes ready and reconciles; SIGTERM stops it and removes the control plane.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { ProxmoxClient } from "../../src/proxmox/index.ts";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { freePort } from "../harness/ports.ts";
import { waitFor } from "../harness/wait.ts";

let operator: ChildProcess | undefined;

afterAll(() => {
  operator?.kill("SIGKILL");
});

describe("npm start without a cluster", () => {
  it("starts the embedded control plane, the simulators and a ready operator that reconciles", async () => {
    const healthPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOMELAB_LOCAL: "true",
      HEALTH_PORT: String(healthPort),
      LOG_LEVEL: "info",
      MAX_CONCURRENT_RECONCILES: "3",
    };
    env.KUBECONFIG = "";
    operator = spawn(process.execPath, ["src/main.ts"], { env, stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    operator.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => operator?.once("exit", (code) => resolve(code)));

    await waitFor(
      "/readyz to answer 200",
      async () => ((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok ? true : undefined),
      120_000,
    );
    const kubeconfig = /export KUBECONFIG=([^\s"]+)/.exec(output)?.[1];
    expect(kubeconfig, output).toBeDefined();
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig!);
    const client = new KubeClient(kc);

    await client.create({
      apiVersion: "homelab.shdr.ch/v1alpha1",
      kind: "PeerTenant",
      metadata: { name: "local" },
      spec: { owners: { users: ["local"] } },
    });
    await waitFor("the PeerTenant to become Ready", async () => {
      const t = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "PeerTenant" },
        { name: "local" },
      );
      return t.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined;
    });
    const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    expect(metrics).toMatch(
      /controller_runtime_reconcile_total\{controller="peertenant",result="success"\} [1-9]/,
    );
    // MAX_CONCURRENT_RECONCILES reached the controller (the default is 8).
    expect(metrics).toMatch(/controller_runtime_max_concurrent_reconciles\{controller="peertenant"\} 3\b/);

    // The Proxmox simulator runs with the seed's nodes, reachable with the credentials written for it.
    const secret = await client.get<KubeObject & { data?: Record<string, string> }>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: "homelab-system", name: "proxmox-token" },
    );
    const ca = await client.get<KubeObject & { data?: Record<string, string> }>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace: "homelab-system", name: "proxmox-ca" },
    );
    const endpoints = await client.get<KubeObject & { data?: Record<string, string> }>(
      { apiVersion: "v1", kind: "ConfigMap" },
      { namespace: "homelab-system", name: "local-simulators" },
    );
    const decode = (b64?: string) => Buffer.from(b64 ?? "", "base64").toString();
    const proxmox = new ProxmoxClient({
      url: endpoints.data?.["proxmox.url"] ?? "",
      tokenId: decode(secret.data?.tokenID),
      tokenSecret: decode(secret.data?.secret),
      tls: { caPem: decode(ca.data?.["ca.crt"]) },
    });
    expect((await proxmox.listNodes()).map((n) => n.node).sort()).toEqual(["neo", "niobe", "trinity"]);
    await proxmox.close();
    expect(Object.keys(JSON.parse(endpoints.data?.["talos.endpoints"] ?? "{}"))).toEqual([
      "talos-trinity",
      "talos-neo",
      "talos-niobe",
    ]);

    operator.kill("SIGTERM");
    expect(await exited).toBe(0);
    const dir = kubeconfig!.replace(/\/admin\.kubeconfig$/, "");
    expect(existsSync(dir)).toBe(false);
  });
});
