import { hostname } from "node:os";
import type { Logger } from "pino";
import type { KubeClient } from "./client.ts";
import { describeError, isNotFound } from "./errors.ts";
import type { KubeObject } from "./object.ts";

export interface EventInput {
  type: "Normal" | "Warning";
  /** CamelCase, why the action was taken (e.g. `ImageDownloaded`). */
  reason: string;
  /** CamelCase, what was done (e.g. `Download`). */
  action: string;
  /** For humans; at most 1 kB is kept. */
  note?: string;
  related?: KubeObject;
}

/** RFC 3339 with microseconds: the MicroTime format events.k8s.io/v1 requires for eventTime. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

interface SeriesState {
  name: string;
  namespace: string;
  count: number;
  firstSeen: number;
}

/** client-go tools/events keeps an isomorphic event's series open for 6 minutes. */
const SERIES_WINDOW_MS = 6 * 60 * 1000;

function reference(obj: KubeObject) {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata?.name,
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
    ...(obj.metadata?.uid ? { uid: obj.metadata.uid } : {}),
    ...(obj.metadata?.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
  };
}

/**
 * Records events.k8s.io/v1 Events. A repeat of the same event (same object, type, reason, action, note)
 * within 6 minutes does not create a new Event: the first one gets a `series` whose count and
 * lastObservedTime grow, as client-go's events library does. Failures are logged, never thrown: an Event is
 * a courtesy to users and must not fail a reconcile.
 */
export class EventRecorder {
  private readonly client: KubeClient;
  private readonly controller: string;
  private readonly instance: string;
  private readonly logger: Logger | undefined;
  private readonly now: () => Date;
  private readonly series = new Map<string, SeriesState>();
  /** Keeps names unique when two events for one object fall in the same millisecond. */
  private sequence = 0;

  constructor(
    client: KubeClient,
    opts: {
      reportingController?: string;
      reportingInstance?: string;
      logger?: Logger;
      now?: () => Date;
    } = {},
  ) {
    this.client = client;
    this.controller = opts.reportingController ?? "homelab.shdr.ch/homelab-operator";
    this.instance = opts.reportingInstance ?? hostname();
    this.logger = opts.logger;
    this.now = opts.now ?? (() => new Date());
  }

  async record(regarding: KubeObject, input: EventInput): Promise<void> {
    try {
      await this.recordOrThrow(regarding, input);
    } catch (err) {
      this.logger?.warn({ err: describeError(err), reason: input.reason }, "Could not record Event");
    }
  }

  /** Like record, but failures throw (for tests and callers that must know). */
  async recordOrThrow(regarding: KubeObject, input: EventInput): Promise<void> {
    const now = this.now();
    const note = (input.note ?? "").slice(0, 1024);
    const ref = reference(regarding);
    const id = JSON.stringify([
      ref.kind,
      ref.namespace,
      ref.name,
      ref.uid,
      input.type,
      input.reason,
      input.action,
      note,
    ]);
    this.expire(now.getTime());
    const open = this.series.get(id);
    if (open) {
      open.count++;
      try {
        await this.client.patch(
          { apiVersion: "events.k8s.io/v1", kind: "Event" },
          { namespace: open.namespace, name: open.name },
          { series: { count: open.count, lastObservedTime: microTime(now) } },
          "merge",
        );
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.series.delete(id); // the Event expired (TTL): start a new one
      }
    }
    // Events about cluster-scoped objects go to `default`, as client-go does.
    const namespace = ref.namespace ?? "default";
    const created: KubeObject = await this.client.create<KubeObject>({
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      // client-go names events "<object>.<hex nanoseconds>"; a generateName ending in "." is rejected
      // (generateName must itself be a valid DNS subdomain prefix).
      metadata: {
        name: `${ref.name ?? "object"}.${(BigInt(now.getTime()) * 1_000_000n + BigInt(++this.sequence)).toString(16)}`,
        namespace,
      },
      eventTime: microTime(now),
      reportingController: this.controller,
      reportingInstance: this.instance.slice(0, 128),
      action: input.action,
      reason: input.reason,
      type: input.type,
      note,
      regarding: ref,
      ...(input.related ? { related: reference(input.related) } : {}),
    });
    this.series.set(id, { name: created.metadata!.name!, namespace, count: 1, firstSeen: now.getTime() });
  }

  private expire(now: number): void {
    for (const [id, s] of this.series) if (now - s.firstSeen > SERIES_WINDOW_MS) this.series.delete(id);
  }
}
