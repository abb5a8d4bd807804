// The bootstrap manifests a simulated control plane serves as Manifests.kubernetes.talos.dev (COSI
// namespace controlplane), rendered from its machine config as Talos' controlplane controllers render
// them: the kubelet bootstrapping RBAC and, unless cluster.proxy.disabled, kube-proxy with the config's
// cluster.proxy.image. A subset of Talos' set (no CoreDNS, no flannel), each object one the real API
// server accepts.
import { parseAllDocuments } from "yaml";

// biome-ignore lint/suspicious/noExplicitAny: machine-config documents are walked as YAML maps
type Any = any;

export interface RenderedManifest {
  id: string;
  objects: Record<string, Any>[];
}

export function renderBootstrapManifests(configYaml: string): RenderedManifest[] {
  const docs = parseAllDocuments(configYaml).map((d) => d.toJS() as Any);
  const v1 = docs.find((d) => d?.version === "v1alpha1" && d.kind === undefined);
  const out: RenderedManifest[] = [
    {
      id: "01-csr-node-bootstrap",
      objects: [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "system-bootstrap-node-bootstrapper" },
          roleRef: {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "ClusterRole",
            name: "system:node-bootstrapper",
          },
          subjects: [
            { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:bootstrappers:nodes" },
          ],
        },
      ],
    },
  ];
  const proxy = v1?.cluster?.proxy ?? {};
  if (proxy.disabled !== true && proxy.image)
    out.push({ id: "10-kube-proxy", objects: kubeProxy(proxy.image) });
  return out;
}

function kubeProxy(image: string): Record<string, Any>[] {
  const labels = { "k8s-app": "kube-proxy", tier: "node" };
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "kube-proxy", namespace: "kube-system" },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kube-proxy" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:node-proxier" },
      subjects: [{ kind: "ServiceAccount", name: "kube-proxy", namespace: "kube-system" }],
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "kube-proxy", namespace: "kube-system", labels },
      spec: {
        selector: { matchLabels: { "k8s-app": "kube-proxy" } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            priorityClassName: "system-node-critical",
            serviceAccountName: "kube-proxy",
            tolerations: [{ operator: "Exists" }],
            containers: [
              {
                name: "kube-proxy",
                image,
                command: ["/usr/local/bin/kube-proxy", "--hostname-override=$(NODE_NAME)"],
                env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
                securityContext: { privileged: true },
              },
            ],
          },
        },
      },
    },
  ];
}
