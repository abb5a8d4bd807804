// The seed's platform components: where each comes from, what it needs first, the values the seed's
// Talos-on-Proxmox setup needs, how we know it is ready, and the non-chart objects it brings.
// Chart coordinates and versions: ../../../shared/research/platform-components.md §4 (summarised in the
// README's components section).
import type { KubeObject } from "../runtime/object.ts";
import { platformObjectsFor } from "./platform-objects.ts";
import { PROVIDER_CONFIG_CRDS, providerConfigObjects, providerConfigsMissing } from "./provider-configs.ts";
import type { ReadinessCheck } from "./readiness.ts";

/** What the user configures for the whole platform (HomelabCluster spec.platform). */
export interface PlatformSettings {
  /** Apps are served as *.apps.<domain>. */
  domain: string;
  /** LoadBalancer addresses Cilium hands out and announces over L2 (the seed's VIP pool). */
  loadBalancerRange?: { start: string; stop: string };
  stepCa?: {
    url: string;
    rootCertificate: string;
    provisioner: string;
    provisionerKid: string;
    /** The JWK provisioner's password, read from spec's passwordRef Secret at install time. */
    password?: string;
  };
  openBaoAddress?: string;
  otlpEndpoint?: string;
  gitlabKasAddress?: string;
  /** Talos' KubePrism port on every node (7445 unless changed in the machine config). */
  kubePrismPort: number;
  /** Ceph RGW's S3 endpoint, for the ceph-rgw ProviderConfig. */
  s3Endpoint?: string;
  /** The PostgreSQL server provider-sql manages databases on (its credentials come from valuesFrom). */
  postgres?: { host: string; port: number; sslMode: "disable" | "require" | "verify-ca" | "verify-full" };
}

/** A chart in a Helm repository (https://…) or an OCI registry (oci://…). */
export interface ChartSource {
  kind: "chart";
  repository: string;
  chart: string;
  version: string;
}

/** A plain multi-document manifest served over HTTP(S), applied by server-side apply (Gateway API CRDs). */
export interface ManifestSource {
  kind: "manifest";
  /** Base URL; the file below is fetched from `<repository>/<version>/<file>`. */
  repository: string;
  file: string;
  version: string;
}

/** A value read from a Secret in the management cluster at install time; it never enters spec or status. */
export interface SecretValue {
  /** Dotted path inside the chart's values, e.g. config.token. */
  valuesPath: string;
  /** Which entry of the component's valuesFrom supplies it. */
  from: string;
}

export interface CatalogEntry {
  name: string;
  release: string;
  namespace: string;
  source: ChartSource | ManifestSource;
  /** Components that must be Ready first. A failure blocks only the components that depend on it. */
  dependsOn: string[];
  /** The chart values the seed's setup needs; user values are merged over these. */
  values(p: PlatformSettings): Record<string, unknown>;
  secretValues?: SecretValue[];
  readiness: ReadinessCheck[];
  /** `secrets`: the component's valuesFrom values (only builtin components put them into objects). */
  platformObjects(p: PlatformSettings, secrets: Readonly<Record<string, string>>): KubeObject[];
  /** What the user has to supply before the platform objects can be written; undefined when nothing. */
  missing?(p: PlatformSettings, secrets: Readonly<Record<string, string>>): string | undefined;
  /**
   * Set when removing the component destroys data outside the cluster's own objects: the operator
   * refuses to disable it while any such object exists.
   */
  protects?: { description: string; crdCategory: string };
}

const deployment = (namespace: string, name: string): ReadinessCheck => ({
  kind: "rollout",
  apiVersion: "apps/v1",
  resource: "Deployment",
  namespace,
  name,
});
const daemonSet = (namespace: string, name: string): ReadinessCheck => ({
  kind: "rollout",
  apiVersion: "apps/v1",
  resource: "DaemonSet",
  namespace,
  name,
});
const crds = (...names: string[]): ReadinessCheck => ({ kind: "crdsEstablished", names });

export const GATEWAY_API_CRDS = [
  "gatewayclasses.gateway.networking.k8s.io",
  "gateways.gateway.networking.k8s.io",
  "httproutes.gateway.networking.k8s.io",
  "grpcroutes.gateway.networking.k8s.io",
  "referencegrants.gateway.networking.k8s.io",
];

/**
 * Cilium as Talos documents it (siderolabs/docs kubernetes-guides/cni/deploying-cilium.mdx): no
 * kube-proxy, the API reached through KubePrism on localhost, cgroupv2 and bpffs already mounted by Talos,
 * and no SYS_MODULE (Talos workloads may not load kernel modules).
 */
export function ciliumTalosValues(p: PlatformSettings): Record<string, unknown> {
  return {
    ipam: { mode: "kubernetes" },
    kubeProxyReplacement: true,
    k8sServiceHost: "localhost",
    k8sServicePort: p.kubePrismPort,
    cgroup: { autoMount: { enabled: false }, hostRoot: "/sys/fs/cgroup" },
    securityContext: {
      capabilities: {
        ciliumAgent: [
          "CHOWN",
          "KILL",
          "NET_ADMIN",
          "NET_RAW",
          "IPC_LOCK",
          "SYS_ADMIN",
          "SYS_RESOURCE",
          "DAC_OVERRIDE",
          "FOWNER",
          "SETGID",
          "SETUID",
        ],
        cleanCiliumState: ["NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"],
      },
    },
    l2announcements: { enabled: true },
    // L2 announcements renew one lease per service; the Cilium docs say to raise the client rate limit.
    k8sClientRateLimit: { qps: 50, burst: 100 },
    gatewayAPI: { enabled: true, enableAlpn: true, enableAppProtocol: true },
    hubble: {
      relay: { enabled: true },
      ui: { enabled: true },
      // The default method (helm) generates new certificates on every render, so every upgrade and every
      // drift check would change hubble-server-certs (cilium/cilium#36012). The cronJob method creates them
      // once in the cluster with certgen and renews them on a schedule: renders stay byte-identical.
      tls: {
        auto: { enabled: true, method: "cronJob", certValidityDuration: 1095, schedule: "0 0 1 */4 *" },
      },
    },
    operator: { replicas: 1 },
  };
}

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: "gateway-api",
    release: "gateway-api",
    namespace: "kube-system",
    // Gateway API ships no chart: its install guide applies the release asset with server-side apply.
    // v1.6.1 is the version whose CRDs are vendored for the tests (e2e/components/crds).
    source: {
      kind: "manifest",
      repository: "https://github.com/kubernetes-sigs/gateway-api/releases/download",
      file: "standard-install.yaml",
      version: "v1.6.1",
    },
    dependsOn: [],
    values: () => ({}),
    readiness: [crds(...GATEWAY_API_CRDS)],
    platformObjects: () => [],
  },
  {
    name: "cilium",
    release: "cilium",
    namespace: "kube-system",
    source: { kind: "chart", repository: "https://helm.cilium.io/", chart: "cilium", version: "1.19.6" },
    // The chart renders the cilium GatewayClass only when the Gateway API kinds already exist.
    dependsOn: ["gateway-api"],
    values: ciliumTalosValues,
    readiness: [
      daemonSet("kube-system", "cilium"),
      deployment("kube-system", "cilium-operator"),
      deployment("kube-system", "hubble-relay"),
      deployment("kube-system", "hubble-ui"),
      // The agent registers these at start-up (the chart ships none): the pool and policy need them.
      crds("ciliumloadbalancerippools.cilium.io", "ciliuml2announcementpolicies.cilium.io"),
    ],
    platformObjects: (p) => platformObjectsFor("cilium", p),
  },
  {
    name: "main-gateway",
    release: "main-gateway",
    namespace: "gateway",
    source: { kind: "manifest", repository: "", file: "", version: "builtin" },
    dependsOn: ["cilium"],
    values: () => ({}),
    readiness: [{ kind: "gatewayClassAccepted", name: "cilium" }],
    platformObjects: (p) => platformObjectsFor("main-gateway", p),
  },
  {
    name: "cert-manager",
    release: "cert-manager",
    namespace: "cert-manager",
    source: {
      kind: "chart",
      repository: "oci://quay.io/jetstack/charts",
      chart: "cert-manager",
      version: "v1.21.1",
    },
    dependsOn: ["cilium"],
    // crds.keep (the default) keeps the CRDs, and every Certificate with them, when the release goes.
    values: () => ({ crds: { enabled: true, keep: true } }),
    readiness: [
      crds("certificates.cert-manager.io", "clusterissuers.cert-manager.io"),
      deployment("cert-manager", "cert-manager"),
      deployment("cert-manager", "cert-manager-webhook"),
      deployment("cert-manager", "cert-manager-cainjector"),
    ],
    platformObjects: () => [],
  },
  {
    name: "step-issuer",
    release: "step-issuer",
    namespace: "cert-manager",
    source: {
      kind: "chart",
      repository: "https://smallstep.github.io/helm-charts",
      chart: "step-issuer",
      version: "1.11.0",
    },
    dependsOn: ["cert-manager"],
    values: () => ({}),
    readiness: [crds("stepclusterissuers.certmanager.step.sm"), deployment("cert-manager", "step-issuer")],
    platformObjects: (p) => platformObjectsFor("step-issuer", p),
  },
  {
    name: "external-secrets",
    release: "external-secrets",
    namespace: "external-secrets",
    source: {
      kind: "chart",
      repository: "https://charts.external-secrets.io",
      chart: "external-secrets",
      version: "2.9.0",
    },
    dependsOn: ["cilium"],
    values: () => ({ installCRDs: true }),
    readiness: [
      crds("clustersecretstores.external-secrets.io", "externalsecrets.external-secrets.io"),
      deployment("external-secrets", "external-secrets"),
      deployment("external-secrets", "external-secrets-webhook"),
      deployment("external-secrets", "external-secrets-cert-controller"),
    ],
    platformObjects: (p) => platformObjectsFor("external-secrets", p),
  },
  {
    name: "secrets-store-csi",
    release: "secrets-store-csi-driver",
    namespace: "kube-system",
    source: {
      kind: "chart",
      repository: "https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts",
      chart: "secrets-store-csi-driver",
      version: "1.6.0",
    },
    dependsOn: ["cilium"],
    values: () => ({ syncSecret: { enabled: true }, enableSecretRotation: true }),
    readiness: [
      crds("secretproviderclasses.secrets-store.csi.x-k8s.io"),
      daemonSet("kube-system", "secrets-store-csi-driver"),
    ],
    platformObjects: () => [],
  },
  {
    name: "openbao-csi-provider",
    release: "openbao-csi-provider",
    namespace: "kube-system",
    source: {
      kind: "chart",
      repository: "https://openbao.github.io/openbao-helm",
      chart: "openbao",
      version: "0.29.2",
    },
    dependsOn: ["secrets-store-csi"],
    // Only the CSI provider: the OpenBao server runs outside the cluster (the seed's secrets VM).
    values: () => ({ server: { enabled: false }, injector: { enabled: false }, csi: { enabled: true } }),
    readiness: [daemonSet("kube-system", "openbao-csi-provider-csi-provider")],
    platformObjects: () => [],
  },
  {
    name: "gatekeeper",
    release: "gatekeeper",
    namespace: "gatekeeper-system",
    source: {
      kind: "chart",
      repository: "https://open-policy-agent.github.io/gatekeeper/charts",
      chart: "gatekeeper",
      version: "3.23.0",
    },
    dependsOn: ["cilium"],
    values: () => ({}),
    readiness: [
      crds("constrainttemplates.templates.gatekeeper.sh"),
      deployment("gatekeeper-system", "gatekeeper-controller-manager"),
      deployment("gatekeeper-system", "gatekeeper-audit"),
    ],
    platformObjects: (p) => platformObjectsFor("gatekeeper", p),
  },
  {
    name: "crossplane",
    release: "crossplane",
    namespace: "crossplane-system",
    source: {
      kind: "chart",
      repository: "https://charts.crossplane.io/stable",
      chart: "crossplane",
      version: "2.3.4",
    },
    dependsOn: ["cilium"],
    values: () => ({}),
    readiness: [
      crds("providers.pkg.crossplane.io"),
      deployment("crossplane-system", "crossplane"),
      deployment("crossplane-system", "crossplane-rbac-manager"),
    ],
    platformObjects: () => [],
    protects: {
      description:
        "removing Crossplane deletes its providers, and with them every bucket, database and client they manage",
      // Every Crossplane managed resource CRD carries the category "managed" (the providers' CRDs do).
      crdCategory: "managed",
    },
  },
  {
    name: "crossplane-providers",
    release: "crossplane-providers",
    namespace: "crossplane-system",
    source: { kind: "manifest", repository: "", file: "", version: "builtin" },
    dependsOn: ["crossplane"],
    values: () => ({}),
    readiness: [
      { kind: "packageHealthy", name: "provider-aws-s3" },
      { kind: "packageHealthy", name: "provider-sql" },
      { kind: "packageHealthy", name: "provider-keycloak" },
    ],
    platformObjects: (p) => platformObjectsFor("crossplane-providers", p),
  },
  {
    name: "crossplane-provider-configs",
    release: "crossplane-provider-configs",
    namespace: "crossplane-system",
    source: { kind: "manifest", repository: "", file: "", version: "builtin" },
    // The ClusterProviderConfig kinds are the providers' CRDs: they exist once the packages are Healthy.
    dependsOn: ["crossplane-providers"],
    values: () => ({}),
    readiness: [crds(...PROVIDER_CONFIG_CRDS)],
    platformObjects: providerConfigObjects,
    missing: providerConfigsMissing,
  },
  {
    name: "knative-operator",
    release: "knative-operator",
    namespace: "knative-operator",
    source: {
      kind: "chart",
      repository: "https://knative.github.io/operator",
      chart: "knative-operator",
      version: "v1.23.0",
    },
    dependsOn: ["cilium", "main-gateway"],
    values: () => ({}),
    readiness: [
      crds("knativeservings.operator.knative.dev", "knativeeventings.operator.knative.dev"),
      deployment("knative-operator", "knative-operator"),
    ],
    platformObjects: (p) => platformObjectsFor("knative-operator", p),
  },
  {
    name: "knative",
    release: "knative",
    namespace: "knative-serving",
    source: { kind: "manifest", repository: "", file: "", version: "builtin" },
    dependsOn: ["knative-operator"],
    values: () => ({}),
    readiness: [
      {
        kind: "conditionTrue",
        apiVersion: "operator.knative.dev/v1beta1",
        resource: "KnativeServing",
        namespace: "knative-serving",
        name: "knative-serving",
        condition: "Ready",
      },
      {
        kind: "conditionTrue",
        apiVersion: "operator.knative.dev/v1beta1",
        resource: "KnativeEventing",
        namespace: "knative-eventing",
        name: "knative-eventing",
        condition: "Ready",
      },
    ],
    platformObjects: (p) => platformObjectsFor("knative", p),
  },
  otelCollector("otel-collector", "daemonset"),
  otelCollector("otel-collector-gateway", "deployment"),
  {
    name: "gitlab-agent",
    release: "gitlab-agent",
    namespace: "gitlab-agent",
    // No chart version of charts.gitlab.io could be checked here, so there is no default pin: the
    // component asks for spec version (Condition VersionRequired) instead of guessing one.
    source: { kind: "chart", repository: "https://charts.gitlab.io", chart: "gitlab-agent", version: "" },
    dependsOn: ["cilium"],
    values: (p) => ({ config: { kasAddress: p.gitlabKasAddress ?? "wss://kas.gitlab.com" } }),
    secretValues: [{ valuesPath: "config.token", from: "token" }],
    readiness: [deployment("gitlab-agent", "gitlab-agent-v2")],
    platformObjects: () => [],
  },
  {
    name: "hubble-ui-route",
    release: "hubble-ui-route",
    namespace: "kube-system",
    source: { kind: "manifest", repository: "", file: "", version: "builtin" },
    dependsOn: ["main-gateway"],
    values: () => ({}),
    readiness: [],
    platformObjects: (p) => platformObjectsFor("hubble-ui-route", p),
  },
];

/**
 * The two OpenTelemetry Collector releases of one chart: a per-node agent (kubelet metrics, logs) and a
 * cluster-wide gateway (cluster metrics).
 */
function otelCollector(name: string, mode: "daemonset" | "deployment"): CatalogEntry {
  const release = mode === "daemonset" ? "otel-collector-agent" : "otel-collector-gateway";
  return {
    name,
    release,
    namespace: "opentelemetry",
    source: {
      kind: "chart",
      repository: "https://open-telemetry.github.io/opentelemetry-helm-charts",
      chart: "opentelemetry-collector",
      version: "0.170.0",
    },
    dependsOn: ["cilium"],
    values: (p) => otelValues(mode, p),
    readiness: [
      mode === "daemonset"
        ? daemonSet("opentelemetry", "otel-collector-agent-opentelemetry-collector-agent")
        : deployment("opentelemetry", "otel-collector-gateway-opentelemetry-collector"),
    ],
    platformObjects: () => [],
  };
}

/** The collector chart needs `mode` and an image (it has no default); one release per mode. */
function otelValues(mode: "daemonset" | "deployment", p: PlatformSettings): Record<string, unknown> {
  return {
    mode,
    image: { repository: "otel/opentelemetry-collector-k8s" },
    presets:
      mode === "daemonset"
        ? { kubeletMetrics: { enabled: true }, logsCollection: { enabled: true } }
        : { clusterMetrics: { enabled: true } },
    config: p.otlpEndpoint
      ? {
          exporters: { otlp: { endpoint: p.otlpEndpoint } },
          service: {
            pipelines: {
              metrics: { exporters: ["otlp"] },
              logs: { exporters: ["otlp"] },
              traces: { exporters: ["otlp"] },
            },
          },
        }
      : {},
  };
}

/** Whether the entry is only platform objects (no chart, no manifest download). */
export function isBuiltin(entry: CatalogEntry): boolean {
  return entry.source.kind === "manifest" && entry.source.version === "builtin";
}

export function catalogEntry(name: string): CatalogEntry | undefined {
  return CATALOG.find((e) => e.name === name);
}

export const COMPONENT_NAMES = CATALOG.map((e) => e.name);
