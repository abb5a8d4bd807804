import { describe, expect, it } from "vitest";
import { AppVending } from "./app-vending.ts";
import { example, loadExamples } from "./examples.ts";
import { HomelabCluster } from "./homelab-cluster.ts";
import { KINDS } from "./index.ts";
import { INVALID_CASES } from "./invalid-objects.ts";
import { PeerTenant } from "./peer-tenant.ts";
import { WorkloadMigration } from "./workload-migration.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests mutate example objects freely before validating them.
type Loose = any;

function schemaFor(kind: string) {
  const found = KINDS.find((k) => k.kind === kind);
  if (found === undefined) throw new Error(`unknown kind ${kind}`);
  return found.schema;
}

function issueMessages(kind: string, object: unknown): string[] {
  const result = schemaFor(kind).safeParse(object);
  return result.success ? [] : result.error.issues.map((i) => i.message);
}

describe("every example parses with its kind's schema", () => {
  const custom = loadExamples().filter((d) => d.object.apiVersion === "homelab.shdr.ch/v1alpha1");
  it("covers all four kinds", () => {
    expect(new Set(custom.map((d) => d.object.kind))).toEqual(new Set(KINDS.map((k) => k.kind)));
  });
  it.each(custom.map((d) => [`${d.file}: ${d.object.kind}/${d.object.metadata.name}`, d] as const))(
    "%s",
    (_, d) => {
      expect(issueMessages(d.object.kind, d.object)).toEqual([]);
    },
  );
});

describe("the zod schemas reject every invalid object of the shared table", () => {
  const creates = INVALID_CASES.filter((c) => c.operation === "create");
  it.each(creates.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const object = c.base();
    c.mutate(object);
    const messages = issueMessages(object.kind, object);
    expect(messages.join("\n")).toContain(c.zodMessage ?? c.apiMessage);
  });
});

describe("HomelabCluster", () => {
  it("applies the defaults the CRD declares", () => {
    const parsed = HomelabCluster.schema.parse(example("HomelabCluster", "k8s"));
    expect(parsed.spec.talos.imageFactory).toBe("https://factory.talos.dev");
    expect(parsed.spec.talos.installDisk).toBe("/dev/vda");
    expect(parsed.spec.network.interface).toBe("eth0");
    expect(parsed.spec.components.find((c) => c.name === "cilium")?.enabled).toBe(true);
  });

  const valid: [string, (o: Loose) => void][] = [
    [
      "one control plane and two workers without scheduling on control planes",
      (o: Loose) => {
        o.spec.nodes[1].role = "worker";
        o.spec.nodes[2].role = "worker";
        o.spec.nodes.splice(0, 1, { ...o.spec.nodes[0], role: "controlplane" });
        o.spec.kubernetes.allowSchedulingOnControlPlanes = false;
      },
    ],
    [
      "a pinned fingerprint instead of a CA bundle",
      (o: Loose) => {
        o.spec.proxmox.tls = { fingerprint: Array.from({ length: 32 }, () => "0F").join(":") };
      },
    ],
    [
      "no VIP",
      (o: Loose) => {
        delete o.spec.network.vip;
      },
    ],
    [
      "Secret names with dots",
      (o: Loose) => {
        o.spec.proxmox.credentialsRef.name = "proxmox.token.k8s";
        o.spec.proxmox.tls.caBundleRef.name = "pve.home.shdr.ch-ca";
      },
    ],
    [
      "a control-plane VIP beside Cilium's VIP",
      (o: Loose) => {
        o.spec.network.controlPlaneVIP = "10.0.3.20";
        o.spec.kubernetes.endpoint = "https://10.0.3.20:6443";
      },
    ],
    [
      "five control planes",
      (o: Loose) => {
        for (const i of [4, 5]) {
          o.spec.nodes.push({
            ...o.spec.nodes[0],
            name: `talos-${i}`,
            vmid: 1030 + i,
            ip: `10.0.3.${20 + i}`,
          });
        }
      },
    ],
  ];
  it.each(valid)("accepts %s", (_, mutate) => {
    const o = example("HomelabCluster", "k8s");
    mutate(o);
    expect(issueMessages("HomelabCluster", o)).toEqual([]);
  });

  const invalid: [string, (o: Loose) => void, string][] = [
    ["no nodes", (o) => (o.spec.nodes = []), ">=1"],
    ["a VIP equal to the gateway", (o) => (o.spec.network.vip = "10.0.3.1"), "network.vip must differ"],
    [
      "a control-plane VIP equal to Cilium's VIP",
      (o) => (o.spec.network.controlPlaneVIP = "10.0.3.19"),
      "network.controlPlaneVIP must differ from network.vip",
    ],
    [
      "a gateway that is a node",
      (o) => (o.spec.network.gateway = "10.0.3.16"),
      "gateway must not be a node ip",
    ],
    [
      "overlapping pod and service subnets",
      (o) => (o.spec.kubernetes.serviceSubnet = "10.244.128.0/17"),
      "podSubnet and kubernetes.serviceSubnet must not overlap",
    ],
    ["a leading-zero address", (o) => (o.spec.network.gateway = "10.0.3.01"), "must be an IPv4 address"],
    ["memory below 2 GiB", (o) => (o.spec.nodes[0].memoryMiB = 1024), ">=2048"],
    [
      "a bad health timeout",
      (o) => (o.spec.upgrade = { healthTimeout: "ten minutes" }),
      "must be a duration",
    ],
  ];
  it.each(invalid)("rejects %s", (_, mutate, message) => {
    const o = example("HomelabCluster", "k8s");
    mutate(o);
    expect(issueMessages("HomelabCluster", o).join("\n")).toContain(message);
  });
});

describe("PeerTenant", () => {
  it("fills bob's omitted fields with the documented defaults", () => {
    const bob = PeerTenant.schema.parse(example("PeerTenant", "bob"));
    expect(bob.spec.namespaces).toEqual({ additional: [], max: 3, adopt: [] });
    expect(bob.spec.network.allowIngressFromNamespaces).toEqual(["knative-serving"]);
    expect(bob.spec.vending.allowedDomains).toEqual(["apps.home.shdr.ch"]);
    expect(bob.spec.deletionPolicy).toBe("Retain");
  });
  it.each([
    ["a 30-character name", "a".repeat(30), true],
    ["a 31-character name", "a".repeat(31), false],
    ["a name starting with a digit", "1alice", false],
    ["a name with a dot", "alice.b", false],
  ] as const)("%s: valid=%s", (_, name, ok) => {
    const o = example("PeerTenant", "bob");
    o.metadata.name = name;
    expect(issueMessages("PeerTenant", o).length === 0).toBe(ok);
  });
});

describe("AppVending", () => {
  it.each([
    ["only a bucket", { bucket: { acl: "private" } }],
    ["only a database", { database: {} }],
    ["an app without hostname", { app: { image: "ghcr.io/alice/api:2.1" } }],
    [
      "an env var from a Secret",
      { app: { image: "nginx", env: [{ name: "TOKEN", secretKeyRef: { name: "api", key: "token" } }] } },
    ],
  ])("accepts %s", (_, spec) => {
    const o = example("AppVending", "portfolio");
    o["spec"] = spec;
    expect(issueMessages("AppVending", o)).toEqual([]);
  });
  it("defaults scale to zero", () => {
    const o = example("AppVending", "portfolio");
    o["spec"] = { app: { image: "nginx" } };
    expect(AppVending.schema.parse(o).spec.app?.scale).toEqual({ min: 0, max: 3 });
  });
});

describe("WorkloadMigration", () => {
  it("accepts a HelmRelease target with helm and no template", () => {
    const o = example("WorkloadMigration", "ups-stack") as Loose;
    o.spec.targets = [
      {
        name: "synapse",
        kind: "HelmRelease",
        helm: { repository: "https://ananace.gitlab.io/charts", chart: "matrix-synapse", version: "3.12.0" },
      },
    ];
    expect(issueMessages("WorkloadMigration", o)).toEqual([]);
  });
  it("accepts a CronJob target with a schedule", () => {
    const o = example("WorkloadMigration", "ups-stack") as Loose;
    o.spec.targets = [
      {
        name: "nuclei",
        kind: "CronJob",
        template: { image: "projectdiscovery/nuclei", schedule: "@weekly" },
      },
    ];
    expect(issueMessages("WorkloadMigration", o)).toEqual([]);
  });
  it("keeps the VM unless told otherwise", () => {
    const o = example("WorkloadMigration", "ups-stack") as Loose;
    delete o.spec.decommission;
    const parsed = WorkloadMigration.schema.parse(o);
    expect(parsed.spec.decommission).toEqual({ stopVM: true, requireApproval: true });
    expect(parsed.spec.cutover.mode).toBe("Manual");
  });
});
