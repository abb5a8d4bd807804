// Field builders shared by the four kinds. Each one bounds its size (maxLength / maxItems /
// maxProperties): the apiserver estimates the worst-case cost of every CEL rule from those bounds and
// refuses a CRD whose rules could exceed its budget.
import * as z from "zod";
import { cidrContainsIP, isIPv4, isIPv4NetworkCIDR } from "./ipv4.ts";
import { celRegex, withRules } from "./rules.ts";

/** A string of at most `max` characters that must match `re`; the failure message is the user's hint. */
export function matching(re: RegExp, max: number, message: string) {
  return withRules(z.string().max(max), [
    { rule: `self.matches(${celRegex(re)})`, message, check: (v) => re.test(v) },
  ]);
}

export function text(max: number) {
  return z.string().max(max);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An RFC 1123 label: what Kubernetes accepts as a namespace, Service or container name. */
export function dnsLabel() {
  return matching(
    DNS_LABEL,
    63,
    "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  );
}

/** A lowercase DNS name such as portfolio.apps.home.shdr.ch. */
export function hostname() {
  return matching(DNS_NAME, 253, "must be a lowercase DNS name such as portfolio.apps.home.shdr.ch");
}

/** A release version vMAJOR.MINOR.PATCH, the form Talos and Kubernetes publish. */
export function releaseVersion(example: string) {
  return matching(/^v[0-9]+\.[0-9]+\.[0-9]+$/, 32, `must be a version like ${example}`);
}

/** A Go duration as the operator parses it (time.ParseDuration without signs or fractions of units). */
export function duration(example: string) {
  return matching(/^([0-9]+(ns|us|ms|s|m|h))+$/, 32, `must be a duration such as ${example}`);
}

export function ipv4Address(example = "10.0.3.16") {
  return withRules(z.string().max(15), [
    {
      rule: "isIP(self) && ip(self).family() == 4",
      message: `must be an IPv4 address such as ${example}`,
      check: isIPv4,
    },
  ]);
}

export function ipv4Network(example: string) {
  return withRules(z.string().max(18), [
    {
      rule: "isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self) == cidr(self).masked()",
      message: `must be an IPv4 network in CIDR notation without host bits, such as ${example}`,
      check: isIPv4NetworkCIDR,
    },
  ]);
}

/** CEL guard for cross-field IP rules: a malformed field already has its own error, so skip it here. */
export function ipInside(cidrExpr: string, ipExpr: string): string {
  return `!isCIDR(${cidrExpr}) || !isIP(${ipExpr}) || cidr(${cidrExpr}).containsIP(${ipExpr})`;
}

export function ipInsideCheck(cidr: string, ip: string): boolean {
  return !isIPv4NetworkCIDR(cidr) || !isIPv4(ip) || cidrContainsIP(cidr, ip);
}

export function url(schemes: readonly string[], example: string) {
  const celSchemes = schemes.map((s) => `'${s}'`).join(", ");
  return withRules(z.string().max(2048), [
    {
      rule: `isURL(self) && url(self).getScheme() in [${celSchemes}] && url(self).getHostname() != ''`,
      message: `must be an absolute ${schemes.join(" or ")} URL such as ${example}`,
      check: (v) => {
        if (!URL.canParse(v)) return false;
        const parsed = new URL(v);
        return schemes.includes(parsed.protocol.slice(0, -1)) && parsed.hostname !== "";
      },
    },
  ]);
}

// Kubernetes' own pattern for resource.Quantity (as generated into core CRDs by controller-gen).
export const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

/** A resource.Quantity ("4Gi", "500m", 20): integer or string, as ResourceQuota and LimitRange take it. */
export function quantity() {
  return z
    .union([
      z.number().int().min(0),
      z.string().max(64).regex(QUANTITY_PATTERN, "must be a quantity such as 4Gi"),
    ])
    .meta({ "x-kubernetes-int-or-string": true });
}

const RESOURCE_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** A map of resource name (requests.memory, pods, cpu, ...) to quantity, as in ResourceQuota.spec.hard. */
export function resourceList(max = 32) {
  const bounded = z
    .record(z.string().max(253), quantity())
    .refine((m) => Object.keys(m).length <= max, { message: `must have at most ${max} entries` })
    .meta({ maxProperties: max });
  return withRules(bounded, [
    {
      rule: `self.all(k, k.matches(${celRegex(RESOURCE_NAME)}))`,
      message: "resource names look like requests.memory, limits.cpu or pods",
      check: (m) => Object.keys(m).every((k) => RESOURCE_NAME.test(k)),
    },
  ]);
}

/** Free-form YAML kept as written (Helm values, patches): the apiserver neither prunes nor checks it. */
export function freeForm() {
  return z.record(z.string(), z.unknown()).meta({ "x-kubernetes-preserve-unknown-fields": true });
}

/** A list of scalars where each value appears once (SSA merges it as a set). */
export function setOf<T extends z.ZodType>(item: T, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .refine((items) => new Set(items).size === items.length, { message: "values must be unique" })
    .meta({ "x-kubernetes-list-type": "set" });
}

/** A list of objects keyed by `key` (SSA merges entries by key; the apiserver rejects duplicate keys). */
export function mapListOf<T extends z.ZodObject>(item: T, key: keyof z.output<T> & string, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((items, ctx) => {
      const seen = new Set<unknown>();
      items.forEach((entry, index) => {
        const value = (entry as Record<string, unknown>)[key];
        if (seen.has(value)) {
          ctx.addIssue({
            code: "custom",
            message: `duplicate ${key} ${String(value)}`,
            path: [index, key],
            input: value,
          });
        }
        seen.add(value);
      });
    })
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key] });
}

export function secretRef(description: string) {
  return z
    .object({
      name: dnsLabel().describe("Name of the Secret."),
      namespace: dnsLabel().describe("Namespace of the Secret."),
    })
    .describe(description);
}

/** A Secret in the object's own namespace: namespaced kinds never reach across namespaces. */
export function localSecretKeyRef(description: string, defaultKey?: string) {
  const key = matching(/^[-._a-zA-Z0-9]+$/, 253, "must be a Secret key: letters, digits, '-', '_' or '.'");
  return z
    .object({
      name: dnsLabel().describe("Name of the Secret in this object's namespace."),
      key:
        defaultKey === undefined
          ? key.describe("Key inside the Secret.")
          : key.default(defaultKey).describe(`Key inside the Secret (default ${defaultKey}).`),
    })
    .describe(description);
}

export function deletionPolicy(what: string) {
  return z
    .enum(["Retain", "Delete"])
    .default("Retain")
    .describe(
      `What happens to ${what} when this object is deleted: Retain (default) leaves them in place, Delete removes them.`,
    );
}
