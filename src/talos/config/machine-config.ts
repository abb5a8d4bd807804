// Per-node Talos machine configs. The v1alpha1 document follows the layout `talosctl gen config` emits
// for the same contract (pkg/machinery/config/generate), plus what a homelab on Proxmox needs: static
// addressing repeated in the config so it survives the install (nocloud network data is only read at
// first boot, siderolabs/talos#10949), the Image Factory nocloud installer, Cilium as CNI, the VIP and OIDC.
//
// Talos v1.14 moved kube-apiserver settings to multi-document configs and runs kube-apiserver with
// --authentication-config only when the `KubeAPIServerConfig` document is used (the legacy
// cluster.apiServer reports UseAuthenticationConfig() = false; oidc-* extraArgs are denied in the new
// document): machinery config/types/k8s/{apiserver,authentication}.go @v1.14.1. So for ≥ 1.14 control
// planes the API server is described by KubeAPIServerConfig, KubeAdmissionControlConfig,
// KubeAuditPolicyConfig, KubeAuthenticationConfig (OIDC as a Kubernetes AuthenticationConfiguration)
// and KubeAuthorizerConfig (Node, RBAC: the new document does not inject default authorizers), as
// `talosctl gen config` v1.14 emits them. Earlier contracts: cluster.apiServer with oidc-* extraArgs.

import { stringify } from "yaml";
import { DEFAULT_IMAGE_FACTORY, type TalosClusterInput, type TalosNodeInput } from "./input.ts";
import { applyPatches, type YamlMap } from "./patches.ts";
import type { SecretsBundle } from "./secrets.ts";
import { atLeastMinor, parseVersion } from "./version.ts";

export class MachineConfigError extends Error {
  override name = "MachineConfigError";
}

export interface GeneratedNodeConfig {
  node: string;
  role: TalosNodeInput["role"];
  /** Multi-document YAML, ready for ApplyConfiguration or `talosctl validate`. */
  yaml: string;
  documents: YamlMap[];
}

/** factory.talos.dev/nocloud-installer/<schematic>:<version> (Image Factory docs, "installer images"). */
export function installerImage(
  input: Pick<TalosClusterInput, "imageFactory" | "schematic" | "talosVersion">,
): string {
  const host = new URL(input.imageFactory ?? DEFAULT_IMAGE_FACTORY).host;
  return `${host}/nocloud-installer/${input.schematic}:${input.talosVersion}`;
}

function assertInput(input: TalosClusterInput): void {
  for (const v of [input.talosVersion, input.kubernetesVersion]) {
    try {
      parseVersion(v);
    } catch (err) {
      throw new MachineConfigError((err as Error).message);
    }
  }
  if (!/^[0-9a-f]{64}$/.test(input.schematic)) throw new MachineConfigError("schematic must be a 64-hex id");
  if (!/^https:\/\//.test(input.endpoint)) throw new MachineConfigError("endpoint must be an https:// URL");
  const names = new Set<string>();
  for (const n of input.nodes) {
    if (names.has(n.name)) throw new MachineConfigError(`duplicate node name ${n.name}`);
    names.add(n.name);
  }
  if (!input.nodes.some((n) => n.role === "controlplane")) {
    throw new MachineConfigError("at least one control-plane node is required");
  }
}

const ANONYMOUS_HEALTH = {
  enabled: true,
  conditions: [{ path: "/livez" }, { path: "/readyz" }, { path: "/healthz" }],
};

/**
 * The username prefix kube-apiserver applies when none is configured (pkg/kubeapiserver/options
 * authentication.go: "If not provided, username claims other than 'email' are prefixed by the issuer URL
 * to avoid clashes"). The structured config has no such default, so we write it out: unset means the
 * same user names before and after Talos v1.14.
 */
export function defaultUsernamePrefix(oidc: NonNullable<TalosClusterInput["oidc"]>): string {
  return (oidc.usernameClaim ?? "sub") === "email" ? "" : `${oidc.issuerURL}#`;
}

function authenticationConfiguration(oidc: TalosClusterInput["oidc"]): YamlMap {
  if (!oidc) return { anonymous: ANONYMOUS_HEALTH, jwt: [] };
  const claimMappings: YamlMap = {
    username: {
      claim: oidc.usernameClaim ?? "sub",
      prefix: oidc.usernamePrefix ?? defaultUsernamePrefix(oidc),
    },
  };
  if (oidc.groupsClaim) claimMappings.groups = { claim: oidc.groupsClaim, prefix: oidc.groupsPrefix ?? "" };
  return {
    apiVersion: "apiserver.config.k8s.io/v1beta1",
    kind: "AuthenticationConfiguration",
    // Talos' default document keeps anonymous access to the health endpoints; ours replaces it, so keep them.
    anonymous: ANONYMOUS_HEALTH,
    jwt: [{ issuer: { url: oidc.issuerURL, audiences: [oidc.clientID] }, claimMappings }],
  };
}

const POD_SECURITY = {
  apiVersion: "pod-security.admission.config.k8s.io/v1alpha1",
  kind: "PodSecurityConfiguration",
  defaults: {
    audit: "restricted",
    "audit-version": "latest",
    enforce: "baseline",
    "enforce-version": "latest",
    warn: "restricted",
    "warn-version": "latest",
  },
  exemptions: { namespaces: ["kube-system"], runtimeClasses: [], usernames: [] },
};

const AUDIT_POLICY = { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Metadata" }] };

/** The Talos ≥ 1.14 kube-apiserver documents of a control plane. */
function apiServerDocuments(input: TalosClusterInput, sans: string[]): YamlMap[] {
  const doc = (kind: string, body: YamlMap): YamlMap => ({ apiVersion: "v1alpha1", kind, ...body });
  return [
    doc("KubeAPIServerConfig", {
      image: `registry.k8s.io/kube-apiserver:${input.kubernetesVersion}`,
      certExtraSANs: sans,
    }),
    doc("KubeAdmissionControlConfig", { name: "PodSecurity", configuration: structuredClone(POD_SECURITY) }),
    doc("KubeAuditPolicyConfig", { configuration: structuredClone(AUDIT_POLICY) }),
    doc("KubeAuthenticationConfig", { configuration: authenticationConfiguration(input.oidc) }),
    doc("KubeAuthorizerConfig", { name: "node", type: "Node" }),
    doc("KubeAuthorizerConfig", { name: "rbac", type: "RBAC" }),
  ];
}

function legacyApiServer(input: TalosClusterInput, sans: string[]): YamlMap {
  const apiServer: YamlMap = {
    image: `registry.k8s.io/kube-apiserver:${input.kubernetesVersion}`,
    certSANs: sans,
    admissionControl: [{ name: "PodSecurity", configuration: structuredClone(POD_SECURITY) }],
    auditPolicy: structuredClone(AUDIT_POLICY),
  };
  if (input.oidc) apiServer.extraArgs = legacyOidcArgs(input.oidc);
  return apiServer;
}

function certSANs(input: TalosClusterInput, node: TalosNodeInput): string[] {
  const endpointHost = new URL(input.endpoint).hostname;
  const vip = input.network.controlPlaneVip;
  return [...new Set([endpointHost, ...(vip ? [vip] : []), node.ip])];
}

function legacyOidcArgs(oidc: NonNullable<TalosClusterInput["oidc"]>): Record<string, string> {
  const args: Record<string, string> = {
    "oidc-issuer-url": oidc.issuerURL,
    "oidc-client-id": oidc.clientID,
  };
  if (oidc.usernameClaim) args["oidc-username-claim"] = oidc.usernameClaim;
  // Unset: no flag, so kube-apiserver applies its own default (defaultUsernamePrefix); "" is "-" (none).
  if (oidc.usernamePrefix !== undefined) args["oidc-username-prefix"] = oidc.usernamePrefix || "-";
  if (oidc.groupsClaim) args["oidc-groups-claim"] = oidc.groupsClaim;
  if (oidc.groupsPrefix) args["oidc-groups-prefix"] = oidc.groupsPrefix;
  return args;
}

function networkInterface(input: TalosClusterInput, node: TalosNodeInput): YamlMap {
  const link: YamlMap = input.network.interface
    ? { interface: input.network.interface }
    : { deviceSelector: { physical: true } };
  const iface: YamlMap = {
    ...link,
    addresses: [`${node.ip}/${input.network.prefixLength}`],
    routes: [{ network: "0.0.0.0/0", gateway: input.network.gateway }],
    dhcp: false,
  };
  if (input.network.controlPlaneVip && node.role === "controlplane")
    iface.vip = { ip: input.network.controlPlaneVip };
  return iface;
}

function v1alpha1Document(input: TalosClusterInput, secrets: SecretsBundle, node: TalosNodeInput): YamlMap {
  const controlPlane = node.role === "controlplane";
  const k8s = input.kubernetesVersion;
  const sans = certSANs(input, node);
  const structuredApiServer = atLeastMinor(input.talosVersion, 1, 14);

  const features: YamlMap = {
    rbac: true,
    stableHostname: true,
    apidCheckExtKeyUsage: true,
    diskQuotaSupport: true,
    kubePrism: { enabled: true, port: 7445 },
    hostDNS: { enabled: true, forwardKubeDNSToHost: true },
  };

  const machine: YamlMap = {
    type: node.role,
    token: secrets.trustdinfo.token,
    // Workers get the OS CA certificate only: they never sign anything with it.
    ca: controlPlane
      ? { crt: secrets.certs.os.crt, key: secrets.certs.os.key }
      : { crt: secrets.certs.os.crt, key: "" },
    certSANs: sans,
    kubelet: {
      image: `ghcr.io/siderolabs/kubelet:${k8s}`,
      defaultRuntimeSeccompProfileEnabled: true,
      disableManifestsDirectory: true,
    },
    network: {
      hostname: node.name,
      interfaces: [networkInterface(input, node)],
      nameservers: [...input.network.nameservers],
    },
    install: { disk: input.installDisk, image: installerImage(input), wipe: false },
    features,
  };
  if (controlPlane) machine.nodeLabels = { "node.kubernetes.io/exclude-from-external-load-balancers": "" };

  const clusterNetwork: YamlMap = {
    dnsDomain: "cluster.local",
    podSubnets: [input.podSubnet],
    serviceSubnets: [input.serviceSubnet],
  };
  if (input.ciliumCNI) clusterNetwork.cni = { name: "none" };

  const cluster: YamlMap = {
    id: secrets.cluster.id,
    secret: secrets.cluster.secret,
    controlPlane: { endpoint: input.endpoint },
    clusterName: input.clusterName,
    network: clusterNetwork,
    token: secrets.secrets.bootstraptoken,
  };
  if (controlPlane) {
    Object.assign(cluster, {
      secretboxEncryptionSecret: secrets.secrets.secretboxencryptionsecret,
      ca: { crt: secrets.certs.k8s.crt, key: secrets.certs.k8s.key },
      aggregatorCA: { crt: secrets.certs.k8saggregator.crt, key: secrets.certs.k8saggregator.key },
      serviceAccount: { key: secrets.certs.k8sserviceaccount.key },
      ...(structuredApiServer ? {} : { apiServer: legacyApiServer(input, sans) }),
      controllerManager: { image: `registry.k8s.io/kube-controller-manager:${k8s}` },
      proxy: input.ciliumCNI
        ? { disabled: true, image: `registry.k8s.io/kube-proxy:${k8s}` }
        : { image: `registry.k8s.io/kube-proxy:${k8s}` },
      scheduler: { image: `registry.k8s.io/kube-scheduler:${k8s}` },
      discovery: { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } },
      etcd: { ca: { crt: secrets.certs.etcd.crt, key: secrets.certs.etcd.key } },
      allowSchedulingOnControlPlanes: input.allowSchedulingOnControlPlanes,
    });
  } else {
    Object.assign(cluster, {
      ca: { crt: secrets.certs.k8s.crt, key: "" },
      proxy: input.ciliumCNI ? { disabled: true } : {},
      discovery: { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } },
    });
  }

  return { version: "v1alpha1", debug: false, persist: true, machine, cluster };
}

/** The documents of one node's config, patches applied. Pure: same inputs, same output. */
export function nodeConfigDocuments(
  input: TalosClusterInput,
  secrets: SecretsBundle,
  nodeName: string,
): YamlMap[] {
  assertInput(input);
  const node = input.nodes.find((n) => n.name === nodeName);
  if (!node) throw new MachineConfigError(`no node named ${nodeName}`);
  const docs: YamlMap[] = [v1alpha1Document(input, secrets, node)];
  if (node.role === "controlplane" && atLeastMinor(input.talosVersion, 1, 14)) {
    docs.push(...apiServerDocuments(input, certSANs(input, node)));
  }
  return applyPatches(docs, input.configPatches ?? []);
}

export function renderDocuments(docs: readonly YamlMap[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
}

export function generateNodeConfig(
  input: TalosClusterInput,
  secrets: SecretsBundle,
  nodeName: string,
): GeneratedNodeConfig {
  const documents = nodeConfigDocuments(input, secrets, nodeName);
  const node = input.nodes.find((n) => n.name === nodeName) as TalosNodeInput;
  return { node: nodeName, role: node.role, documents, yaml: renderDocuments(documents) };
}

export function generateClusterConfigs(
  input: TalosClusterInput,
  secrets: SecretsBundle,
): GeneratedNodeConfig[] {
  return input.nodes.map((n) => generateNodeConfig(input, secrets, n.name));
}
