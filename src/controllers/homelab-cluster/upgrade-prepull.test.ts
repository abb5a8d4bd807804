import { describe, expect, it } from "vitest";
import { anyOnTarget, CONTROL_PLANE_COMPONENTS, type Live } from "./upgrade-kubernetes.ts";
import { imagesToPull } from "./upgrade-prepull.ts";

const repositories = {
  controlPlane: CONTROL_PLANE_COMPONENTS.map((c) => c.repository),
  kubelet: "ghcr.io/siderolabs/kubelet",
};

describe("imagesToPull", () => {
  it("control planes get the three component images in CRI and the kubelet in system; workers only the kubelet", () => {
    expect(imagesToPull("controlplane", "v1.35.0", repositories)).toEqual([
      { image: "registry.k8s.io/kube-apiserver:v1.35.0", namespace: "cri" },
      { image: "registry.k8s.io/kube-controller-manager:v1.35.0", namespace: "cri" },
      { image: "registry.k8s.io/kube-scheduler:v1.35.0", namespace: "cri" },
      { image: "ghcr.io/siderolabs/kubelet:v1.35.0", namespace: "system" },
    ]);
    expect(imagesToPull("worker", "v1.35.0", repositories)).toEqual([
      { image: "ghcr.io/siderolabs/kubelet:v1.35.0", namespace: "system" },
    ]);
  });
});

describe("anyOnTarget (whether the first patch has happened)", () => {
  const live = (scheduler: string, kubelet: string): Live => ({
    staticPods: new Map([
      [
        "cp1",
        new Map([
          ["kube-apiserver", { version: "v1.34.1", running: true }],
          ["kube-scheduler", { version: scheduler, running: true }],
        ] as const),
      ],
    ]),
    nodes: new Map([["w1", { kubelet, ready: true }]]),
    readinessMatters: true,
  });

  it("is false while everything runs the old version, true once one component or kubelet runs the target", () => {
    expect(anyOnTarget(live("v1.34.1", "v1.34.1"), "v1.35.0")).toBe(false);
    expect(anyOnTarget(live("v1.35.0", "v1.34.1"), "v1.35.0")).toBe(true);
    expect(anyOnTarget(live("v1.34.1", "v1.35.0"), "v1.35.0")).toBe(true);
  });
});
