// The pure parts of the HomelabCluster controller: what it names, what it asks Proxmox for, how it maps
// the spec onto Talos, and what it would mistake for its own VM (it must not).
import { describe, expect, it } from "vitest";
import { loadExamples } from "../../crds/examples.ts";
import { HomelabCluster } from "../../crds/homelab-cluster.ts";
import { generateNodeConfig } from "../../talos/config/machine-config.ts";
import { ensureSecretsBundle } from "../../talos/config/secrets.ts";
import { bootstrapNode, haRuleName, isOurVm, talosImage, vmTags } from "./names.ts";
import type { Scope } from "./scope.ts";
import { talosInput } from "./talos.ts";
import { requiredPrivileges } from "./validate.ts";
import { vmConfig } from "./vms.ts";

const seed = HomelabCluster.schema.parse(
  loadExamples().find((d) => d.object.kind === "HomelabCluster" && d.object.metadata.name === "k8s")!.object,
);
const scope = { spec: seed.spec, name: "k8s" } as Scope;

describe("what the controller calls its own", () => {
  it("recognises its VM only by both the cluster and the node tag", () => {
    const tags = vmTags("k8s", "talos-neo").join(";");
    expect(isOurVm(tags, "k8s", "talos-neo")).toBe(true);
    expect(isOurVm(tags, "k8s", "talos-niobe")).toBe(false); // another node's VM
    expect(isOurVm(tags, "k9s", "talos-neo")).toBe(false); // another cluster's node of the same name
    expect(isOurVm("homelab-cluster.k8s", "k8s", "talos-neo")).toBe(false);
    expect(isOurVm("homelab-node.talos-neo", "k8s", "talos-neo")).toBe(false);
    expect(isOurVm(undefined, "k8s", "talos-neo")).toBe(false);
    expect(isOurVm("homelab-cluster.k8s2;homelab-node.talos-neo", "k8s", "talos-neo")).toBe(false);
  });

  it("names the image by version and schematic, as an import-content qcow2 (never a compressed one)", () => {
    const image = talosImage(seed.spec);
    expect(image.url).toBe(
      `https://factory.talos.dev/image/${seed.spec.talos.schematic}/v1.11.0/nocloud-amd64.qcow2`,
    );
    expect(image.volid("cephfs")).toBe(
      `cephfs:import/talos-v1.11.0-${seed.spec.talos.schematic}-nocloud-amd64.qcow2`,
    );
    const other = talosImage({ ...seed.spec, talos: { ...seed.spec.talos, schematic: "0".repeat(64) } });
    expect(other.filename).not.toBe(image.filename);
  });

  it("bootstraps on the first control plane in spec order and names the HA rule after the cluster", () => {
    expect(bootstrapNode(seed.spec).name).toBe("talos-trinity");
    expect(haRuleName("k8s")).toBe("homelab-k8s-control-planes");
  });
});

describe("the VM it asks Proxmox for", () => {
  it("has the seed's shape: cores, host CPU, memory without balloon, import-from disk, VLAN NIC, cloud-init network", () => {
    const neo = seed.spec.nodes.find((n) => n.name === "talos-neo")!;
    expect(vmConfig(scope, neo)).toMatchObject({
      name: "talos-neo",
      cores: 8,
      cpu: "host",
      memory: 16384,
      balloon: 0,
      scsi0: `ceph-vm-disks:0,import-from=${talosImage(seed.spec).volid("cephfs")}`,
      net0: "virtio,bridge=vmbr0,tag=3",
      ide2: "ceph-vm-disks:cloudinit",
      ipconfig0: "ip=10.0.3.17/24,gw=10.0.3.1",
      nameserver: "10.0.3.1",
      tags: "homelab-cluster.k8s;homelab-node.talos-neo;homelab-operator",
    });
  });

  it("asks for every privilege the phases use, where Proxmox checks it", () => {
    const needs = requiredPrivileges(seed.spec);
    const at = (path: string) => needs.find((n) => n.path === path)?.privileges ?? [];
    for (const vmid of [1030, 1031, 1032]) expect(at(`/vms/${vmid}`)).toContain("VM.Allocate");
    expect(at("/storage/ceph-vm-disks")).toContain("Datastore.AllocateSpace");
    expect(at("/storage/cephfs")).toContain("Datastore.AllocateTemplate");
    expect(at("/sdn/zones/localnetwork/vmbr0")).toEqual(["SDN.Use"]);
    expect(needs.find((n) => n.path === "/nodes/smith")).toMatchObject({
      privileges: ["Sys.AccessNetwork"],
      orOnRoot: ["Sys.Audit", "Sys.Modify"],
    });
    expect(at("/")).toEqual(["Sys.Console"]); // HA
    const noHa = requiredPrivileges({
      ...seed.spec,
      proxmox: { ...seed.spec.proxmox, ha: { ...seed.spec.proxmox.ha, enabled: false } },
    });
    expect(noHa.some((n) => n.path === "/")).toBe(false);
  });
});

describe("the spec as Talos gets it", () => {
  const secrets = ensureSecretsBundle();

  it("never puts Cilium's VIP (network.vip) on a node", () => {
    const input = talosInput(seed.spec);
    expect(input.network.controlPlaneVip).toBeUndefined();
    for (const n of seed.spec.nodes)
      expect(generateNodeConfig(input, secrets, n.name).yaml).not.toContain(seed.spec.network.vip!);
  });

  it("puts the control-plane VIP on the control planes when one is set", () => {
    const spec = { ...seed.spec, network: { ...seed.spec.network, controlPlaneVIP: "10.0.3.20" } };
    const doc = generateNodeConfig(talosInput(spec), secrets, "talos-neo").documents[0] as {
      machine: { network: { interfaces: { vip?: { ip: string } }[] } };
    };
    expect(doc.machine.network.interfaces[0]?.vip).toEqual({ ip: "10.0.3.20" });
  });

  it("maps Cilium in the components to CNI none, and OIDC with the prefix left unset", () => {
    const input = talosInput(seed.spec);
    expect(input.ciliumCNI).toBe(true);
    expect(input.oidc?.usernamePrefix).toBeUndefined();
    const noCilium = { ...seed.spec, components: seed.spec.components.filter((c) => c.name !== "cilium") };
    expect(talosInput(noCilium).ciliumCNI).toBe(false);
  });
});
