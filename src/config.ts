// The operator's configuration, from the environment (12-factor: the Deployment sets these).
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface OperatorConfig {
  /** Namespace for the Lease, the GitLab ci_access ConfigMap and other operator-wide objects. */
  namespace: string;
  /** Identities allowed to change operator-managed objects in tenant namespaces. */
  operatorUsernames: string[];
  /** /metrics, /healthz, /readyz; 0 picks a free port. */
  healthPort: number;
  healthHost: string;
  leaderElection: boolean;
  /** Where the cluster to manage comes from. */
  cluster: { mode: "kubeconfig"; path: string } | { mode: "in-cluster" } | { mode: "local" };
  /** Install or update the CRDs at start (always in local mode). */
  installCRDs: boolean;
  /** Workers per controller (MAX_CONCURRENT_RECONCILES); one object is never reconciled twice at once. */
  maxConcurrentReconciles: number;
  /**
   * How the cluster's authentication names PeerTenant owners: the username and groups prefixes of its
   * OIDC claim mappings (PEER_TENANT_USERNAME_PREFIX, PEER_TENANT_GROUPS_PREFIX; default none).
   */
  peerTenantOwnerNaming: { usernamePrefix: string; groupsPrefix: string };
  /** Watch Cilium's policies (PEER_TENANT_WATCH_CILIUM): only where the cilium.io CRDs are installed. */
  peerTenantWatchCilium: boolean;
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new Error(`expected a boolean, got "${value}"`);
}

function port(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`HEALTH_PORT must be a port number, got "${value}"`);
  return n;
}

function positive(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got "${value}"`);
  return n;
}

/**
 * Which cluster: KUBECONFIG (first file of the list), then ~/.kube/config, then the in-cluster service
 * account; with none of them, the embedded local control plane.
 */
export function detectCluster(env: NodeJS.ProcessEnv, home = homedir()): OperatorConfig["cluster"] {
  // HOMELAB_LOCAL=true forces the embedded control plane even where a kubeconfig exists (demos, tests).
  if (bool(env.HOMELAB_LOCAL, false)) return { mode: "local" };
  const fromEnv = env.KUBECONFIG?.split(":").find((p) => p !== "");
  if (fromEnv) return { mode: "kubeconfig", path: fromEnv };
  const defaultPath = join(home, ".kube", "config");
  if (existsSync(defaultPath)) return { mode: "kubeconfig", path: defaultPath };
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) return { mode: "in-cluster" };
  return { mode: "local" };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const namespace = env.HOMELAB_OPERATOR_NAMESPACE || "homelab-system";
  const cluster = detectCluster(env);
  const serviceAccount = env.HOMELAB_OPERATOR_SERVICE_ACCOUNT || "homelab-operator";
  const usernames = (env.HOMELAB_OPERATOR_USERNAMES ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    namespace,
    operatorUsernames:
      usernames.length > 0 ? usernames : [`system:serviceaccount:${namespace}:${serviceAccount}`],
    healthPort: port(env.HEALTH_PORT, 8081),
    healthHost: env.HEALTH_HOST || (cluster.mode === "in-cluster" ? "0.0.0.0" : "127.0.0.1"),
    leaderElection: bool(env.LEADER_ELECT, true),
    cluster,
    installCRDs: cluster.mode === "local" || bool(env.INSTALL_CRDS, false),
    maxConcurrentReconciles: positive(env.MAX_CONCURRENT_RECONCILES, 8),
    peerTenantOwnerNaming: {
      usernamePrefix: env.PEER_TENANT_USERNAME_PREFIX ?? "",
      groupsPrefix: env.PEER_TENANT_GROUPS_PREFIX ?? "",
    },
    peerTenantWatchCilium: bool(env.PEER_TENANT_WATCH_CILIUM, false),
  };
}
