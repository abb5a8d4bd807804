import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, type KubeObject } from "../../src/runtime/index.ts";
import { waitFor } from "../harness/wait.ts";
import {
  applySeedExamples,
  type LocalProcess,
  managementCluster,
  prepareChartedLocal,
  removeLocal,
  startLocal,
} from "./local-process.ts";

const CHARTS = "/work/shared/reference/charts";
const HC = { apiVersion: "homelab.shdr.ch/v1alpha1", kind: "HomelabCluster" };
type Condition = { type: string; status: string; reason?: string; message?: string };
type Hc = KubeObject & { status?: { conditions?: Condition[] } };

let dataHome: string;
let stateDir: string;
let local: LocalProcess | undefined;

beforeAll(async () => {
  ({ dataHome, stateDir } = await prepareChartedLocal("homelab-local-components-"));
}, 1_200_000);

afterAll(async () => {
  await removeLocal(local, stateDir, dataHome);
});

describe.skipIf(!existsSync(CHARTS))(
  "local mode: the seed cluster's components from the chart mirror",
  () => {
    it("installs what the mirror has to Ready, Nodes Ready by the real Cilium chart; Knative says why not", async () => {
      process.env.HOMELAB_LOCAL_CHARTS = CHARTS;
      local = await startLocal(dataHome);
      const { kube, run } = await managementCluster(local);
      await applySeedExamples(kube, run);
      const ready = [
        "GatewayApiReady",
        "CiliumReady",
        "MainGatewayReady",
        "HubbleUiRouteReady",
        "CertManagerReady",
        "CrossplaneReady",
      ];
      const hc = await waitFor(
        `hc/k8s ${ready.join(", ")}`,
        async () => {
          const got = await kube.getOrUndefined<Hc>(HC, { name: "k8s" });
          const c = got?.status?.conditions ?? [];
          return ready.every((t) => c.find((x) => x.type === t)?.status === "True") ? got : undefined;
        },
        1_200_000,
        2_000,
      ).catch(async (err: unknown) => {
        const got = await kube.getOrUndefined<Hc>(HC, { name: "k8s" });
        throw new Error(
          `${(err as Error).message}\nconditions: ${JSON.stringify(got?.status?.conditions)}\n--- npm start ---\n${local?.output().slice(-4000)}`,
        );
      });
      const cond = (t: string) => hc.status?.conditions?.find((c) => c.type === t);
      expect(local.output()).toContain("Chart mirror for the platform components");
      // No chart for the Knative Operator in the folder, and no internet: what was tried, not a guess.
      expect(cond("KnativeOperatorReady")).toMatchObject({ status: "False", reason: "InstallFailed" });
      expect(cond("KnativeOperatorReady")?.message).toContain("https://knative.github.io/operator");
      expect(cond("KnativeReady")).toMatchObject({ status: "False", reason: "DependencyNotReady" });
      expect(cond("ComponentsReady")?.status).toBe("False");
      expect(cond("ComponentsReady")?.message).toContain("knative-operator (Failed)");

      // The workload cluster: Nodes Ready because the Cilium chart's agent pods run on them.
      const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
        { apiVersion: "v1", kind: "Secret" },
        { namespace: "homelab-system", name: "k8s-kubeconfig" },
      );
      const kc = new KubeConfig();
      kc.loadFromString(Buffer.from(secret.data?.value ?? "", "base64").toString("utf8"));
      const workload = new KubeClient(kc);
      const nodes = (await workload.list<KubeObject>({ apiVersion: "v1", kind: "Node" })).items;
      for (const n of nodes) {
        const r = ((n.status as { conditions?: Condition[] }).conditions ?? []).find(
          (c) => c.type === "Ready",
        );
        expect(r?.status, n.metadata?.name).toBe("True");
      }
      const agents = await workload.list<KubeObject>(
        { apiVersion: "v1", kind: "Pod" },
        { namespace: "kube-system", labelSelector: "k8s-app=cilium" },
      );
      expect(agents.items.length).toBe(nodes.length);
      expect(
        agents.items.every(
          (p) =>
            p.metadata?.ownerReferences?.[0]?.kind === "DaemonSet" &&
            p.metadata?.labels?.["app.kubernetes.io/part-of"] === "cilium",
        ),
      ).toBe(true);
    }, 1_800_000);
  },
);
