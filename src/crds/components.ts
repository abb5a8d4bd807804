// HomelabCluster spec.components and spec.platform: what the platform-components controller needs from
// the user. Kept apart from homelab-cluster.ts so the provisioning and components APIs evolve separately.
import * as z from "zod";
import { dnsLabel, freeForm, hostname, ipv4Address, matching, text, url } from "./fields.ts";

/** The catalog's component names (src/components/catalog.ts; a unit test keeps the two lists equal). */
export const COMPONENT_NAMES = [
  "gateway-api",
  "cilium",
  "main-gateway",
  "cert-manager",
  "step-issuer",
  "external-secrets",
  "secrets-store-csi",
  "openbao-csi-provider",
  "gatekeeper",
  "crossplane",
  "crossplane-providers",
  "crossplane-provider-configs",
  "knative-operator",
  "knative",
  "otel-collector",
  "otel-collector-gateway",
  "gitlab-agent",
  "hubble-ui-route",
] as const;

const secretKeyRef = z
  .object({
    name: dnsLabel().describe(
      "Name of the Secret, in the operator's namespace (where the cluster's kubeconfig Secret is kept): a HomelabCluster cannot point the operator at Secrets of other namespaces.",
    ),
    key: matching(/^[-._a-zA-Z0-9]+$/, 253, "must be a Secret key").describe("Key inside the Secret."),
  })
  .describe("One key of a Secret, read at install time; its value never appears in spec or status.");

export const ComponentSpec = z
  .object({
    name: z.enum(COMPONENT_NAMES).describe(`Platform component: one of ${COMPONENT_NAMES.join(", ")}.`),
    enabled: z
      .boolean()
      .default(true)
      .describe(
        "Install and keep the component (default true). false removes it, unless something enabled depends on it or removal would destroy data (then a Condition says why).",
      ),
    version: matching(
      /^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$/,
      64,
      "must be a version such as 1.18.2",
    )
      .optional()
      .describe("Chart (or manifest) version; defaults to the operator's pinned version."),
    repository: url(["https", "http", "oci"], "https://helm.cilium.io/")
      .optional()
      .describe("Chart repository or OCI registry to pull from instead of the upstream one (a mirror)."),
    values: freeForm()
      .optional()
      .describe(
        "Helm values merged over the operator's defaults for this component. No secrets here: use valuesFrom.",
      ),
    valuesFrom: z
      .array(
        z.object({
          name: dnsLabel().describe(
            "Which value: the component's documented name, e.g. token for gitlab-agent.",
          ),
          secretKeyRef,
        }),
      )
      .max(8)
      .optional()
      .describe("Values read from Secrets at install time (the GitLab agent token, provider credentials)."),
  })
  .describe("One platform component installed into the workload cluster.");

export const PlatformSpec = z
  .object({
    domain: hostname().describe("Base domain: apps are served as *.apps.<domain>, e.g. home.shdr.ch."),
    loadBalancerPool: z
      .object({
        start: ipv4Address("10.0.3.200").describe("First address."),
        stop: ipv4Address("10.0.3.220").describe("Last address."),
      })
      .optional()
      .describe("Addresses Cilium hands to LoadBalancer Services and announces over L2."),
    stepCa: z
      .object({
        url: url(["https"], "https://ca.home.shdr.ch").describe("step-ca URL."),
        rootCertificate: text(16384).describe("PEM root certificate of the step-ca."),
        provisioner: text(128).describe("JWK provisioner name."),
        provisionerKid: text(128).describe("JWK provisioner key id (kid)."),
        passwordRef: secretKeyRef.describe("The provisioner's password."),
      })
      .optional()
      .describe("The step-ca the step-issuer ClusterIssuer uses."),
    openBaoAddress: url(["https", "http"], "https://bao.home.shdr.ch:8200")
      .optional()
      .describe("OpenBao server for the External Secrets store."),
    otlpEndpoint: text(512)
      .optional()
      .describe("OTLP endpoint of the monitoring VM, e.g. monitoring.home.shdr.ch:4317."),
    gitlabKasAddress: url(["wss", "grpc", "grpcs"], "wss://kas.gitlab.com")
      .optional()
      .describe("GitLab agent server (KAS) address."),
    s3Endpoint: url(["https", "http"], "https://rgw.home.shdr.ch")
      .optional()
      .describe("Ceph RGW S3 endpoint for the ceph-rgw ProviderConfig (crossplane-provider-configs)."),
    postgres: z
      .object({
        host: hostname().describe("PostgreSQL server host name."),
        port: z.number().int().min(1).max(65535).default(5432).describe("Port (default 5432)."),
        sslMode: z
          .enum(["disable", "require", "verify-ca", "verify-full"])
          .default("verify-full")
          .describe("provider-sql's sslMode (default verify-full)."),
      })
      .optional()
      .describe(
        "PostgreSQL server of the postgres ProviderConfig (crossplane-provider-configs); its username and password come from that component's valuesFrom.",
      ),
    kubePrismPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(7445)
      .describe("Talos KubePrism port (default 7445)."),
  })
  .describe("Settings the platform components share.");
