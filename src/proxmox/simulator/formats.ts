// Named formats of Proxmox's JSON schema dialect (pve-common src/PVE/JSONSchema.pm and the qemu-server /
// pve-storage / pve-ha-manager registrations). A string validator throws the exact message Proxmox dies
// with (trailing "\n" included, as Perl's die leaves it in the error). Hash formats are property-string
// schemas checked by the generic parser in param-check.ts.

export type FormatValidator = (value: string) => void;
export type PropertySchema = Record<string, unknown>;

const IPV4 = "(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV6 = "(?:[0-9a-fA-F:]+:[0-9a-fA-F:.]*)";
const DNS_LABEL = "([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)";
const STORAGE_ID = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
/** pve-storage `parse_volume_id`: `<storage>:<volume name>`. */
const VOLUME_ID = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i;

function fail(message: string): never {
  throw new Error(`${message}\n`);
}

function matches(re: RegExp, message: string): FormatValidator {
  return (value) => {
    if (!re.test(value)) fail(message);
  };
}

function cidr(value: string, v4: boolean): boolean {
  const m = v4 ? new RegExp(`^${IPV4}/(\\d+)$`).exec(value) : new RegExp(`^${IPV6}/(\\d+)$`).exec(value);
  if (!m) return false;
  const bits = Number(m[1]);
  return bits > 7 && bits <= (v4 ? 32 : 128);
}

const isIp = (v: string) => new RegExp(`^(?:${IPV4}|${IPV6})$`).test(v);
const isDnsName = (v: string) => new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`).test(v);
const volumeId: FormatValidator = (value) => {
  if (!VOLUME_ID.test(value)) fail(`unable to parse volume ID '${value}'`);
};

export const STRING_FORMATS: Record<string, FormatValidator> = {
  "pve-node": matches(
    /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/,
    "value does not look like a valid node name",
  ),
  "pve-vmid": matches(/^[1-9][0-9]{2,8}$/, "value does not look like a valid VM ID"),
  "pve-storage-id": (v) => {
    if (!STORAGE_ID.test(v)) fail(`storage ID '${v}' contains illegal characters`);
  },
  "pve-configid": (v) => {
    if (!/^[a-z][a-z0-9_-]+$/i.test(v)) fail(`invalid configuration ID '${v}'`);
  },
  "pve-poolid": (v) => {
    if (!/^[A-Za-z0-9_\-/]+$/.test(v)) fail(`invalid pool ID '${v}'`);
  },
  urlencoded: (v) => {
    if (!/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v)) fail(`invalid urlencoded string: ${v}`);
  },
  "pve-bridge-id": (v) => {
    if (!/^[-_.\w\d]+$/.test(v)) fail(`invalid bridge ID '${v}'`);
  },
  "mac-addr": matches(
    /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i,
    "value does not look like a valid unicast MAC address",
  ),
  "dns-name": (v) => {
    if (!isDnsName(v)) fail("value does not look like a valid DNS name");
  },
  ip: (v) => {
    if (!isIp(v)) fail("value does not look like a valid IP address");
  },
  address: (v) => {
    if (!isIp(v) && !isDnsName(v)) fail(`value does not look like a valid address: ${v}`);
  },
  CIDR: (v) => {
    if (!cidr(v, true) && !cidr(v, false)) fail("value does not look like a valid CIDR network");
  },
  "pve-tag": (v) => {
    if (!/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(v)) fail("invalid characters in tag");
  },
  "pve-startup-order": (v) => {
    for (const part of v.split(",")) {
      if (/^\s*$/.test(part)) continue;
      if (!/^(order=)?\d+$/.test(part) && !/^(up|down)=\d+$/.test(part))
        fail("unable to parse startup options");
    }
  },
  "disk-size": (v) => {
    if (!/^\d+(\.\d+)?[KMGT]?$/.test(v)) fail(`value does not look like a valid disk size: ${v}`);
  },
  "pve-volume-id": volumeId,
  // qemu-server: a drive's file is a volume id, an absolute path, or the special values below.
  "pve-volume-id-or-qm-path": (v) => {
    if (v === "none" || v === "cdrom" || v.startsWith("/")) return;
    volumeId(v);
  },
  "pve-volume-id-or-absolute-path": (v) => {
    if (v.startsWith("/")) return;
    volumeId(v);
  },
  "pve-ha-resource-or-vm-id": (v) => {
    if (!/^((vm|ct):)?[1-9][0-9]{2,8}$/.test(v)) fail(`unable to parse service id '${v}'`);
  },
  "pve-ha-resource-id": (v) => {
    if (!/^(vm|ct):[1-9][0-9]{2,8}$/.test(v)) fail(`unable to parse service id '${v}'`);
  },
  "pve-ha-node": (v) => {
    if (!/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(:\d+)?$/.test(v)) fail(`unable to parse node '${v}'`);
  },
  "pve-storage-content": (v) => {
    if (!["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"].includes(v))
      fail(`invalid content type '${v}'`);
  },
  "pve-vmid-list-item": matches(/^[1-9][0-9]{2,8}$/, "value does not look like a valid VM ID"),
  "email-or-username": (v) => {
    if (!/^[^\s:/]+$/.test(v)) fail("value does not look like a valid email address or user name");
  },
  "pve-qm-bootdisk": matches(
    /^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/,
    "value does not look like a valid bootdisk name",
  ),
};

/** Formats registered with `-list` semantics under a different base name. */
export const LIST_ALIASES: Record<string, string> = {
  "pve-ha-resource-id-list": "pve-ha-resource-id",
  "pve-ha-node-list": "pve-ha-node",
  "pve-vmid-list": "pve-vmid-list-item",
  "address-list": "address",
};

/** Hash (property-string) formats registered by name rather than inlined in the API dump. */
export const HASH_FORMATS: Record<string, Record<string, PropertySchema>> = {
  // qemu-server src/PVE/QemuServer/Cloudinit.pm / QemuServer.pm `$ipconfig_fmt`
  "pve-qm-ipconfig": {
    ip: { type: "string", format: "pve-ipv4-config", optional: 1 },
    gw: { type: "string", format: "ip", optional: 1 },
    ip6: { type: "string", format: "pve-ipv6-config", optional: 1 },
    gw6: { type: "string", format: "ip", optional: 1 },
  },
  // PVE 9: a bare value is `legacy`, which only takes [acdn]{1,4}: "boot.legacy: value does not match
  // the regex pattern" is what clients sending "scsi0" see.
  "pve-qm-boot": {
    legacy: { type: "string", pattern: "[acdn]{1,4}", default_key: 1, optional: 1 },
    order: { type: "string", format: "pve-qm-bootdev-list", optional: 1 },
  },
};

STRING_FORMATS["pve-ipv4-config"] = (v) => {
  if (!/^(dhcp|manual)$/.test(v) && !cidr(v, true))
    fail("value does not look like a valid ipv4 network configuration");
};
STRING_FORMATS["pve-ipv6-config"] = (v) => {
  if (!/^(auto|dhcp|manual)$/.test(v) && !cidr(v, false))
    fail("value does not look like a valid ipv6 network configuration");
};
STRING_FORMATS["pve-qm-bootdev"] = (v) => {
  if (!/^(ide|sata|scsi|virtio|net|hostpci|usb)\d+$/.test(v)) fail(`invalid boot device '${v}'`);
};

/** PVE::Tools::split_list: separators are commas, semicolons, NULs and whitespace. */
export function splitList(value: string): string[] {
  return value.split(/[,;\0\s]+/).filter((s) => s.length > 0);
}
