// A stand-in for Crossplane's providers (provider-upjet-aws S3, provider-sql, provider-keycloak) and for
// the part of Knative Serving that reports readiness, for the e2e tests and the local homelab where no
// real provider runs (only provider-sql can be built here; e2e/provider-sql holds the stand-in's
// behaviour against it). It plays a provider as crossplane-runtime's managed reconciler does: a
// finalizer on each managed resource, the external-name annotation defaulted to metadata.name, the
// referenced ProviderConfig resolved (a missing one is a ReconcileError, as in a real provider), the
// connection Secret written with the provider's own key names and owned by the MR, and the Synced and
// Ready conditions. Deleting an MR deletes the external resource only when its managementPolicies allow
// Delete. A connection Secret that another object controls, or an uncontrolled one of another type, is
// never overwritten (crossplane-runtime's ConnectionSecretMustBeControllableBy). The "external systems"
// are an in-memory record that the tests read.
// It can be told to fail a kind with a message, which then shows as Synced=False ReconcileError.
import {
  addFinalizer,
  type Condition,
  type ControllerSpec,
  type GroupVersionKind,
  hasFinalizer,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
  removeFinalizer,
} from "../../runtime/index.ts";
import {
  clientConnectionDetails,
  generatedPassword,
  roleConnectionDetails,
  type SqlEndpoint,
} from "./connection-details.ts";

/** crossplane-runtime's finalizer on managed resources. */
export const MR_FINALIZER = "finalizer.managedresource.crossplane.io";
export const EXTERNAL_NAME = "crossplane.io/external-name";
const CONNECTION_SECRET_TYPE = "connection.crossplane.io/v1alpha1";
/** crossplane-runtime's errCreateOrUpdateSecret, which wraps every refusal to publish. */
const PUBLISH_FAILED = "cannot create or update connection secret";

interface ManagedKind {
  gvk: GroupVersionKind;
  /** The group/version of this provider's ProviderConfig and ClusterProviderConfig. */
  providerConfigApi: string;
  details?: (
    ctx: ReconcileContext,
    mr: Obj,
    existing: Record<string, string>,
  ) => Record<string, string> | Promise<Record<string, string>>;
}

type Obj = KubeObject & Record<string, unknown>;

export interface ExternalResource {
  kind: string;
  externalName: string;
  providerConfig: string;
  /** The managed resource that made it, namespace/name. */
  managedBy: string;
  forProvider: unknown;
}

export interface ProviderStandInOptions {
  /** Endpoint published for PostgreSQL roles (a real provider takes it from its ProviderConfig's Secret). */
  sql?: SqlEndpoint;
  /** Knative's domain for Services without a DomainMapping (config-domain). */
  knativeDomain?: string;
  /** How often a resource is looked at again, as a provider's poll interval (default 2 s). */
  pollMs?: number;
}

export class ProviderStandIn {
  /** External resources that exist, keyed kind/providerConfig/externalName. */
  readonly external = new Map<string, ExternalResource>();
  private readonly failures = new Map<string, string>();
  private readonly sql: SqlEndpoint;
  private readonly knativeDomain: string;
  private readonly pollMs: number;

  constructor(opts: ProviderStandInOptions = {}) {
    this.sql = opts.sql ?? { endpoint: "postgres.databases.svc.cluster.local", port: "5432" };
    this.knativeDomain = opts.knativeDomain ?? "apps.home.shdr.ch";
    this.pollMs = opts.pollMs ?? 2_000;
  }

  /** Makes every reconcile of `kind` (e.g. "Bucket") fail with `message`; undefined heals it again. */
  failWith(kind: string, message: string | undefined): void {
    if (message === undefined) this.failures.delete(kind);
    else this.failures.set(kind, message);
  }

  /** One controller per managed kind plus the two Knative kinds; add them all to a Manager. */
  controllers(): ControllerSpec[] {
    const kinds: ManagedKind[] = [
      {
        gvk: { apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "Bucket" },
        providerConfigApi: "aws.m.upbound.io/v1beta1",
        details: () => ({}),
      },
      {
        gvk: { apiVersion: "s3.aws.m.upbound.io/v1beta1", kind: "BucketACL" },
        providerConfigApi: "aws.m.upbound.io/v1beta1",
      },
      {
        gvk: { apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1", kind: "Role" },
        providerConfigApi: "postgresql.sql.m.crossplane.io/v1alpha1",
        details: async (ctx, mr, existing) =>
          roleConnectionDetails(
            externalName(mr),
            (await referencedPassword(ctx, mr)) ?? (existing.password || generatedPassword()),
            this.sql,
          ),
      },
      {
        gvk: { apiVersion: "postgresql.sql.m.crossplane.io/v1alpha1", kind: "Database" },
        providerConfigApi: "postgresql.sql.m.crossplane.io/v1alpha1",
      },
      {
        gvk: { apiVersion: "openidclient.keycloak.m.crossplane.io/v1alpha2", kind: "Client" },
        providerConfigApi: "keycloak.m.crossplane.io/v1beta1",
        details: (_ctx, mr, existing) => {
          const fp = forProvider(mr);
          const confidential = fp.accessType === "CONFIDENTIAL";
          return clientConnectionDetails(
            String(fp.clientId ?? ""),
            confidential,
            existing.clientSecret || generatedPassword(),
            fp.serviceAccountsEnabled ? `sa-${mr.metadata?.uid}` : undefined,
          );
        },
      },
    ];
    return [
      ...kinds.map((k) => this.managedController(k)),
      this.knativeController({ apiVersion: "serving.knative.dev/v1", kind: "Service" }, (o) =>
        this.serviceStatus(o),
      ),
      this.knativeController({ apiVersion: "serving.knative.dev/v1beta1", kind: "DomainMapping" }, (o) =>
        domainMappingStatus(o),
      ),
    ];
  }

  private managedController(k: ManagedKind): ControllerSpec {
    return {
      name: `stand-in-${k.gvk.kind.toLowerCase()}`,
      for: k.gvk,
      maxConcurrentReconciles: 2,
      reconcile: (_req, ctx) => this.reconcileManaged(k, ctx),
    };
  }

  private async reconcileManaged(k: ManagedKind, ctx: ReconcileContext): Promise<ReconcileResult> {
    const mr = ctx.object<Obj>();
    if (!mr) return undefined;
    const spec = (mr.spec ?? {}) as {
      managementPolicies?: string[];
      providerConfigRef?: { kind?: string; name?: string };
    };
    const policies = spec.managementPolicies ?? ["*"];
    const pcName = spec.providerConfigRef?.name ?? "default";
    const key = `${k.gvk.kind}/${pcName}/${externalName(mr)}`;
    if (mr.metadata?.deletionTimestamp) {
      if (!hasFinalizer(mr, MR_FINALIZER)) return undefined;
      if (policies.includes("*") || policies.includes("Delete")) this.external.delete(key);
      await removeFinalizer(ctx.client, mr, MR_FINALIZER);
      return undefined;
    }
    if (!hasFinalizer(mr, MR_FINALIZER)) await addFinalizer(ctx.client, mr, MR_FINALIZER);
    if (!mr.metadata?.annotations?.[EXTERNAL_NAME]) {
      await ctx.client.patch(
        k.gvk,
        keyOf(mr),
        { metadata: { annotations: { [EXTERNAL_NAME]: mr.metadata?.name } } },
        "merge",
      );
      return { requeueAfter: 1 };
    }
    const failure = await this.failureOf(ctx, k, mr, spec.providerConfigRef);
    const before = conditionsOf(mr);
    if (failure) {
      const wasReady = before.find((c) => c.type === "Ready");
      await this.writeConditions(ctx, k.gvk, mr, [
        { type: "Synced", status: "False", reason: "ReconcileError", message: failure },
        wasReady?.status === "True"
          ? wasReady
          : { type: "Ready", status: "False", reason: "Creating", message: "" },
      ]);
      return { requeueAfter: this.pollMs };
    }
    const observeOnly = !(policies.includes("*") || policies.includes("Create"));
    if (!this.external.has(key) && observeOnly) {
      await this.writeConditions(ctx, k.gvk, mr, [
        {
          type: "Synced",
          status: "False",
          reason: "ReconcileError",
          message: "cannot observe external resource: it does not exist",
        },
        { type: "Ready", status: "False", reason: "Unavailable", message: "" },
      ]);
      return { requeueAfter: this.pollMs };
    }
    this.external.set(key, {
      kind: k.gvk.kind,
      externalName: externalName(mr),
      providerConfig: pcName,
      managedBy: `${mr.metadata?.namespace}/${mr.metadata?.name}`,
      forProvider: forProvider(mr),
    });
    const ref = (mr.spec as { writeConnectionSecretToRef?: { name?: string } }).writeConnectionSecretToRef;
    const refused = ref?.name && k.details ? await this.publish(ctx, mr, ref.name, k.details) : undefined;
    if (refused) {
      // The managed reconciler marks only Synced on a publish failure; Ready stays what it was.
      const ready = before.find((c) => c.type === "Ready");
      await this.writeConditions(ctx, k.gvk, mr, [
        { type: "Synced", status: "False", reason: "ReconcileError", message: refused },
        ready ?? { type: "Ready", status: "False", reason: "Creating", message: "" },
      ]);
      return { requeueAfter: this.pollMs };
    }
    await this.writeConditions(ctx, k.gvk, mr, [
      { type: "Synced", status: "True", reason: "ReconcileSuccess", message: "" },
      { type: "Ready", status: "True", reason: "Available", message: "" },
    ]);
    return { requeueAfter: this.pollMs };
  }

  private async failureOf(
    ctx: ReconcileContext,
    k: ManagedKind,
    mr: Obj,
    ref: { kind?: string; name?: string } | undefined,
  ): Promise<string | undefined> {
    const kind = ref?.kind ?? "ClusterProviderConfig";
    const name = ref?.name ?? "default";
    const pc = await ctx.client.getOrUndefined(
      { apiVersion: this.providerConfigApi(k), kind },
      kind === "ProviderConfig" ? { namespace: mr.metadata?.namespace, name } : { name },
    );
    const group = this.providerConfigApi(k).split("/")[0];
    if (!pc)
      return `connect failed: cannot get referenced ProviderConfig: ${kind}.${group} "${name}" not found`;
    return this.failures.get(k.gvk.kind);
  }

  private providerConfigApi(k: ManagedKind): string {
    return k.providerConfigApi;
  }

  /**
   * Writes the connection Secret, or returns why it may not (crossplane-runtime's
   * ConnectionSecretMustBeControllableBy: a Secret another object controls, or an uncontrolled one that
   * is not a connection Secret, is never overwritten; the error is the managed reconciler's message).
   */
  private async publish(
    ctx: ReconcileContext,
    mr: Obj,
    name: string,
    details: NonNullable<ManagedKind["details"]>,
  ): Promise<string | undefined> {
    const namespace = mr.metadata?.namespace as string;
    const existing = await ctx.client.getOrUndefined<Obj>(
      { apiVersion: "v1", kind: "Secret" },
      { namespace, name },
    );
    if (existing) {
      const controller = existing.metadata?.ownerReferences?.find((r) => r.controller);
      const type = (existing.type as string | undefined) ?? "Opaque";
      if (!controller && type !== CONNECTION_SECRET_TYPE)
        return `${PUBLISH_FAILED}: refusing to modify uncontrolled secret of type "${type}"`;
      if (controller && controller.uid !== mr.metadata?.uid)
        return `${PUBLISH_FAILED}: existing secret is not controlled by UID "${mr.metadata?.uid}"`;
    }
    const decoded: Record<string, string> = {};
    for (const [k, v] of Object.entries((existing?.data ?? {}) as Record<string, string>)) {
      decoded[k] = Buffer.from(v, "base64").toString("utf8");
    }
    let wanted: Record<string, string>;
    try {
      wanted = await details(ctx, mr, decoded);
    } catch (err) {
      if (err instanceof Refusal) return err.message;
      throw err;
    }
    const same =
      existing &&
      Object.keys(wanted).length === Object.keys(decoded).length &&
      Object.entries(wanted).every(([k, v]) => decoded[k] === v);
    if (same) return undefined;
    await ctx.client.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace,
        ownerReferences: [
          {
            apiVersion: mr.apiVersion as string,
            kind: mr.kind as string,
            name: mr.metadata?.name as string,
            uid: mr.metadata?.uid as string,
            controller: true,
          },
        ],
      },
      type: CONNECTION_SECRET_TYPE,
      data: Object.fromEntries(
        Object.entries(wanted).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
      ),
    } as Obj);
    return undefined;
  }

  private async writeConditions(
    ctx: ReconcileContext,
    gvk: GroupVersionKind,
    mr: Obj,
    wanted: Pick<Condition, "type" | "status" | "reason" | "message">[],
  ): Promise<void> {
    const before = conditionsOf(mr);
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const next = wanted.map((w) => {
      const prev = before.find((c) => c.type === w.type);
      const same =
        prev && prev.status === w.status && prev.reason === w.reason && (prev.message ?? "") === w.message;
      if (same) return prev;
      return {
        type: w.type,
        status: w.status,
        reason: w.reason,
        ...(w.message ? { message: w.message } : {}),
        lastTransitionTime: prev && prev.status === w.status ? prev.lastTransitionTime : now,
        observedGeneration: mr.metadata?.generation ?? 0,
      };
    });
    if (JSON.stringify(next) === JSON.stringify(before)) return;
    await ctx.client.patchStatus(gvk, keyOf(mr), { conditions: next });
  }

  private knativeController(
    gvk: GroupVersionKind,
    status: (o: Obj) => Record<string, unknown>,
  ): ControllerSpec {
    return {
      name: `stand-in-knative-${gvk.kind.toLowerCase()}`,
      for: gvk,
      async reconcile(_req, ctx) {
        const o = ctx.object<Obj>();
        if (!o || o.metadata?.deletionTimestamp) return undefined;
        const wanted = status(o);
        const current = (o.status ?? {}) as Record<string, unknown>;
        if (current.observedGeneration === wanted.observedGeneration && current.url === wanted.url)
          return undefined;
        await ctx.client.patchStatus(gvk, keyOf(o), wanted);
        return undefined;
      },
    };
  }

  private serviceStatus(o: Obj): Record<string, unknown> {
    const name = o.metadata?.name as string;
    const ns = o.metadata?.namespace as string;
    const gen = o.metadata?.generation ?? 1;
    const revision = `${name}-${String(gen).padStart(5, "0")}`;
    return {
      observedGeneration: gen,
      url: `http://${name}.${ns}.${this.knativeDomain}`,
      address: { url: `http://${name}.${ns}.svc.cluster.local` },
      latestCreatedRevisionName: revision,
      latestReadyRevisionName: revision,
      traffic: [{ revisionName: revision, latestRevision: true, percent: 100 }],
      conditions: knativeTrue(["ConfigurationsReady", "Ready", "RoutesReady"]),
    };
  }
}

function domainMappingStatus(o: Obj): Record<string, unknown> {
  return {
    observedGeneration: o.metadata?.generation ?? 1,
    url: `https://${o.metadata?.name}`,
    conditions: knativeTrue([
      "CertificateProvisioned",
      "DomainClaimed",
      "IngressReady",
      "Ready",
      "ReferenceResolved",
    ]),
  };
}

function knativeTrue(types: string[]): Record<string, string>[] {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return types.map((type) => ({ type, status: "True", lastTransitionTime: now }));
}

function conditionsOf(o: Obj): Condition[] {
  return ((o.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];
}

function forProvider(mr: Obj): Record<string, unknown> {
  return ((mr.spec as { forProvider?: Record<string, unknown> }).forProvider ?? {}) as Record<
    string,
    unknown
  >;
}

function externalName(mr: Obj): string {
  return mr.metadata?.annotations?.[EXTERNAL_NAME] ?? (mr.metadata?.name as string);
}

function keyOf(o: KubeObject): { namespace?: string; name: string } {
  return {
    ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}),
    name: o.metadata?.name as string,
  };
}

/** What the real provider answers instead of publishing (its error becomes Synced's message). */
class Refusal extends Error {}

/**
 * provider-sql's getPassword: with a passwordSecretRef the role's password is that Secret's key, read in
 * the Role's namespace; a missing Secret fails the reconcile (the real one fails in Observe with this).
 */
async function referencedPassword(ctx: ReconcileContext, mr: Obj): Promise<string | undefined> {
  const ref = forProvider(mr).passwordSecretRef as { name?: string; key?: string } | undefined;
  if (!ref?.name) return undefined;
  const secret = await ctx.client.getOrUndefined<Obj & { data?: Record<string, string> }>(
    { apiVersion: "v1", kind: "Secret" },
    { namespace: mr.metadata?.namespace as string, name: ref.name },
  );
  if (!secret)
    throw new Refusal(
      `cannot observe external resource: cannot get password secret: secrets "${ref.name}" not found`,
    );
  const value = secret.data?.[ref.key ?? ""];
  return value ? Buffer.from(value, "base64").toString("utf8") : undefined;
}
