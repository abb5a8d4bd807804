// The objects the seed applied by hand next to the charts: the VIP pool and its L2 policy, the shared
// Gateway, the Hubble UI route, the step-ca issuer, the OpenBao store, the seed's label policy, the
// Crossplane providers and the Knative CRs. Shapes follow the real CRDs (e2e/components/crds).
import type { KubeObject } from "../runtime/object.ts";
import type { PlatformSettings } from "./catalog.ts";

export const MAIN_GATEWAY = { namespace: "gateway", name: "main-gateway" };
/** The workload-cluster copy of spec.platform.stepCa.passwordRef, made at install time. */
export const STEP_PASSWORD_SECRET = "step-issuer-provisioner";

/** Crossplane packages the seed installs (platform-components.md, Crossplane packages). */
export const CROSSPLANE_PROVIDERS = [
  { name: "provider-aws-s3", package: "xpkg.crossplane.io/crossplane-contrib/provider-aws-s3:v2.0.0" },
  { name: "provider-sql", package: "xpkg.upbound.io/crossplane-contrib/provider-sql:v0.16.0" },
  { name: "provider-keycloak", package: "xpkg.crossplane.io/crossplane-contrib/provider-keycloak:v3.0.0" },
];

function ns(name: string): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

export function platformObjectsFor(component: string, p: PlatformSettings): KubeObject[] {
  switch (component) {
    case "cilium":
      return p.loadBalancerRange
        ? [
            {
              apiVersion: "cilium.io/v2",
              kind: "CiliumLoadBalancerIPPool",
              metadata: { name: "vip-pool" },
              spec: { blocks: [{ start: p.loadBalancerRange.start, stop: p.loadBalancerRange.stop }] },
            },
            {
              apiVersion: "cilium.io/v2alpha1",
              kind: "CiliumL2AnnouncementPolicy",
              metadata: { name: "vip-pool" },
              spec: { loadBalancerIPs: true, interfaces: ["^e.*"] },
            },
          ]
        : [];
    case "main-gateway":
      return [
        ns(MAIN_GATEWAY.namespace),
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          metadata: { ...MAIN_GATEWAY },
          spec: {
            gatewayClassName: "cilium",
            listeners: [
              {
                name: "http",
                protocol: "HTTP",
                port: 80,
                hostname: `*.apps.${p.domain}`,
                allowedRoutes: { namespaces: { from: "All" } },
              },
            ],
          },
        },
      ];
    case "hubble-ui-route":
      return [
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "HTTPRoute",
          metadata: { namespace: "kube-system", name: "hubble-ui" },
          spec: {
            parentRefs: [{ ...MAIN_GATEWAY }],
            hostnames: [`hubble.apps.${p.domain}`],
            rules: [{ backendRefs: [{ name: "hubble-ui", port: 80 }] }],
          },
        },
      ];
    case "step-issuer":
      return p.stepCa
        ? [
            // The issuer's passwordRef points here; the value only ever lives in this Secret.
            ...(p.stepCa.password !== undefined
              ? [
                  {
                    apiVersion: "v1",
                    kind: "Secret",
                    metadata: { namespace: "cert-manager", name: STEP_PASSWORD_SECRET },
                    type: "Opaque",
                    stringData: { password: p.stepCa.password },
                  },
                ]
              : []),
            {
              apiVersion: "certmanager.step.sm/v1beta1",
              kind: "StepClusterIssuer",
              metadata: { name: "step-ca" },
              spec: {
                url: p.stepCa.url,
                caBundle: Buffer.from(p.stepCa.rootCertificate).toString("base64"),
                provisioner: {
                  name: p.stepCa.provisioner,
                  kid: p.stepCa.provisionerKid,
                  // Created by the operator from the spec's Secret reference; never inlined here.
                  passwordRef: {
                    name: "step-issuer-provisioner",
                    namespace: "cert-manager",
                    key: "password",
                  },
                },
              },
            },
          ]
        : [];
    case "external-secrets":
      return p.openBaoAddress
        ? [
            {
              apiVersion: "external-secrets.io/v1",
              kind: "ClusterSecretStore",
              metadata: { name: "openbao" },
              spec: {
                provider: {
                  vault: {
                    server: p.openBaoAddress,
                    path: "secret",
                    version: "v2",
                    auth: {
                      kubernetes: {
                        mountPath: "kubernetes",
                        role: "external-secrets",
                        serviceAccountRef: { name: "external-secrets", namespace: "external-secrets" },
                      },
                    },
                  },
                },
              },
            },
          ]
        : [];
    case "gatekeeper":
      return [
        {
          apiVersion: "templates.gatekeeper.sh/v1",
          kind: "ConstraintTemplate",
          metadata: { name: "k8srequiredlabels" },
          spec: {
            crd: {
              spec: {
                names: { kind: "K8sRequiredLabels" },
                validation: {
                  openAPIV3Schema: {
                    type: "object",
                    properties: { labels: { type: "array", items: { type: "string" } } },
                  },
                },
              },
            },
            targets: [
              {
                target: "admission.k8s.gatekeeper.sh",
                rego: [
                  "package k8srequiredlabels",
                  'violation[{"msg": msg}] {',
                  "  provided := {label | input.review.object.metadata.labels[label]}",
                  "  required := {label | label := input.parameters.labels[_]}",
                  "  missing := required - provided",
                  "  count(missing) > 0",
                  '  msg := sprintf("missing required labels: %v", [missing])',
                  "}",
                ].join("\n"),
              },
            ],
          },
        },
      ];
    case "crossplane-providers":
      return CROSSPLANE_PROVIDERS.map((pkg) => ({
        apiVersion: "pkg.crossplane.io/v1",
        kind: "Provider",
        metadata: { name: pkg.name },
        spec: { package: pkg.package },
      }));
    case "knative-operator":
      return [ns("knative-serving"), ns("knative-eventing")];
    case "knative":
      return [
        {
          apiVersion: "operator.knative.dev/v1beta1",
          kind: "KnativeServing",
          metadata: { namespace: "knative-serving", name: "knative-serving" },
          spec: {
            // Gateway API ingress through Cilium's main-gateway; no Kourier, no Istio.
            ingress: { kourier: { enabled: false }, istio: { enabled: false } },
            config: {
              network: { "ingress-class": "gateway-api.ingress.networking.knative.dev" },
              autoscaler: { "enable-scale-to-zero": "true", "scale-to-zero-grace-period": "30s" },
              domain: { [`apps.${p.domain}`]: "" },
              gateway: {
                "external-gateways": JSON.stringify([
                  {
                    class: "cilium",
                    gateway: `${MAIN_GATEWAY.namespace}/${MAIN_GATEWAY.name}`,
                    service: "kube-system/cilium-gateway-main-gateway",
                    "supported-features": ["HTTPRouteRequestTimeout"],
                  },
                ]),
              },
            },
          },
        },
        {
          apiVersion: "operator.knative.dev/v1beta1",
          kind: "KnativeEventing",
          metadata: { namespace: "knative-eventing", name: "knative-eventing" },
          spec: {},
        },
      ];
    default:
      return [];
  }
}
