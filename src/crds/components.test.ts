import { describe, expect, it } from "vitest";
import { ComponentSpec, PlatformSpec } from "./components.ts";

// A HomelabCluster is cluster-scoped: a namespace in a Secret reference would let anyone who may write one
// make the operator read (and install into a workload cluster) any Secret of any namespace.
describe("components API Secret references", () => {
  it("valuesFrom carries no namespace: it is always the operator's", () => {
    const parsed = ComponentSpec.parse({
      name: "gitlab-agent",
      valuesFrom: [{ name: "token", secretKeyRef: { name: "t", namespace: "kube-system", key: "k" } }],
    });
    expect(parsed.valuesFrom?.[0]?.secretKeyRef).toEqual({ name: "t", key: "k" });
  });

  it("the step-ca password reference carries no namespace either", () => {
    const parsed = PlatformSpec.parse({
      domain: "home.shdr.ch",
      stepCa: {
        url: "https://ca.home.shdr.ch",
        rootCertificate: "PEM",
        provisioner: "p",
        provisionerKid: "kid",
        passwordRef: { name: "pw", namespace: "kube-system", key: "password" },
      },
    });
    expect(parsed.stepCa?.passwordRef).toEqual({ name: "pw", key: "password" });
  });
});
