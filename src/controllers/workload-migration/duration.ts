// Go-style durations as the CRD accepts them (e.g. 10s, 1h30m, 168h), in milliseconds.
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const PART = /^(\d+)(ns|us|ms|s|m|h)/;

export function parseDuration(text: string): number {
  if (!text) throw new Error("empty duration");
  let total = 0;
  let rest = text;
  while (rest) {
    const m = PART.exec(rest);
    if (!m) throw new Error(`not a duration: ${JSON.stringify(text)}`);
    total += Number(m[1]) * UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}
