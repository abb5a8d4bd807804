// Local mode's terminal: one human-readable line whenever one of our resources changes how it is
// doing (a condition's status, reason or message, its phase, its creation and removal), as it happens.
// The JSON logs stay complete; these lines are for the person watching `npm start`.
import { KINDS } from "../crds/index.ts";
import type { KubeClient, KubeObject } from "../runtime/index.ts";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface Observed extends KubeObject {
  status?: { phase?: string; conditions?: Condition[] };
}

function describe(c: Condition): string {
  const why = [c.reason, c.message].filter(Boolean).join(": ");
  return `${c.type}=${c.status}${why ? ` (${why})` : ""}`;
}

/** The lines that tell what changed from `before` to `after` (undefined: absent). */
export function progressLines(
  kind: string,
  before: Observed | undefined,
  after: Observed | undefined,
): string[] {
  const obj = after ?? before;
  const ns = obj?.metadata?.namespace;
  const name = `${kind} ${ns ? `${ns}/` : ""}${obj?.metadata?.name ?? "?"}`;
  if (!after) return [`${name} deleted`];
  const lines: string[] = [];
  if (!before) lines.push(`${name} created`);
  if (after.metadata?.deletionTimestamp && !before?.metadata?.deletionTimestamp)
    lines.push(`${name} deleting`);
  const phase = after.status?.phase;
  if (phase && phase !== before?.status?.phase) lines.push(`${name} phase ${phase}`);
  const old = new Map((before?.status?.conditions ?? []).map((c) => [c.type, c]));
  for (const c of after.status?.conditions ?? []) {
    const o = old.get(c.type);
    if (o && o.status === c.status && o.reason === c.reason && o.message === c.message) continue;
    lines.push(`${name} ${describe(c)}`);
  }
  return lines;
}

/** Watches every kind this operator serves and writes progress lines until stopped. */
export function printProgress(client: KubeClient, write: (line: string) => void): { stop(): Promise<void> } {
  const abort = new AbortController();
  const clock = () => new Date().toTimeString().slice(0, 8);
  const follow = async (apiVersion: string, kind: string) => {
    const seen = new Map<string, Observed>();
    const key = (o: Observed) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
    const show = (before: Observed | undefined, after: Observed | undefined) => {
      for (const line of progressLines(kind, before, after)) write(`${clock()}  ${line}`);
    };
    while (!abort.signal.aborted) {
      try {
        const list = await client.list<Observed>({ apiVersion, kind }, { signal: abort.signal });
        const current = new Map(list.items.map((o) => [key(o), o]));
        for (const [k, o] of seen) if (!current.has(k)) show(o, undefined);
        for (const [k, o] of current) show(seen.get(k), o);
        seen.clear();
        for (const [k, o] of current) seen.set(k, o);
        for await (const event of client.watch<Observed>(
          { apiVersion, kind },
          { resourceVersion: list.resourceVersion, signal: abort.signal },
        )) {
          const o = event.object;
          if (event.type === "BOOKMARK") continue;
          if (event.type === "DELETED") {
            show(seen.get(key(o)) ?? o, undefined);
            seen.delete(key(o));
          } else {
            show(seen.get(key(o)), o);
            seen.set(key(o), o);
          }
        }
      } catch {
        // CRDs not installed yet, a watch expired, or the API restarted: list again shortly.
      }
      if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, 1_000));
    }
  };
  const loops = KINDS.map((k) => follow(k.apiVersion, k.kind));
  return {
    async stop() {
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}
