import { describe, expect, it } from "vitest";
import type { HomelabCluster } from "../../crds/homelab-cluster.ts";
import { type Live, skewProblem, workerKubeletBatch } from "./upgrade-kubernetes.ts";

const spec = {
  nodes: [
    { name: "cp1", role: "controlplane" },
    { name: "w1", role: "worker" },
  ],
} as unknown as HomelabCluster["spec"];

function live(apiServer: string, kubelet: string): Live {
  const pod = (version: string) => ({ version, running: true });
  return {
    staticPods: new Map([
      [
        "cp1",
        new Map([
          ["kube-apiserver", pod(apiServer)],
          ["kube-controller-manager", pod(apiServer)],
          ["kube-scheduler", pod(apiServer)],
        ] as const),
      ],
    ]),
    nodes: new Map([
      ["cp1", { kubelet, ready: true }],
      ["w1", { kubelet, ready: true }],
    ]),
    readinessMatters: true,
  };
}

describe("skewProblem (Kubernetes version skew policy)", () => {
  it("allows the same version, a patch and the next minor", () => {
    expect(skewProblem("v1.34.1", live("v1.34.1", "v1.34.1"), spec)).toBeUndefined();
    expect(skewProblem("v1.34.3", live("v1.34.1", "v1.34.1"), spec)).toBeUndefined();
    expect(skewProblem("v1.35.0", live("v1.34.1", "v1.33.2"), spec)).toBeUndefined();
  });

  it("refuses two minors at once and downgrades, naming the component", () => {
    expect(skewProblem("v1.36.0", live("v1.34.1", "v1.34.1"), spec)).toMatchObject({
      reason: "KubernetesSkewRefused",
      message: expect.stringContaining("kube-apiserver on cp1 runs v1.34.1"),
    });
    expect(skewProblem("v1.34.0", live("v1.34.1", "v1.34.1"), spec)).toMatchObject({
      reason: "KubernetesDowngradeRefused",
    });
    expect(skewProblem("v1.33.9", live("v1.34.1", "v1.34.1"), spec)?.reason).toBe(
      "KubernetesDowngradeRefused",
    );
  });

  it("refuses an API server more than three minors ahead of a kubelet", () => {
    expect(skewProblem("v1.35.0", live("v1.34.1", "v1.32.0"), spec)).toBeUndefined();
    expect(skewProblem("v1.35.0", live("v1.34.1", "v1.31.4"), spec)).toMatchObject({
      reason: "KubernetesSkewRefused",
      message: expect.stringContaining("kubelet of cp1 runs v1.31.4"),
    });
  });
});

describe("workerKubeletBatch (upgrade.maxUnavailable for workers' kubelets)", () => {
  const order = [
    { name: "cp1", role: "controlplane" },
    { name: "w1", role: "worker" },
    { name: "w2", role: "worker" },
    { name: "w3", role: "worker" },
  ] as unknown as HomelabCluster["spec"]["nodes"];
  const at = (versions: Record<string, string>, notReady: string[] = []) => ({
    nodes: new Map(
      Object.entries(versions).map(([n, kubelet]) => [n, { kubelet, ready: !notReady.includes(n) }]),
    ),
    readinessMatters: true,
  });
  const names = (nodes: { name: string }[]) => nodes.map((n) => n.name);

  it("holds no worker while a control plane's kubelet is pending", () => {
    const live = at({ cp1: "v1.34.1", w1: "v1.34.1", w2: "v1.34.1", w3: "v1.34.1" });
    expect(workerKubeletBatch(order, live, "v1.35.0", 2)).toEqual([]);
  });

  it("takes the first maxUnavailable pending workers, a worker on the target but not Ready still counting", () => {
    const live = at({ cp1: "v1.35.0", w1: "v1.35.0", w2: "v1.34.1", w3: "v1.34.1" }, ["w1"]);
    expect(names(workerKubeletBatch(order, live, "v1.35.0", 2))).toEqual(["w1", "w2"]);
    expect(names(workerKubeletBatch(order, live, "v1.35.0", 1))).toEqual(["w1"]);
    expect(names(workerKubeletBatch(order, live, "v1.35.0", 5))).toEqual(["w1", "w2", "w3"]);
    const done = at({ cp1: "v1.35.0", w1: "v1.35.0", w2: "v1.35.0", w3: "v1.34.1" });
    expect(names(workerKubeletBatch(order, done, "v1.35.0", 2))).toEqual(["w3"]);
  });
});
