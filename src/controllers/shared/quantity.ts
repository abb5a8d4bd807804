// Kubernetes resource quantities ("4Gi", "500m", "20", "1.5G", "2e3") as exact integers of milli-units, so
// quota arithmetic (sums, splits of a tenant-wide total) never loses precision to floating point.

const SUFFIX_MULTIPLIERS: Record<string, bigint> = {
  "": 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
};

const QUANTITY = /^([+-]?)(\d+)(?:\.(\d+))?(?:(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+))?$/;

export class QuantityError extends Error {
  override name = "QuantityError";
}

/** Parses a quantity into milli-units, rounding any finer fraction up as Kubernetes does. */
export function parseQuantity(text: string | number): bigint {
  const s = String(text).trim();
  const m = QUANTITY.exec(s);
  if (!m) throw new QuantityError(`"${s}" is not a Kubernetes quantity (e.g. 4Gi, 500m, 20)`);
  const [, sign, whole = "0", fraction = "", suffix, exponent] = m;
  // value = (whole.fraction) * multiplier * 1000, kept as numerator/denominator until the final ceil.
  let numerator = BigInt(whole + fraction) * 1000n;
  let denominator = 10n ** BigInt(fraction.length);
  if (suffix === "m") denominator *= 1000n;
  else if (suffix) numerator *= SUFFIX_MULTIPLIERS[suffix] ?? 1n;
  if (exponent) {
    const e = BigInt(exponent);
    if (e >= 0n) numerator *= 10n ** e;
    else denominator *= 10n ** -e;
  }
  const milli = (numerator + denominator - 1n) / denominator;
  return sign === "-" ? -milli : milli;
}

const BINARY = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"] as const;
const DECIMAL = ["E", "P", "T", "G", "M", "k"] as const;

/** Formats milli-units in the shortest exact form: "6Gi", "1500m", "20", "3k". */
export function formatQuantity(milli: bigint): string {
  if (milli < 0n) return `-${formatQuantity(-milli)}`;
  if (milli % 1000n !== 0n) return `${milli}m`;
  const units = milli / 1000n;
  if (units === 0n) return "0";
  for (const suffix of BINARY) {
    const mult = SUFFIX_MULTIPLIERS[suffix]!;
    if (units % mult === 0n) return `${units / mult}${suffix}`;
  }
  for (const suffix of DECIMAL) {
    const mult = SUFFIX_MULTIPLIERS[suffix]!;
    if (units % mult === 0n) return `${units / mult}${suffix}`;
  }
  return `${units}`;
}

/** A resource list as the API accepts it: quantities as text, or plain numbers for counts. */
export type ResourceList = Record<string, string | number>;

/** Adds resource lists key by key (a missing key counts as zero). */
export function sumResources(lists: ResourceList[]): Record<string, string> {
  const totals = new Map<string, bigint>();
  for (const list of lists) {
    for (const [name, value] of Object.entries(list)) {
      totals.set(name, (totals.get(name) ?? 0n) + parseQuantity(value));
    }
  }
  return Object.fromEntries(
    [...totals].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, formatQuantity(v)]),
  );
}
