// Phases 5 and 6: each node from maintenance mode to configured (mTLS), then etcd bootstrapped exactly
// once on the first control plane.
import { TalosApiError } from "../../talos/client/errors.ts";
import { TalosClient } from "../../talos/client/talos-client.ts";
import type { TalosClusterInput } from "../../talos/config/input.ts";
import { generateNodeConfig } from "../../talos/config/machine-config.ts";
import { bootstrapNode, controlPlanes } from "./names.ts";
import { done, type Outcome, waiting } from "./outcome.ts";
import { milestone, nodeStatus, type Scope } from "./scope.ts";
import { nodeBeingUpgraded } from "./upgrade-talos.ts";

const CALL_TIMEOUT_MS = 10_000;
/**
 * The deadline of an upgrade request: on Talos ≥ 1.13 the client pulls the installer image
 * (ImageService.Pull, hundreds of MiB on a homelab's uplink) and runs the install
 * (LifecycleService.Upgrade) before the reboot, which takes minutes; under the 10 s of other calls it
 * would end DEADLINE_EXCEEDED every time and be sent again for ever.
 */
export const UPGRADE_CALL_TIMEOUT_MS = 15 * 60_000;

export type TalosCallKind = "call" | "upgrade";

/** How the admin client reaches the node at `ip`, and how long each of its calls may take. */
export function adminClientOptions(
  scope: Pick<Scope, "opts">,
  ip: string,
  kind: TalosCallKind = "call",
): { endpoint: string; timeoutMs: number; dial: Scope["opts"]["connections"]["dial"] } {
  return {
    endpoint: scope.opts.connections.talosEndpoint(ip),
    timeoutMs: kind === "upgrade" ? UPGRADE_CALL_TIMEOUT_MS : CALL_TIMEOUT_MS,
    dial: scope.opts.connections.dial,
  };
}
/** The node status note after ApplyConfiguration: the next pass knows the config was sent. */
const APPLIED = "machine config applied; installing and rebooting";

/** The spec as the pure config generator takes it. */
export function talosInput(spec: Scope["spec"]): TalosClusterInput {
  const k8s = spec.kubernetes;
  return {
    clusterName: k8s.clusterName,
    endpoint: k8s.endpoint,
    kubernetesVersion: k8s.version,
    talosVersion: spec.talos.version,
    schematic: spec.talos.schematic,
    imageFactory: spec.talos.imageFactory,
    installDisk: spec.talos.installDisk,
    podSubnet: k8s.podSubnet,
    serviceSubnet: k8s.serviceSubnet,
    allowSchedulingOnControlPlanes: k8s.allowSchedulingOnControlPlanes,
    ciliumCNI: spec.components.some((c) => c.name === "cilium" && c.enabled),
    network: {
      gateway: spec.network.gateway,
      nameservers: spec.network.nameservers,
      prefixLength: Number(spec.network.subnet.split("/")[1]),
      interface: spec.network.interface,
      // Only the control-plane VIP goes on the nodes; network.vip is Cilium's and stays off them.
      ...(spec.network.controlPlaneVIP ? { controlPlaneVip: spec.network.controlPlaneVIP } : {}),
    },
    nodes: spec.nodes.map((n) => ({ name: n.name, ip: n.ip, role: n.role })),
    ...(k8s.oidc ? { oidc: k8s.oidc } : {}),
    configPatches: spec.talos.configPatches,
  };
}

/** An mTLS client for the node at `ip`, with the admin talosconfig's certificate. */
export function adminClient(scope: Scope, ip: string, kind: TalosCallKind = "call"): TalosClient {
  if (!scope.talosconfig) throw new Error("talosconfig not loaded (the Secrets phase runs first)");
  return TalosClient.fromTalosconfig(scope.talosconfig, adminClientOptions(scope, ip, kind));
}

export async function withClient<T>(client: TalosClient, fn: (c: TalosClient) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export async function configureNodes(scope: Scope): Promise<Outcome> {
  const input = talosInput(scope.spec);
  const waits: string[] = [];
  const busy = nodeBeingUpgraded(scope);
  const upgrading = scope.spec.nodes.some((n) => n.name === busy) ? busy : undefined;
  for (const node of scope.spec.nodes) {
    // Rebooting into its upgrade: the TalosUpToDate phase waits for it (and its healthTimeout).
    if (node.name === upgrading) continue;
    const status = nodeStatus(scope, node.name);
    // mTLS first: a configured node (the steady state) costs one call.
    try {
      const v = await withClient(adminClient(scope, node.ip), (c) => c.version());
      status.talosMode = "Configured";
      status.talosVersion = v.tag;
      if (status.message === APPLIED) delete status.message;
      continue;
    } catch (err) {
      if (!(err instanceof TalosApiError)) throw err;
    }
    const endpoint = scope.opts.connections.talosEndpoint(node.ip);
    // Applied before, yet in maintenance mode again: the install did not take (Talos then boots the
    // image again). Say so; applying again is what recovers once the cause is fixed.
    const appliedBefore = status.message === APPLIED;
    try {
      await withClient(
        TalosClient.maintenance(endpoint, { timeoutMs: CALL_TIMEOUT_MS, dial: scope.opts.connections.dial }),
        async (c) => {
          const v = await c.version();
          status.talosMode = "Maintenance";
          status.talosVersion = v.tag;
          if (!scope.secrets) throw new Error("secrets not loaded (the Secrets phase runs first)");
          await c.applyConfiguration(generateNodeConfig(input, scope.secrets, node.name).yaml, {
            mode: "AUTO",
          });
        },
      );
      if (appliedBefore) {
        waits.push(
          `${node.name}: still in maintenance mode after its config was applied (install failed?); applied again`,
        );
      } else {
        milestone(scope, "ConfigApplied", "Configure", `${node.name} (${node.ip}) got its machine config`);
        waits.push(`${node.name}: config applied, rebooting`);
      }
      status.message = APPLIED;
    } catch (err) {
      if (!(err instanceof TalosApiError)) throw err;
      // Rebooting after the apply keeps the APPLIED note, so coming back in maintenance is noticed.
      if (!appliedBefore) status.message = `Talos API at ${node.ip} not answering yet (${err.kind})`;
      waits.push(`${node.name}: Talos API at ${node.ip} not answering yet (${err.kind})`);
    }
  }
  if (waits.length) return waiting("WaitingForTalos", waits.join("; "), scope.opts.timings.pollMs);
  return done("NodesConfigured", configuredMessage(scope.spec.nodes.length, upgrading));
}

/** What TalosConfigured checked: the node being upgraded is skipped, and the message says so. */
export function configuredMessage(nodes: number, upgrading: string | undefined): string {
  if (!upgrading) return `${nodes} node(s) in configured mode`;
  return `${nodes - 1} of ${nodes} node(s) in configured mode; ${upgrading} not checked, it is being upgraded (TalosUpToDate waits for it)`;
}

export async function bootstrapEtcd(scope: Scope): Promise<Outcome> {
  const first = bootstrapNode(scope.spec);
  return withClient(adminClient(scope, first.ip), async (c) => {
    // Level-triggered "once": a cluster whose etcd has members is bootstrapped, whoever did it.
    // An unreachable node says nothing about etcd: wait. Any other refusal (etcd not running yet) means
    // not bootstrapped; a wrong guess costs one AlreadyExists, never a second etcd.
    const members = await c.etcdMemberList().catch((err: unknown) => {
      if (err instanceof TalosApiError && !err.retryable) return [];
      throw err;
    });
    if (members.length > 0) return done("EtcdBootstrapped", `etcd has ${members.length} member(s)`);
    await scope.ctx.fence("bootstrap etcd");
    const result = await c.bootstrap(); // AlreadyExists is "already-bootstrapped": also fine
    if (result === "bootstrapped")
      milestone(scope, "EtcdBootstrapped", "Bootstrap", `etcd bootstrapped on ${first.name} (${first.ip})`);
    return waiting(
      "EtcdBootstrapping",
      `bootstrap ${result} on ${first.name}; waiting for etcd members (${controlPlanes(scope.spec).length} expected)`,
      scope.opts.timings.pollMs,
    );
  });
}
