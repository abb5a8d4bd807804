import { describe, expect, it } from "vitest";
import { kubeconfigFromSecret } from "./cluster-cache.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("kubeconfigFromSecret", () => {
  it("reads Cluster API's `value` key first, then `kubeconfig`", () => {
    expect(kubeconfigFromSecret({ data: { value: b64("from value"), kubeconfig: b64("other") } })).toBe(
      "from value",
    );
    expect(kubeconfigFromSecret({ data: { kubeconfig: b64("from kubeconfig") } })).toBe("from kubeconfig");
  });

  it("gives nothing for a Secret with neither key, or with no data", () => {
    expect(kubeconfigFromSecret({ data: { config: b64("x") } })).toBeUndefined();
    expect(kubeconfigFromSecret({})).toBeUndefined();
  });
});
