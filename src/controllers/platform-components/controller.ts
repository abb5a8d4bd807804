// The platform-components controller: a second controller on HomelabCluster (cert-manager style split).
// The provisioning controller owns the VMs, Talos and its own Conditions; this one owns ComponentsReady,
// one `<Component>Ready` Condition per component in the spec, and status.components. It writes them by
// server-side apply under its own field manager: conditions and components are list-maps keyed by type
// and name, so the API server merges our entries with the provisioning controller's, never replacing them.
import { type CatalogEntry, catalogEntry, type PlatformSettings } from "../../components/catalog.ts";
import { Helm } from "../../components/helm.ts";
import {
  COMPONENTS_FIELD_MANAGER,
  type ComponentResult,
  type DesiredComponent,
  reconcileComponents,
} from "../../components/installer.ts";
import { HomelabCluster } from "../../crds/homelab-cluster.ts";
import {
  type Condition,
  type ConditionInput,
  type ControllerSpec,
  describeError,
  KubeClient,
  type KubeObject,
  parseKubeconfig,
  type ReconcileContext,
  type ReconcileResult,
} from "../../runtime/index.ts";
import { StatusWriter } from "../../runtime/status.ts";
import { PAUSED_ANNOTATION } from "../shared/paused.ts";

export const GVK = { apiVersion: HomelabCluster.apiVersion, kind: HomelabCluster.kind };
/** The provisioning controller's condition that says the admin kubeconfig Secret is stored. */
export const KUBECONFIG_CONDITION = "KubeconfigReady";
export const COMPONENTS_READY = "ComponentsReady";

const EVENT_ACTION = {
  installed: "Install",
  upgraded: "Upgrade",
  restored: "Restore",
  uninstalled: "Uninstall",
} as const;

export interface PlatformComponentsOptions {
  /** Unset when no Helm binary was found: ComponentsReady then says where it was looked for. */
  helmPath: string | undefined;
  /** What was looked at to find helmPath (src/components/helm-binary.ts), for that Condition. */
  helmChecked?: string[];
  /** Helm's cache/config homes (chart downloads survive between reconciles). */
  helmStateDir: string;
  /** Where the kubeconfig Secret is when status.secretRefs.kubeconfig is not set yet. */
  operatorNamespace: string;
  /** Drift checks of a converged cluster (default 60 s); progressing clusters are looked at every 10 s. */
  resyncMs?: number;
  fetchText?: (url: string) => Promise<string>;
  /**
   * Where to pull a component from instead of its upstream source, when spec.components has no
   * repository for it: local mode's loopback mirror of the charts it has. Undefined: upstream.
   */
  mirrorFor?: (entry: CatalogEntry, version: string) => string | undefined;
}

/** A key of a Secret in the operator's namespace: the spec cannot point the operator at anyone else's. */
interface SecretKeyRef {
  name: string;
  key: string;
}

interface SpecComponent {
  name: string;
  enabled: boolean;
  version?: string;
  repository?: string;
  values?: Record<string, unknown>;
  valuesFrom?: { name: string; secretKeyRef: SecretKeyRef }[];
}

interface ClusterObject extends KubeObject {
  spec: {
    components?: SpecComponent[];
    platform?: Partial<Omit<PlatformSettings, "postgres">> & {
      domain: string;
      postgres?: {
        host: string;
        port?: number;
        sslMode?: NonNullable<PlatformSettings["postgres"]>["sslMode"];
      };
      loadBalancerPool?: { start: string; stop: string };
      stepCa?: PlatformSettings["stepCa"] & {
        passwordRef?: SecretKeyRef;
      };
    };
  };
  status?: { conditions?: Condition[]; secretRefs?: { kubeconfig?: { name: string; namespace: string } } };
}

function mirrored(
  opts: PlatformComponentsOptions,
  entry: CatalogEntry,
  version?: string,
): string | undefined {
  return opts.mirrorFor?.(entry, version ?? entry.source.version);
}

/** `cert-manager` → `CertManagerReady`. */
export function conditionTypeFor(component: string): string {
  return `${component
    .split("-")
    .map((w) => (w[0]?.toUpperCase() ?? "") + w.slice(1))
    .join("")}Ready`;
}

async function secretValue(
  ctx: ReconcileContext,
  ref: { name: string; namespace: string; key: string },
): Promise<string> {
  const secret = await ctx.client.get<KubeObject & { data?: Record<string, string> }>(
    { apiVersion: "v1", kind: "Secret" },
    { namespace: ref.namespace, name: ref.name },
  );
  const v = secret.data?.[ref.key];
  if (v === undefined) throw new Error(`Secret ${ref.namespace}/${ref.name} has no key ${ref.key}`);
  return Buffer.from(v, "base64").toString("utf8");
}

/**
 * Every secret value this reconcile read, so that no message leaves it with one inside: Helm's stderr (a
 * template's `fail`, a schema error) and API errors can quote values verbatim, encoded or not.
 */
export class Redactor {
  readonly #needles = new Set<string>();

  add(value: string): string {
    // Very short values would blank out ordinary words; a Secret that short protects nothing anyway.
    if (value.length >= 4) {
      this.#needles.add(value);
      this.#needles.add(Buffer.from(value).toString("base64"));
      this.#needles.add(JSON.stringify(value).slice(1, -1));
    }
    return value;
  }

  redact(text: string): string {
    let out = text;
    // Longest first: a value's base64 can contain a shorter value.
    for (const n of [...this.#needles].sort((a, b) => b.length - a.length))
      out = out.split(n).join("[redacted]");
    return out;
  }
}

function platformOf(hc: ClusterObject): PlatformSettings {
  const p = hc.spec.platform;
  return {
    domain: p?.domain ?? "",
    kubePrismPort: p?.kubePrismPort ?? 7445,
    ...(p?.loadBalancerPool ? { loadBalancerRange: p.loadBalancerPool } : {}),
    ...(p?.stepCa ? { stepCa: p.stepCa } : {}),
    ...(p?.openBaoAddress ? { openBaoAddress: p.openBaoAddress } : {}),
    ...(p?.otlpEndpoint ? { otlpEndpoint: p.otlpEndpoint } : {}),
    ...(p?.gitlabKasAddress ? { gitlabKasAddress: p.gitlabKasAddress } : {}),
    ...(p?.s3Endpoint ? { s3Endpoint: p.s3Endpoint } : {}),
    ...(p?.postgres
      ? {
          postgres: {
            host: p.postgres.host,
            port: p.postgres.port ?? 5432,
            sslMode: p.postgres.sslMode ?? "verify-full",
          },
        }
      : {}),
  };
}

function componentCondition(r: ComponentResult): ConditionInput {
  // Only a component whose readiness checks passed is Ready=True; a disabled or removed one is False with
  // its reason (Disabled, Uninstalled, Deleted, NotOurs): nothing about it was checked for readiness.
  return {
    type: conditionTypeFor(r.name),
    status: r.state === "Ready" ? "True" : "False",
    reason: r.reason,
    message: r.message,
  };
}

/**
 * Our part of the status, through the runtime's StatusWriter: server-side apply under our own field
 * manager (never clobbering the provisioning controller's conditions), written only when it changes,
 * lastTransitionTime kept unless the status flips.
 */
async function writeStatus(
  ctx: ReconcileContext,
  writer: StatusWriter,
  hc: ClusterObject,
  conditions: ConditionInput[],
  components?: ComponentResult[],
): Promise<void> {
  const generation = hc.metadata?.generation;
  await writer.write(
    hc,
    {
      conditions: conditions.map((c) => ({
        ...c,
        ...(generation ? { observedGeneration: generation } : {}),
      })),
      ...(components
        ? {
            fields: {
              components: components.map((r) => ({
                name: r.name,
                ...(r.version ? { version: r.version } : {}),
                ready: r.state === "Ready",
                ...(r.state === "Ready" ? {} : { message: r.message.slice(0, 1024) }),
              })),
            },
          }
        : {}),
    },
    {},
    ctx.client,
  );
}

export async function reconcileCluster(
  ctx: ReconcileContext,
  opts: PlatformComponentsOptions,
  writer: StatusWriter,
): Promise<ReconcileResult> {
  const hc = ctx.object<ClusterObject>();
  if (!hc || hc.metadata?.deletionTimestamp) return undefined;
  const spec = hc.spec.components ?? [];
  const gate = hc.status?.conditions?.find((c) => c.type === KUBECONFIG_CONDITION);
  if (gate?.status !== "True") {
    await writeStatus(ctx, writer, hc, [
      {
        type: COMPONENTS_READY,
        status: "False",
        reason: "WaitingForKubeconfig",
        message: `waiting for ${KUBECONFIG_CONDITION}=True from the provisioning controller`,
      },
    ]);
    return { requeueAfter: 30_000 };
  }
  if (!opts.helmPath) {
    await writeStatus(ctx, writer, hc, [
      {
        type: COMPONENTS_READY,
        status: "False",
        reason: "HelmNotFound",
        message: `no Helm binary to install components with; looked at: ${(opts.helmChecked ?? []).join("; ")}`,
      },
    ]);
    return { requeueAfter: 60_000 };
  }
  const helmPath = opts.helmPath;
  const name = hc.metadata?.name as string;
  const ref = hc.status?.secretRefs?.kubeconfig ?? {
    name: `${name}-kubeconfig`,
    namespace: opts.operatorNamespace,
  };
  const secrets = new Redactor();
  const kubeconfigYaml = await secretValue(ctx, { ...ref, key: "value" });
  const kc = parseKubeconfig(kubeconfigYaml);
  // Bound to the reconcile's signal: once leadership is lost or the manager stops, no further write
  // reaches the workload cluster, and requests in flight are cancelled.
  const workload = new KubeClient(kc, { fieldManager: COMPONENTS_FIELD_MANAGER }).withSignal(ctx.signal);
  const helm = new Helm({ helmPath, stateDir: opts.helmStateDir, signal: ctx.signal }, kubeconfigYaml);

  const desired: DesiredComponent[] = [];
  const platform = platformOf(hc);
  const passwordRef = hc.spec.platform?.stepCa?.passwordRef;
  let stepCaUnavailable: string | undefined;
  if (platform.stepCa && passwordRef) {
    try {
      platform.stepCa = {
        ...platform.stepCa,
        password: secrets.add(await secretValue(ctx, { ...passwordRef, namespace: opts.operatorNamespace })),
      };
    } catch (err) {
      stepCaUnavailable = describeError(err);
    }
  }
  for (const c of spec) {
    const entry = catalogEntry(c.name);
    if (!entry) continue; // the CRD's enum already refuses unknown names
    // A Secret that cannot be read skips this component's Helm call only: it stays in the plan as enabled,
    // so nothing it depends on is uninstalled from under its running release.
    let unavailable = c.name === "step-issuer" ? stepCaUnavailable : undefined;
    const secretValues: Record<string, string> = {};
    try {
      for (const vf of c.valuesFrom ?? [])
        secretValues[vf.name] = secrets.add(
          await secretValue(ctx, { ...vf.secretKeyRef, namespace: opts.operatorNamespace }),
        );
    } catch (err) {
      // Names the Secret and key only; the value is never read into a message.
      unavailable ??= describeError(err);
    }
    desired.push({
      entry,
      enabled: c.enabled,
      ...(unavailable && c.enabled
        ? { unavailable: { reason: "SecretUnavailable", message: unavailable } }
        : {}),
      ...(c.version ? { version: c.version } : {}),
      ...(c.repository
        ? { repository: c.repository }
        : mirrored(opts, entry, c.version)
          ? { repository: mirrored(opts, entry, c.version) as string }
          : {}),
      ...(c.values ? { values: c.values } : {}),
      secretValues,
    });
  }
  const passResults = await reconcileComponents(
    {
      clusterName: name,
      workload,
      helm,
      platform,
      // Helm and the workload cluster sit outside the management cluster, where no resourceVersion fences
      // a stale leader: the installer asks before each write.
      fence: (reason) => ctx.fence(reason),
      fetchText:
        opts.fetchText ??
        (async (url) => {
          // fetch's own message is only "fetch failed": the cause says what was tried (no DNS, refused).
          const res = await fetch(url, { signal: ctx.signal }).catch((err: Error & { cause?: Error }) => {
            throw new Error(`GET ${url}: ${err.cause?.message ?? err.message}`);
          });
          if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
          return res.text();
        }),
    },
    desired,
  );
  // Before anything reaches status or an Event.
  const results = passResults.map((r) => ({ ...r, message: secrets.redact(r.message) }));
  for (const r of results) {
    if (!r.action) continue;
    await ctx.recorder.record(hc, {
      type: "Normal",
      reason: `Component${r.action[0]?.toUpperCase()}${r.action.slice(1)}`,
      action: EVENT_ACTION[r.action],
      note: `${r.name}${r.version ? ` ${r.version}` : ""} ${r.action}${r.restored ? `: ${r.restored.slice(0, 5).join(", ")}` : ""}`.slice(
        0,
        1024,
      ),
    });
  }
  const notReady = results.filter((r) => !["Ready", "Disabled", "Removed"].includes(r.state));
  await writeStatus(
    ctx,
    writer,
    hc,
    [
      notReady.length === 0
        ? {
            type: COMPONENTS_READY,
            status: "True",
            reason: "AllReady",
            message: `${results.length} component(s) ready or disabled`,
          }
        : {
            type: COMPONENTS_READY,
            status: "False",
            reason: notReady.some((r) => r.state === "Refused" || r.state === "Failed")
              ? "ComponentsFailing"
              : "ComponentsProgressing",
            message: `not ready: ${notReady.map((r) => `${r.name} (${r.state})`).join(", ")}`.slice(0, 1024),
          },
      ...results.map(componentCondition),
    ],
    results,
  );
  return { requeueAfter: notReady.length === 0 ? (opts.resyncMs ?? 60_000) : 10_000 };
}

export function platformComponentsController(opts: PlatformComponentsOptions): ControllerSpec {
  let writer: StatusWriter | undefined;
  return {
    name: "platform-components",
    for: GVK,
    // While paused the runtime skips the cluster without writing anything (not even to the workload cluster).
    pausedAnnotation: PAUSED_ANNOTATION,
    // Status writes of either controller re-trigger this one only when the gate or spec moved: the
    // periodic requeue is what notices drift in the workload cluster.
    predicate: (oldObj, newObj) => {
      if (!oldObj) return true;
      if (oldObj.metadata?.generation !== newObj.metadata?.generation) return true;
      // Unpausing must bring the cluster back: the spec may have changed meanwhile.
      const paused = (o: KubeObject) => o.metadata?.annotations?.[PAUSED_ANNOTATION];
      if (paused(oldObj) !== paused(newObj)) return true;
      const gate = (o: KubeObject) =>
        ((o.status as ClusterObject["status"])?.conditions ?? []).find((c) => c.type === KUBECONFIG_CONDITION)
          ?.status;
      return gate(oldObj) !== gate(newObj);
    },
    reconcile: (_req, ctx) => {
      writer ??= new StatusWriter(ctx.client, { fieldManager: COMPONENTS_FIELD_MANAGER });
      return reconcileCluster(ctx, opts, writer);
    },
  };
}
