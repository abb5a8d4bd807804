import { describe, expect, it } from "vitest";
import { COMPONENT_NAMES } from "../crds/components.ts";
import { CATALOG, type CatalogEntry, ciliumTalosValues } from "./catalog.ts";
import { blockers, dependents, installOrder } from "./plan.ts";
import { platformObjectsFor } from "./platform-objects.ts";
import { rolloutComplete } from "./readiness.ts";
import { canonicalJson, mergeValues, setPath } from "./values.ts";

const platform = { domain: "home.shdr.ch", kubePrismPort: 7445 };

describe("catalog", () => {
  it("names exactly the components the API accepts", () => {
    expect(CATALOG.map((e) => e.name).sort()).toEqual([...COMPONENT_NAMES].sort());
  });

  it("depends only on components it has, without cycles", () => {
    const names = new Set(CATALOG.map((e) => e.name));
    for (const e of CATALOG) for (const d of e.dependsOn) expect(names, `${e.name} -> ${d}`).toContain(d);
    expect(installOrder(CATALOG)).toHaveLength(CATALOG.length);
  });

  it("gives Cilium the Talos values: KubePrism, cgroup, no SYS_MODULE, stable Hubble TLS", () => {
    // biome-ignore lint/suspicious/noExplicitAny: walking nested chart values in assertions
    const v = ciliumTalosValues(platform) as any;
    expect(v.kubeProxyReplacement).toBe(true);
    expect([v.k8sServiceHost, v.k8sServicePort]).toEqual(["localhost", 7445]);
    expect(v.cgroup).toEqual({ autoMount: { enabled: false }, hostRoot: "/sys/fs/cgroup" });
    expect(v.securityContext.capabilities.ciliumAgent).not.toContain("SYS_MODULE");
    expect(v.securityContext.capabilities.cleanCiliumState).toEqual([
      "NET_ADMIN",
      "SYS_ADMIN",
      "SYS_RESOURCE",
    ]);
    expect(v.hubble.tls.auto.method).not.toBe("helm");
    expect(v.gatewayAPI.enabled && v.l2announcements.enabled && v.hubble.ui.enabled).toBe(true);
  });

  it("serves apps under *.apps.<domain> on the main gateway", () => {
    const gw = CATALOG.find((e) => e.name === "main-gateway")
      ?.platformObjects(platform, {})
      .find((o) => o.kind === "Gateway");
    const spec = gw?.spec as { listeners: { hostname: string }[] } | undefined;
    expect(spec?.listeners[0]?.hostname).toBe("*.apps.home.shdr.ch");
  });
});

describe("step-ca issuer", () => {
  const stepCa = {
    url: "https://ca.home.shdr.ch",
    rootCertificate: "PEM",
    provisioner: "admin",
    provisionerKid: "kid1",
  };

  it("points the issuer at a Secret holding the password read at install time", () => {
    const objs = platformObjectsFor("step-issuer", { ...platform, stepCa: { ...stepCa, password: "pw" } });
    const secret = objs.find((o) => o.kind === "Secret");
    const issuer = objs.find((o) => o.kind === "StepClusterIssuer");
    const spec = issuer?.spec as
      | { caBundle: string; provisioner: { passwordRef: { name: string; namespace: string } } }
      | undefined;
    const ref = spec?.provisioner.passwordRef;
    expect([ref?.namespace, ref?.name]).toEqual([secret?.metadata?.namespace, secret?.metadata?.name]);
    expect(secret?.stringData).toEqual({ password: "pw" });
    expect(spec?.caBundle).toBe(Buffer.from("PEM").toString("base64"));
  });

  it("makes no Secret without a password", () => {
    expect(platformObjectsFor("step-issuer", { ...platform, stepCa }).map((o) => o.kind)).toEqual([
      "StepClusterIssuer",
    ]);
  });
});

describe("plan", () => {
  const e = (name: string, dependsOn: string[] = []) => ({ name, dependsOn }) as unknown as CatalogEntry;

  it("orders dependencies first, stable by list order", () => {
    expect(installOrder([e("c", ["b"]), e("a"), e("b", ["a"]), e("d")]).map((x) => x.name)).toEqual([
      "a",
      "b",
      "c",
      "d",
    ]);
  });

  it("refuses a cycle", () => {
    expect(() => installOrder([e("a", ["b"]), e("b", ["a"])])).toThrow(/cycle/);
  });

  it("blocks only on unready dependencies", () => {
    expect(blockers(e("x", ["a", "b"]), new Set(["a"]))).toEqual(["b"]);
    expect(blockers(e("y", ["a"]), new Set(["a"]))).toEqual([]);
  });

  it("lists enabled dependents", () => {
    expect(dependents("a", [e("b", ["a"]), e("c"), e("d", ["x", "a"])])).toEqual(["b", "d"]);
  });
});

describe("values", () => {
  it("merges maps and replaces lists, as helm -f does", () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] }, d: 4 })).toEqual({
      a: { b: 1, c: [3] },
      d: 4,
    });
  });

  it("sets a dotted path without touching the input", () => {
    const base = { config: { kasAddress: "wss://k" } };
    expect(setPath(base, "config.token", "t")).toEqual({ config: { kasAddress: "wss://k", token: "t" } });
    expect(base).toEqual({ config: { kasAddress: "wss://k" } });
    expect(() => setPath({ config: "x" }, "config.token", "t")).toThrow(/not a map/);
  });

  it("compares values regardless of key order", () => {
    expect(canonicalJson({ a: 1, b: { c: 2, d: 3 } })).toBe(canonicalJson({ b: { d: 3, c: 2 }, a: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });
});

describe("rolloutComplete", () => {
  const dep = (status: object, generation = 2, replicas = 2) => ({
    kind: "Deployment",
    metadata: { generation },
    spec: { replicas },
    status,
  });

  it("waits for the controller to observe the newest generation", () => {
    expect(
      rolloutComplete(dep({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }))
        .done,
    ).toBe(false);
  });

  it("waits while old replicas remain", () => {
    expect(
      rolloutComplete(dep({ observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2 }))
        .done,
    ).toBe(false);
    expect(
      rolloutComplete(dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }))
        .done,
    ).toBe(true);
  });

  it("never calls a DaemonSet on no nodes ready", () => {
    const ds = (s: object) => ({
      kind: "DaemonSet",
      metadata: { generation: 1 },
      status: { observedGeneration: 1, ...s },
    });
    expect(rolloutComplete(ds({ desiredNumberScheduled: 0 })).done).toBe(false);
    expect(
      rolloutComplete(ds({ desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 })).done,
    ).toBe(false);
    expect(
      rolloutComplete(ds({ desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })).done,
    ).toBe(true);
  });
});
