// IPv4 parsing for the runtime mirror of the CRDs' CEL `ip()`/`cidr()` rules. Kubernetes' CEL IP
// library rejects leading zeros ("010.0.3.1") and IPv4-mapped IPv6, so this parser does too.

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** The address as an unsigned 32-bit number, or undefined when `text` is not a dotted-quad IPv4 address. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export interface IPv4Network {
  readonly address: number;
  readonly prefixLength: number;
}

/** A CIDR such as 10.0.3.0/24, or undefined when malformed. Host bits may be set (see `isNetworkAddress`). */
export function parseIPv4CIDR(text: string): IPv4Network | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9][0-9]?)$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > 32) return undefined;
  return { address, prefixLength };
}

function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== undefined;
}

/** True for a well-formed CIDR whose host bits are zero (what CEL's `cidr(x) == cidr(x).masked()` checks). */
export function isIPv4NetworkCIDR(text: string): boolean {
  const network = parseIPv4CIDR(text);
  return network !== undefined && (network.address & mask(network.prefixLength)) >>> 0 === network.address;
}

/** Whether `ip` lies inside `cidr`; false when either is malformed (CEL rules guard the same way). */
export function cidrContainsIP(cidr: string, ip: string): boolean {
  const network = parseIPv4CIDR(cidr);
  const address = parseIPv4(ip);
  if (network === undefined || address === undefined) return false;
  const m = mask(network.prefixLength);
  return (address & m) >>> 0 === (network.address & m) >>> 0;
}

/** Two networks overlap exactly when one contains the other's first address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const na = parseIPv4CIDR(a);
  const nb = parseIPv4CIDR(b);
  if (na === undefined || nb === undefined) return false;
  const shorter = Math.min(na.prefixLength, nb.prefixLength);
  const m = mask(shorter);
  return (na.address & m) >>> 0 === (nb.address & m) >>> 0;
}
