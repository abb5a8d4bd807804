// The simulated Proxmox VE cluster: nodes, storages and their volumes, QEMU VMs with locks and a
// stopped/running state machine, HA resources and rules, and the tasks that change them. Error texts
// are Proxmox's own (qemu-server, pve-guest-common, pve-storage, pve-ha-manager), because clients
// (ours and others) match on them.
import { createHash, randomUUID } from "node:crypto";
import { LXC_CONFIG_PROPERTIES, QEMU_CONFIG_PROPERTIES } from "./api-schema.ts";
import { die, paramError } from "./failure.ts";
import type { Faults } from "./faults.ts";
import { splitList } from "./formats.ts";
import { normalizeSid, SimHa, sidOf } from "./ha.ts";
import { propertyFor } from "./param-check.ts";
import type { TaskRunner } from "./tasks.ts";

export interface StorageSpec {
  storage: string;
  type: "dir" | "lvmthin" | "nfs" | "rbd" | "cephfs" | "pbs";
  content: string[];
  shared: boolean;
  /** Capacity in bytes. */
  total: number;
  /** `disable` in storage.cfg: the storage exists but nothing may use it. */
  disabled?: boolean;
}

/** Storages with a path (pve-storage plugins that set `path`): the only ones download-url can write to. */
export function isFileBased(s: StorageSpec): boolean {
  return s.type === "dir" || s.type === "nfs" || s.type === "cephfs";
}

/** Where a file-based storage's files live: `local` is /var/lib/vz, network storages are mounted under /mnt/pve. */
function storagePath(s: StorageSpec): string {
  return s.type === "dir" && s.storage === "local" ? "/var/lib/vz" : `/mnt/pve/${s.storage}`;
}

const CONTENT_DIR: Record<string, string> = {
  iso: "template/iso",
  vztmpl: "template/cache",
  import: "import",
};

/** PVE::Storage parse_volname's vtype, read from the volume name as Proxmox does. */
export function volumeType(volid: string): string {
  const name = volid.slice(volid.indexOf(":") + 1);
  const m = /^(iso|vztmpl|import|backup|snippets)\//.exec(name);
  return m ? m[1]! : "images";
}

export interface Volume {
  volid: string;
  content: string;
  format: string;
  size: number;
  vmid?: number;
  ctime: number;
  notes?: string;
  /** Hex digests of a downloaded file by algorithm (not part of Proxmox's listing; kept for re-downloads). */
  digests?: Record<string, string>;
}

/** What the simulator writes down for tests that count what happened (h-cluster's crash test). */
export interface SimRecord {
  kind: "vm-create" | "vm-delete" | "download" | "power" | "backup";
  node: string;
  /** The task the request started; its outcome is looked up when records are read. */
  upid: string;
  at: number;
  vmid?: number;
  action?: string;
  url?: string;
  volid?: string;
}

export interface Vm {
  vmid: number;
  /** qemu (a VM) or lxc (a container); absent in states saved before containers existed: qemu. */
  type?: GuestType;
  node: string;
  config: Record<string, string>;
  status: "running" | "stopped";
  lock?: string;
  startedAt?: number;
}

export type GuestType = "qemu" | "lxc";
export const guestType = (vm: Vm): GuestType => vm.type ?? "qemu";

export interface ClusterOptions {
  nodes: string[];
  storages: StorageSpec[];
  /** Bytes of a downloaded file whose URL the simulator cannot fetch (not loopback). */
  offlineDownloadSize: number;
  /** How long a node stays down before its HA-managed VMs are recovered elsewhere. */
  haRecoveryMs: number;
  /** Source of generated MAC addresses and UUID-free randomness. */
  random: () => number;
}

const GiB = 1024 ** 3;
/** The MAC prefix Proxmox VE uses when datacenter.cfg sets none (Proxmox Server Solutions' OUI). */
export const PROXMOX_MAC_PREFIX = "BC:24:11";
const NET_MODELS = [
  "e1000",
  "e1000-82540em",
  "e1000-82544gc",
  "e1000-82545em",
  "e1000e",
  "i82551",
  "i82557b",
  "i82559er",
  "ne2k_isa",
  "ne2k_pci",
  "pcnet",
  "rtl8139",
  "virtio",
  "vmxnet3",
];
const DISK_KEY = /^(ide|sata|scsi|virtio)\d+$|^efidisk0$|^tpmstate0$/;

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(text);
  if (!m) return Number.NaN;
  const unit = { K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 }[m[2] ?? ""] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ["T", 1024 ** 4],
    ["G", GiB],
    ["M", 1024 ** 2],
    ["K", 1024],
  ] as const) {
    if (bytes % size === 0 && bytes >= size) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** Splits a drive value `<file>,key=value,...` into its file and options. */
function splitDrive(value: string): { file: string; opts: Record<string, string> } {
  const [file = "", ...rest] = value.split(",");
  const opts: Record<string, string> = {};
  for (const part of rest) {
    const i = part.indexOf("=");
    if (i > 0) opts[part.slice(0, i)] = part.slice(i + 1);
  }
  const fileKv = /^file=(.*)$/.exec(file);
  return { file: fileKv ? fileKv[1]! : file, opts };
}

const joinDrive = (file: string, opts: Record<string, string>) =>
  [file, ...Object.entries(opts).map(([k, v]) => `${k}=${v}`)].join(",");

/** PVE::Tools random_ether_addr: the prefix, then random bytes, upper-case hex. */
export function randomMac(random: () => number, prefix = PROXMOX_MAC_PREFIX): string {
  const parts = prefix.split(":");
  while (parts.length < 6)
    parts.push(
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, "0")
        .toUpperCase(),
    );
  return parts.join(":");
}

/**
 * qemu-server parse_net + print_net on create: the model key carries the MAC (`virtio=BC:24:11:…`), a
 * missing MAC is generated, the other keys follow in alphabetical order.
 */
export function normalizeNet(value: string, random: () => number): string {
  let model: string | undefined;
  let mac: string | undefined;
  const rest: [string, string][] = [];
  for (const part of value.split(",")) {
    const i = part.indexOf("=");
    const key = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? undefined : part.slice(i + 1);
    if (NET_MODELS.includes(key)) {
      model = key;
      if (v) mac = v;
    } else if (key === "model" && v) model = v;
    else if (key === "macaddr" && v) mac = v;
    else if (v !== undefined) rest.push([key, v]);
  }
  if (!model) return value;
  const sorted = rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
  return [`${model}=${mac ?? randomMac(random)}`, ...sorted].join(",");
}

export class SimCluster {
  readonly nodes: string[];
  readonly storages: StorageSpec[];
  readonly vms = new Map<number, Vm>();
  /** Volumes by storage key: `<storage>` when shared, `<node>/<storage>` otherwise. */
  readonly volumes = new Map<string, Volume[]>();
  readonly ha: SimHa;
  /** VM creates/deletes, downloads and power requests, in order (see SimRecord). */
  readonly records: SimRecord[] = [];
  private readonly fencing = new Set<string>();
  readonly tasks: TaskRunner;
  private readonly faults: Faults;
  readonly options: ClusterOptions;

  constructor(options: ClusterOptions, tasks: TaskRunner, faults: Faults) {
    this.options = options;
    this.nodes = options.nodes;
    this.storages = options.storages;
    this.tasks = tasks;
    this.faults = faults;
    this.ha = new SimHa(options.nodes, (vmid) => {
      const vm = this.vms.get(vmid);
      return vm && guestType(vm);
    });
  }

  // ---------- lookups ----------

  assertNode(node: string): void {
    if (!this.nodes.includes(node))
      die(
        `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`,
      );
  }

  storage(node: string, storeid: string): StorageSpec {
    const s = this.storages.find((x) => x.storage === storeid);
    if (!s) die(`storage '${storeid}' does not exist`);
    this.assertNode(node);
    return s!;
  }

  /** PVE::Storage storage_check_enabled. */
  enabledStorage(node: string, storeid: string): StorageSpec {
    const s = this.storage(node, storeid);
    if (s.disabled) die(`storage '${storeid}' is disabled`);
    return s;
  }

  private storageKey(node: string, s: StorageSpec): string {
    return s.shared ? s.storage : `${node}/${s.storage}`;
  }

  volumesOf(node: string, storeid: string): Volume[] {
    const s = this.storage(node, storeid);
    const key = this.storageKey(node, s);
    let list = this.volumes.get(key);
    if (!list) {
      list = [];
      this.volumes.set(key, list);
    }
    return list;
  }

  findVolume(node: string, volid: string): Volume | undefined {
    const storeid = volid.split(":")[0]!;
    if (!this.storages.some((s) => s.storage === storeid)) return undefined;
    return this.volumesOf(node, storeid).find((v) => v.volid === volid);
  }

  /**
   * pve-guest-common AbstractConfig load_config: a VM lives in its node's qemu-server directory, so a
   * container's id (its config is under lxc/) is as absent to the qemu endpoints as an unused one.
   */
  vm(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node || guestType(vm) !== "qemu")
      die(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    return vm!;
  }

  /** The same for a container (pve-container's config directory is nodes/<node>/lxc/). */
  ct(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node || guestType(vm) !== "lxc")
      die(`Configuration file 'nodes/${node}/lxc/${vmid}.conf' does not exist`);
    return vm!;
  }

  /** A guest of either type on `node` (vzdump takes both); absent ones get qemu-server's message. */
  guest(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    return vm && vm.node === node && guestType(vm) === "lxc" ? vm : this.vm(node, vmid);
  }

  /** AbstractConfig check_lock: "VM is locked (…)" or, for a container, "CT is locked (…)". */
  checkLock(vm: Vm, skiplock = false): void {
    if (vm.lock && !skiplock) die(`${guestType(vm) === "lxc" ? "CT" : "VM"} is locked (${vm.lock})`);
  }

  digest(vm: Vm): string {
    const text = Object.entries(vm.config)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}: ${v}\n`)
      .join("");
    return createHash("sha1").update(text).digest("hex");
  }

  usedVmids(): Set<number> {
    return new Set(this.vms.keys());
  }

  nextId(vmid?: number): string {
    const used = this.usedVmids();
    if (vmid !== undefined) {
      if (used.has(vmid)) paramError({ vmid: `VM ${vmid} already exists` });
      return String(vmid);
    }
    for (let id = 100; id < 1_000_000; id++) if (!used.has(id)) return String(id);
    return die("unable to get any free VMID in range [100, 999999]");
  }

  // ---------- disks ----------

  nextDiskName(vmid: number, storeVolumes: Volume[], suffix: string): string {
    for (let i = 0; ; i++) {
      const name = `vm-${vmid}-disk-${i}${suffix}`;
      if (!storeVolumes.some((v) => v.volid.endsWith(name))) return name;
    }
  }

  /** qemu-server create_disks: `<storage>:<GiB>`, `<storage>:0,import-from=<volid>`, `<storage>:cloudinit`. */
  private allocateDrive(vm: Vm, key: string, value: string, log: (l: string) => void): string {
    const { file, opts } = splitDrive(value);
    if (file === "none" || file === "cdrom" || file.startsWith("/")) return value;
    const m = /^([^:]+):(.+)$/.exec(file);
    if (!m) return value;
    const [, storeid, rest] = m as unknown as [string, string, string];
    if (opts["media"] === "cdrom" && rest !== "cloudinit") {
      if (!this.findVolume(vm.node, file)) die(`volume '${file}' does not exist`);
      return value;
    }
    const newSize = /^\d+(\.\d+)?$/.test(rest) ? rest : undefined;
    if (rest !== "cloudinit" && newSize === undefined) {
      const existing = this.findVolume(vm.node, file);
      if (!existing) die(`volume '${file}' does not exist`);
      return value;
    }
    const store = this.enabledStorage(vm.node, storeid);
    if (!store.content.includes("images")) die(`storage '${storeid}' does not support vm images`);
    const list = this.volumesOf(vm.node, storeid);
    const fileBased = isFileBased(store);
    let size = Math.round(Number(newSize ?? 0) * GiB);
    let name: string;
    if (rest === "cloudinit") {
      name = `vm-${vm.vmid}-cloudinit${fileBased ? ".qcow2" : ""}`;
      size = 4 * 1024 ** 2;
      opts["media"] = "cdrom";
    } else {
      const source = opts["import-from"];
      if (source !== undefined) {
        // Qemu.pm import_from_volid: the source's size is read first.
        const src = this.findVolume(vm.node, source);
        if (!src) die(`could not get size of ${source}`);
        size = src!.size;
        log(`importing disk '${source}' to VM ${vm.vmid} ...`);
        delete opts["import-from"];
      }
      name = this.nextDiskName(vm.vmid, list, fileBased ? ".qcow2" : "");
      opts["size"] = formatSize(size);
    }
    const volid = fileBased ? `${storeid}:${vm.vmid}/${name}` : `${storeid}:${name}`;
    list.push({
      volid,
      content: "images",
      format: fileBased ? "qcow2" : "raw",
      size,
      vmid: vm.vmid,
      ctime: Math.floor(Date.now() / 1000),
    });
    log(`${key}: successfully created disk '${volid},${formatSize(size)}'`);
    return joinDrive(volid, opts);
  }

  removeVolume(node: string, volid: string): void {
    const storeid = volid.split(":")[0]!;
    if (!this.storages.some((s) => s.storage === storeid)) return;
    const list = this.volumesOf(node, storeid);
    const i = list.findIndex((v) => v.volid === volid);
    if (i >= 0) list.splice(i, 1);
  }

  ownedVolumes(vm: Vm): string[] {
    return Object.entries(vm.config)
      .filter(([k]) => DISK_KEY.test(k) || /^(unused\d+|rootfs|mp\d+)$/.test(k))
      .map(([, v]) => splitDrive(v).file)
      .filter((f) => this.findVolume(vm.node, f)?.vmid === vm.vmid);
  }

  /**
   * Qemu.pm check_drive_param + check_storage_access, which run before any task: `import-from` needs
   * `<storage>:0`, its source must be an `images` or `import` volume (by name: an ISO is refused), and a
   * new disk's storage must allow vm images.
   */
  checkDrives(node: string, params: Record<string, string>): void {
    for (const [key, value] of Object.entries(params)) {
      if (!DISK_KEY.test(key)) continue;
      const { file, opts } = splitDrive(value);
      const source = opts["import-from"];
      const m = /^([^:/]+):(\d+(?:\.\d+)?)$/.exec(file);
      if (source !== undefined) {
        if (!m || Number(m[2]) !== 0)
          paramError({
            [key]: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
          });
        const vtype = volumeType(source);
        if (!source.includes(":") || (vtype !== "images" && vtype !== "import"))
          paramError({ [key]: `${source} has wrong type '${vtype}' - needs to be 'images' or 'import'` });
      }
      // An existing volume (not a new disk, not the cloud-init drive) must be a disk image or an ISO,
      // and an ISO needs media=cdrom.
      if (!m && file.includes(":") && !/^[^:]+:cloudinit$/.test(file) && !file.startsWith("/")) {
        const vtype = volumeType(file);
        if (vtype === "iso" && opts["media"] !== "cdrom")
          paramError({ [key]: "explicit 'media=cdrom' is required for iso images" });
        if (vtype !== "images" && vtype !== "iso")
          paramError({ [key]: "content type needs to be 'images' or 'iso'" });
      }
      if (m && opts["media"] !== "cdrom") {
        const store = this.storage(node, m[1]!);
        if (!store.content.includes("images"))
          paramError({ storage: `storage '${m[1]}' does not support vm images` });
      }
    }
  }

  /** Generated on create, as create_vm does: MACs for NICs without one, smbios1 uuid, vmgenid, meta. */
  private fillGenerated(config: Record<string, string>): void {
    for (const key of Object.keys(config)) {
      if (/^net\d+$/.test(key)) config[key] = normalizeNet(config[key]!, this.options.random);
    }
    // Only an absent smbios1 gets one ("auto generate uuid if user did not specify smbios1 option").
    config["smbios1"] ??= `uuid=${randomUUID()}`;
    if (config["vmgenid"] === undefined || config["vmgenid"] === "1") config["vmgenid"] = randomUUID();
    config["meta"] = `creation-qemu=10.1.2,ctime=${Math.floor(Date.now() / 1000)}`;
  }

  // ---------- VM lifecycle ----------

  createVm(node: string, params: Record<string, string>, user: string): string {
    this.assertNode(node);
    const vmid = Number(params["vmid"]);
    const existing = this.vms.get(vmid);
    // Cluster.pm check_vmid_unused names the kind of guest holding the id.
    if (existing)
      die(
        `unable to create VM ${vmid} - ${guestType(existing) === "lxc" ? "CT" : "VM"} ${vmid} already exists on node '${existing.node}'`,
      );
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (
        ["node", "vmid", "start", "storage", "pool", "ha-managed", "unique", "force", "archive"].includes(k)
      )
        continue;
      config[k] = v;
    }
    this.checkDrives(node, params);
    this.fillGenerated(config);
    const vm: Vm = { vmid, node, config, status: "stopped", lock: "create" };
    this.vms.set(vmid, vm);
    const start = params["start"] === "1";
    const haManaged = params["ha-managed"] === "1";
    return this.record(
      "vm-create",
      node,
      { vmid },
      this.tasks.start(node, "qmcreate", String(vmid), user, {
        finish: (log) => {
          try {
            for (const key of Object.keys(config)) {
              if (DISK_KEY.test(key)) config[key] = this.allocateDrive(vm, key, config[key]!, log);
            }
          } catch (err) {
            for (const volid of this.ownedVolumes(vm)) this.removeVolume(node, volid);
            this.vms.delete(vmid);
            throw new Error(`unable to create VM ${vmid} - ${(err as Error).message}`);
          }
          if (haManaged) this.ha.add({ sid: `vm:${vmid}`, state: start ? "started" : "stopped" });
          if (start) this.powerOn(vm);
        },
        cleanup: () => {
          if (vm.lock === "create") delete vm.lock;
        },
      }),
    );
  }

  record(kind: SimRecord["kind"], node: string, extra: Partial<SimRecord>, upid: string): string {
    this.records.push({ kind, node, upid, at: Date.now(), ...extra });
    return upid;
  }

  powerOn(vm: Vm): void {
    vm.status = "running";
    vm.startedAt = Date.now();
  }

  /** PUT (sync) and POST (async) config: set keys, `delete` a list, guarded by `digest` and the lock. */
  updateConfig(
    node: string,
    vmid: number,
    params: Record<string, string>,
    user: string,
    async: boolean,
  ): string | null {
    const vm = this.vm(node, vmid);
    this.checkLock(vm, params["skiplock"] === "1");
    if (params["digest"] && params["digest"] !== this.digest(vm))
      die("detected modified configuration - file changed by other user? Try again.");
    const toDelete = splitList(params["delete"] ?? "");
    const changes = Object.entries(params).filter(
      ([k]) => !["node", "vmid", "digest", "delete", "skiplock", "revert", "background_delay"].includes(k),
    );
    for (const key of toDelete) {
      if (changes.some(([k]) => k === key))
        paramError({ delete: `cannot set and delete '${key}' at the same time` });
    }
    this.checkDrives(node, Object.fromEntries(changes));
    for (const change of changes) {
      if (/^net\d+$/.test(change[0])) change[1] = normalizeNet(change[1], this.options.random);
    }
    const apply = (log: (l: string) => void) => {
      for (const key of toDelete) {
        const old = vm.config[key];
        if (old !== undefined && DISK_KEY.test(key) && this.ownedVolumes(vm).includes(splitDrive(old).file)) {
          vm.config[this.freeUnusedKey(vm)] = splitDrive(old).file;
        }
        delete vm.config[key];
      }
      for (const [key, value] of changes) {
        vm.config[key] =
          DISK_KEY.test(key) && !vm.config[key] ? this.allocateDrive(vm, key, value, log) : value;
        log(`update VM ${vmid}: -${key} ${value}`);
      }
    };
    if (!async) {
      apply(() => {});
      return null;
    }
    return this.tasks.start(node, "qmconfig", String(vmid), user, { finish: apply });
  }

  private freeUnusedKey(vm: Vm): string {
    for (let i = 0; ; i++) if (vm.config[`unused${i}`] === undefined) return `unused${i}`;
  }

  resize(node: string, vmid: number, disk: string, size: string, user: string): string {
    const vm = this.vm(node, vmid);
    this.checkLock(vm);
    const value = vm.config[disk];
    if (!value) die(`disk '${disk}' does not exist`);
    const { file, opts } = splitDrive(value!);
    const volume = this.findVolume(node, file);
    if (!volume) die(`disk '${disk}' does not exist`);
    const relative = size.startsWith("+");
    const amount = parseSize(relative ? size.slice(1) : size);
    const target = relative ? volume!.size + amount : amount;
    if (target < volume!.size) die("shrinking disks is not supported");
    return this.tasks.start(node, "resize", String(vmid), user, {
      finish: (log) => {
        volume!.size = target;
        opts["size"] = formatSize(target);
        vm.config[disk] = joinDrive(file, opts);
        log(`Image resized to ${formatSize(target)}.`);
      },
    });
  }

  /**
   * Power requests with qemu-server's split between the API call and its worker (API2/Qemu.pm vm_start,
   * vm_stop, vm_shutdown, vm_reboot; QemuServer.pm vm_start, _do_vm_stop, vm_reboot):
   * - start: nothing is checked up front; the qmstart task fails on a missing config, a lock or
   *   "VM <id> already running".
   * - stop / shutdown: nothing is checked up front; a VM that is not running makes the task a no-op
   *   that ends OK (even when locked); a running, locked VM fails it with "VM is locked (<lock>)".
   * - reboot: a missing or stopped VM is refused up front (500); a lock fails the qmreboot task.
   * - HA-managed guests: start/stop/shutdown become hastart/hastop requests to the HA manager.
   * - skiplock is root@pam only; a token is never root@pam.
   */
  power(
    node: string,
    vmid: number,
    action: "start" | "stop" | "shutdown" | "reboot",
    user: string,
    skiplock: boolean,
  ): string {
    this.assertNode(node);
    if (skiplock) paramError({ skiplock: "Only root may use this option." });
    const find = () => {
      const vm = this.vms.get(vmid);
      return vm && vm.node === node && guestType(vm) === "qemu" ? vm : undefined;
    };
    const missing = `unable to find configuration file for VM ${vmid} on node '${node}'`;
    if (action === "reboot") {
      const vm = find();
      if (!vm) die(missing);
      if (vm!.status !== "running") die(`VM ${vmid} not running`);
    }
    const ha = this.ha.resources.get(`vm:${vmid}`);
    if (ha && action !== "reboot") {
      const type = action === "start" ? "hastart" : "hastop";
      ha.state = action === "start" ? "started" : "stopped";
      return this.record(
        "power",
        node,
        { vmid, action },
        this.tasks.start(node, type, String(vmid), user, {
          start: (log) => log(`Requesting HA ${action === "start" ? "start" : "stop"} for VM ${vmid}`),
          finish: () => {
            const vm = find();
            if (!vm) return;
            if (action === "start") this.powerOn(vm);
            else this.powerOff(vm);
          },
        }),
      );
    }
    const type = { start: "qmstart", stop: "qmstop", shutdown: "qmshutdown", reboot: "qmreboot" }[action];
    // Checked when the worker runs (at its start and again when it finishes: a concurrent request may
    // have changed the VM in between, as the config flock serialises them in Proxmox).
    const check = (): Vm | undefined => {
      const vm = find();
      if (action === "start") {
        if (!vm)
          throw new Error(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
        if (vm.lock) throw new Error(`VM is locked (${vm.lock})`);
        if (vm.status === "running") throw new Error(`VM ${vmid} already running`);
        return vm;
      }
      if (!vm) throw new Error(missing);
      if (vm.status !== "running") return undefined;
      if (vm.lock) throw new Error(`VM is locked (${vm.lock})`);
      return vm;
    };
    return this.record(
      "power",
      node,
      { vmid, action },
      this.tasks.start(node, type, String(vmid), user, {
        start: () => void check(),
        finish: (log) => {
          const vm = check();
          if (!vm) return;
          if (action === "start") {
            log("generating cloud-init ISO");
            this.powerOn(vm);
          } else if (action === "reboot") vm.startedAt = Date.now();
          else this.powerOff(vm);
        },
      }),
    );
  }

  powerOff(vm: Vm): void {
    vm.status = "stopped";
    delete vm.startedAt;
  }

  destroy(node: string, vmid: number, params: Record<string, string>, user: string): string {
    const vm = this.vm(node, vmid);
    this.checkLock(vm, params["skiplock"] === "1");
    if (vm.status === "running") die(`VM ${vmid} is running - destroy failed`);
    const sid = `vm:${vmid}`;
    const purge = params["purge"] === "1";
    if (this.ha.resources.has(sid) && !purge)
      die(`unable to remove VM ${vmid} - used in HA resources and purge parameter not set.`);
    vm.lock = "destroyed";
    return this.record(
      "vm-delete",
      node,
      { vmid },
      this.tasks.start(node, "qmdestroy", String(vmid), user, {
        finish: (log) => {
          for (const volid of this.ownedVolumes(vm)) {
            this.removeVolume(node, volid);
            log(`Removing image: 100% complete...done. (${volid})`);
          }
          if (params["destroy-unreferenced-disks"] === "1") {
            for (const s of this.storages) {
              const list = this.volumesOf(node, s.storage);
              for (const v of list.filter((x) => x.vmid === vmid && x.content === "images")) {
                this.removeVolume(node, v.volid);
                log(`Removing unreferenced volume '${v.volid}'`);
              }
            }
          }
          if (purge) {
            this.ha.resources.delete(sid);
            this.ha.removeFromRules(sid);
            log(`purging VM ${vmid} from related configurations..`);
          }
          this.vms.delete(vmid);
        },
        cleanup: () => {
          if (this.vms.has(vmid) && vm.lock === "destroyed") delete vm.lock;
        },
      }),
    );
  }

  /** Removes a VM and the disks it owns, as create_vm's error path does. */
  discardVm(vmid: number): void {
    const vm = this.vms.get(vmid);
    if (!vm) return;
    for (const volid of this.ownedVolumes(vm)) this.removeVolume(vm.node, volid);
    this.vms.delete(vmid);
  }

  agentPing(node: string, vmid: number): Record<string, never> {
    const vm = this.vm(node, vmid);
    if (vm.status !== "running") die(`VM ${vmid} is not running`);
    if (!/^(1|enabled=1)/.test(vm.config["agent"] ?? "0")) die("No QEMU guest agent configured");
    if (this.faults.agentDown(vmid)) die("QEMU guest agent is not running");
    return {};
  }

  // ---------- storage ----------

  /**
   * pve-storage API2/Storage/Status.pm download_url and PVE::Tools download_file_from_url. Refused up
   * front: a disabled or non-file storage, a content type the storage is not configured for, a file name
   * with the wrong extension (import: .ova/.qcow2/.raw/.vmdk only). In the `download` task: compression
   * for anything but iso, an existing file (kept when its checksum matches, else refused), a failed
   * fetch and a checksum mismatch.
   */
  download(
    node: string,
    storeid: string,
    params: Record<string, string>,
    user: string,
    fetchFile: FetchFile,
  ): string {
    const store = this.enabledStorage(node, storeid);
    const content = params["content"]!;
    if (!isFileBased(store)) die(`can't upload to storage type '${store.type}', not a file based storage!`);
    if (!store.content.includes(content))
      die(`storage '${storeid}' is not configured for content-type '${content}'`);
    // Storage.pm normalize_content_filename: the path goes, unsafe characters become '_'.
    const filename = params["filename"]!.trimEnd()
      .replace(/^.*[/\\]/, "")
      .replace(/[^a-zA-Z0-9_.-]/g, "_");
    const compression = params["compression"];
    // The schema's enum is filled at runtime from Plugin.pm's KNOWN_COMPRESSION_FORMATS.
    if (compression !== undefined && !KNOWN_COMPRESSION_FORMATS.includes(compression))
      paramError({
        compression: `value '${compression}' does not have a value in the enumeration '${KNOWN_COMPRESSION_FORMATS.join(", ")}'`,
      });
    if (content === "iso" && !/^[^/]+\.(iso|img)$/i.test(filename))
      paramError({ filename: "wrong file extension" });
    if (content === "vztmpl" && !/^[^/]+\.tar\.(gz|xz|zst|bz2)$/i.test(filename))
      paramError({ filename: "wrong file extension" });
    if (content === "import" && !/^[^\s/]+\.(ova|qcow2|raw|vmdk)$/.test(filename))
      paramError({ filename: "invalid filename or wrong extension" });
    const volid = `${storeid}:${content}/${filename}`;
    const dest = `${storagePath(store)}/${CONTENT_DIR[content]}/${filename}`;
    const algorithm = params["checksum-algorithm"];
    const expected = params["checksum"];
    const url = params["url"]!;
    const upid = this.tasks.start(node, "download", filename, user, {
      finish: async (log) => {
        if (compression !== undefined && content !== "iso")
          throw new Error(`decompression not supported for ${content}`);
        log(`downloading ${url} to ${dest}`);
        const existing = this.findVolume(node, volid);
        if (existing) {
          if (!algorithm || !expected) throw new Error(`refusing to override existing file '${dest}'`);
          const got = existing.digests?.[algorithm] ?? "";
          if (got !== expected.toLowerCase())
            throw new Error(`checksum mismatch: got '${got}' != expect '${expected}', aborting`);
          log("calculating checksum of existing file...OK, got correct file already, no need to download");
          return;
        }
        const file = await fetchFile(url, params["verify-certificates"] !== "0");
        if (algorithm && expected) {
          const got = file.digests[algorithm] ?? "";
          if (got !== expected.toLowerCase())
            throw new Error(`checksum mismatch: got '${got}' != expect '${expected}'`);
          log("calculating checksum...OK, checksum verified");
        }
        if (compression) log(`decompressing ${filename}.${compression} to ${filename}`);
        this.volumesOf(node, storeid).push({
          volid,
          content,
          // Plugin.pm get_subdir_files: iso, `t<compression>` for templates, the extension for imports.
          format:
            content === "iso"
              ? "iso"
              : content === "vztmpl"
                ? `t${/\.tar\.(\w+)$/i.exec(filename)?.[1] ?? "tar"}`
                : (/\.(\w+)$/.exec(filename)?.[1] ?? "raw"),
          size: file.size,
          ctime: Math.floor(Date.now() / 1000),
          digests: file.digests,
        });
        log(`download of '${url}' to '${dest}' finished`);
      },
    });
    return this.record("download", node, { url, volid }, upid);
  }

  /** DELETE storage content: only a VM's own disks are refused while referenced (vdisk_free). */
  deleteVolume(node: string, storeid: string, volume: string, user: string): string {
    const volid = volume.includes(":") ? volume : `${storeid}:${volume}`;
    const found = this.findVolume(node, volid);
    if (!found) die(`volume '${volid}' does not exist`);
    // Storage/Content.pm delete: an imgdel worker without an id.
    return this.tasks.start(node, "imgdel", "", user, {
      finish: () => this.removeVolume(node, volid),
    });
  }

  backup(node: string, params: Record<string, string>, user: string): string {
    this.assertNode(node);
    const vmids = splitList(params["vmid"] ?? "").map(Number);
    if (vmids.length === 0) die("no VMs selected for backup (use --vmid or --all)");
    const storeid = params["storage"] ?? "local";
    const store = this.storage(node, storeid);
    if (!store.content.includes("backup")) die(`storage '${storeid}' does not support backups`);
    const vms = vmids.map((id) => this.guest(node, id));
    for (const vm of vms) this.checkLock(vm);
    for (const vm of vms) vm.lock = "backup";
    // Recorded (one record per vzdump task, the first VM's id) so a test can order backups against
    // power requests and deletes.
    const upid = this.tasks.start(node, "vzdump", vmids.length === 1 ? String(vmids[0]) : "", user, {
      finish: (log) => {
        for (const vm of vms) {
          const stamp = new Date().toISOString().replace(/[-:]/g, "_").replace("T", "-").slice(0, 19);
          // vzdump names a container's archive vzdump-lxc-… (a tar), a VM's vzdump-qemu-… (a vma).
          const type = guestType(vm);
          const format = type === "lxc" ? "tar.zst" : "vma.zst";
          const volid = `${storeid}:backup/vzdump-${type}-${vm.vmid}-${stamp}.${format}`;
          log(`INFO: Starting Backup of VM ${vm.vmid} (${type})`);
          const size = this.ownedVolumes(vm).reduce((n, v) => n + (this.findVolume(node, v)?.size ?? 0), 0);
          this.volumesOf(node, storeid).push({
            volid,
            content: "backup",
            format,
            size: Math.max(1, Math.floor(size / 10)),
            vmid: vm.vmid,
            ctime: Math.floor(Date.now() / 1000),
            ...(params["notes-template"] ? { notes: params["notes-template"] } : {}),
          });
          log(`INFO: Finished Backup of VM ${vm.vmid}`);
          log(`INFO: archive file: ${volid}`);
        }
      },
      cleanup: () => {
        for (const vm of vms) if (vm.lock === "backup") delete vm.lock;
      },
    });
    return this.record("backup", node, { vmid: vmids[0]! }, upid);
  }

  // ---------- HA ----------

  /** Puts a VM under HA; "started" makes the HA manager start it (as user root@pam). */
  addHaResource(params: Record<string, string>): void {
    const sid = normalizeSid(params["sid"]!, (id) => {
      const g = this.vms.get(id);
      return g && guestType(g);
    });
    const vmid = Number(sid.split(":")[1]);
    const vm = this.vms.get(vmid);
    // A vm: service is a VM, a ct: service a container: the id of the other kind is no such guest.
    if (!vm || sid !== sidOf(vmid, guestType(vm)))
      die(`unable to find ${sid.startsWith("ct:") ? "CT" : "VM"} '${vmid}'`);
    const r = this.ha.add({ ...params, sid });
    if (r.state === "started" && vm!.status === "stopped") {
      this.tasks.start(vm!.node, guestType(vm!) === "lxc" ? "vzstart" : "qmstart", String(vmid), "root@pam", {
        finish: () => this.powerOn(vm!),
      });
    }
  }

  /**
   * Fencing and recovery: an HA-managed, started VM whose node stays down for haRecoveryMs moves to the
   * node the HA rules allow and runs there — if its disks are on shared storage (HA needs that).
   */
  nodesChanged(): void {
    for (const node of this.nodes) {
      if (!this.faults.nodeDown(node) || this.fencing.has(node)) continue;
      this.fencing.add(node);
      this.tasks.schedule(this.options.haRecoveryMs, () => {
        this.fencing.delete(node);
        if (this.faults.nodeDown(node)) this.recover(node);
      });
    }
  }

  private recover(node: string): void {
    const online = this.nodes.filter((n) => !this.faults.nodeDown(n));
    for (const vm of [...this.vms.values()].filter((v) => v.node === node)) {
      const sid = sidOf(vm.vmid, guestType(vm));
      if (this.ha.resources.get(sid)?.state !== "started") continue;
      const local = this.ownedVolumes(vm).some(
        (volid) => !this.storages.find((s) => s.storage === volid.split(":")[0])?.shared,
      );
      if (local) continue;
      const target = this.ha.recoveryNode(
        sid,
        online,
        (other) => this.vms.get(Number(other.split(":")[1]))?.node,
        (n) => [...this.vms.values()].filter((v) => v.node === n).length,
      );
      if (!target) continue;
      vm.node = target;
      this.powerOn(vm);
    }
  }

  /** Typed config output: integers and booleans as JSON numbers, like Proxmox's config reader. */
  typedConfig(vm: Vm): Record<string, string | number> {
    const out: Record<string, string | number> = {};
    const properties = guestType(vm) === "lxc" ? LXC_CONFIG_PROPERTIES : QEMU_CONFIG_PROPERTIES;
    for (const [k, v] of Object.entries(vm.config)) {
      const type = propertyFor(properties, k)?.["type"];
      out[k] =
        (type === "integer" || type === "number" || type === "boolean") && /^-?\d+(\.\d+)?$/.test(v)
          ? Number(v)
          : v;
    }
    out["digest"] = this.digest(vm);
    if (vm.lock) out["lock"] = vm.lock;
    return out;
  }

  /** The boot disk's size: a VM's first non-CD-ROM drive, a container's rootfs. */
  maxDisk(vm: Vm): number {
    const boot =
      guestType(vm) === "lxc"
        ? Object.entries(vm.config).find(([k]) => k === "rootfs")
        : Object.entries(vm.config).find(([k, v]) => DISK_KEY.test(k) && !v.includes("media=cdrom"));
    return boot ? (this.findVolume(vm.node, splitDrive(boot[1]).file)?.size ?? 0) : 0;
  }
}

/** Fetches a download's source: its size and its hex digest under every algorithm Proxmox offers. */
export type FetchFile = (
  url: string,
  verifyCertificates: boolean,
) => Promise<{ size: number; digests: Record<string, string> }>;

export const CHECKSUM_ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] as const;
/** pve-storage Plugin.pm KNOWN_COMPRESSION_FORMATS (no xz). */
export const KNOWN_COMPRESSION_FORMATS = ["gz", "lzo", "zst", "bz2"];
