// The simulated Proxmox VE cluster: nodes, storages and their volumes, QEMU VMs with locks and a
// stopped/running state machine, HA resources and rules, and the tasks that change them. Error texts
// are Proxmox's own (qemu-server, pve-guest-common, pve-storage, pve-ha-manager), because clients
// (ours and others) match on them.
import { createHash, randomUUID } from "node:crypto";
import { QEMU_CONFIG_PROPERTIES } from "./api-schema.ts";
import { die, paramError } from "./failure.ts";
import type { Faults } from "./faults.ts";
import { splitList } from "./formats.ts";
import { normalizeSid, SimHa } from "./ha.ts";
import { propertyFor } from "./param-check.ts";
import type { TaskRunner } from "./tasks.ts";

export interface StorageSpec {
  storage: string;
  type: "dir" | "lvmthin" | "nfs" | "rbd";
  content: string[];
  shared: boolean;
  /** Capacity in bytes. */
  total: number;
}

export interface Volume {
  volid: string;
  content: string;
  format: string;
  size: number;
  vmid?: number;
  ctime: number;
  notes?: string;
}

export interface Vm {
  vmid: number;
  node: string;
  config: Record<string, string>;
  status: "running" | "stopped";
  lock?: string;
  startedAt?: number;
}

export interface ClusterOptions {
  nodes: string[];
  storages: StorageSpec[];
  /** Bytes of a downloaded file whose URL the simulator cannot fetch (not loopback). */
  offlineDownloadSize: number;
  /** How long a node stays down before its HA-managed VMs are recovered elsewhere. */
  haRecoveryMs: number;
}

const GiB = 1024 ** 3;
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

export class SimCluster {
  readonly nodes: string[];
  readonly storages: StorageSpec[];
  readonly vms = new Map<number, Vm>();
  /** Volumes by storage key: `<storage>` when shared, `<node>/<storage>` otherwise. */
  readonly volumes = new Map<string, Volume[]>();
  readonly ha: SimHa;
  private readonly fencing = new Set<string>();
  private readonly tasks: TaskRunner;
  private readonly faults: Faults;
  private readonly options: ClusterOptions;

  constructor(options: ClusterOptions, tasks: TaskRunner, faults: Faults) {
    this.options = options;
    this.nodes = options.nodes;
    this.storages = options.storages;
    this.tasks = tasks;
    this.faults = faults;
    this.ha = new SimHa(options.nodes);
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

  /** pve-guest-common AbstractConfig load_config: a VM lives in its node's config directory. */
  vm(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node)
      die(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    return vm!;
  }

  /** AbstractConfig check_lock. */
  checkLock(vm: Vm, skiplock = false): void {
    if (vm.lock && !skiplock) die(`VM is locked (${vm.lock})`);
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

  private nextDiskName(vmid: number, storeVolumes: Volume[], suffix: string): string {
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
    const store = this.storage(vm.node, storeid);
    if (!store.content.includes("images")) die(`storage '${storeid}' does not support content-type 'images'`);
    const list = this.volumesOf(vm.node, storeid);
    const fileBased = store.type === "dir" || store.type === "nfs";
    let size = Math.round(Number(newSize ?? 0) * GiB);
    let name: string;
    if (rest === "cloudinit") {
      name = `vm-${vm.vmid}-cloudinit${fileBased ? ".qcow2" : ""}`;
      size = 4 * 1024 ** 2;
      opts["media"] = "cdrom";
    } else {
      const source = opts["import-from"];
      if (source !== undefined) {
        const src = this.findVolume(vm.node, source);
        if (!src) die(`volume '${source}' does not exist`);
        if (src!.content !== "images" && src!.content !== "import")
          die(
            `'import-from': volume '${source}' has wrong content type '${src!.content}', expected 'images' or 'import'`,
          );
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

  private removeVolume(node: string, volid: string): void {
    const storeid = volid.split(":")[0]!;
    if (!this.storages.some((s) => s.storage === storeid)) return;
    const list = this.volumesOf(node, storeid);
    const i = list.findIndex((v) => v.volid === volid);
    if (i >= 0) list.splice(i, 1);
  }

  private ownedVolumes(vm: Vm): string[] {
    return Object.entries(vm.config)
      .filter(([k]) => DISK_KEY.test(k) || /^unused\d+$/.test(k))
      .map(([, v]) => splitDrive(v).file)
      .filter((f) => this.findVolume(vm.node, f)?.vmid === vm.vmid);
  }

  // ---------- VM lifecycle ----------

  createVm(node: string, params: Record<string, string>, user: string): string {
    this.assertNode(node);
    const vmid = Number(params["vmid"]);
    const existing = this.vms.get(vmid);
    if (existing) die(`unable to create VM ${vmid} - VM ${vmid} already exists on node '${existing.node}'`);
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (
        ["node", "vmid", "start", "storage", "pool", "ha-managed", "unique", "force", "archive"].includes(k)
      )
        continue;
      config[k] = v;
    }
    config["smbios1"] ??= `uuid=${randomUUID()}`;
    config["vmgenid"] ??= randomUUID();
    config["meta"] = `creation-qemu=10.1.2,ctime=${Math.floor(Date.now() / 1000)}`;
    const vm: Vm = { vmid, node, config, status: "stopped", lock: "create" };
    this.vms.set(vmid, vm);
    const start = params["start"] === "1";
    const haManaged = params["ha-managed"] === "1";
    return this.tasks.start(node, "qmcreate", String(vmid), user, {
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
    });
  }

  private powerOn(vm: Vm): void {
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

  power(
    node: string,
    vmid: number,
    action: "start" | "stop" | "shutdown" | "reboot",
    user: string,
    skiplock: boolean,
  ): string {
    const vm = this.vm(node, vmid);
    this.checkLock(vm, skiplock);
    const ha = this.ha.resources.get(`vm:${vmid}`);
    // qemu-server: for HA-managed guests start/stop/shutdown become requests to the HA manager.
    if (ha && action !== "reboot") {
      const type = action === "start" ? "hastart" : "hastop";
      ha.state = action === "start" ? "started" : "stopped";
      return this.tasks.start(node, type, String(vmid), user, {
        start: (log) => log(`Requesting HA ${action} for VM ${vmid}`),
        finish: () => {
          if (action === "start") this.powerOn(vm);
          else vm.status = "stopped";
        },
      });
    }
    const type = { start: "qmstart", stop: "qmstop", shutdown: "qmshutdown", reboot: "qmreboot" }[action];
    return this.tasks.start(node, type, String(vmid), user, {
      start: () => {
        if (action !== "start") return;
        if (vm.status === "running") throw new Error(`VM ${vmid} already running`);
      },
      finish: (log) => {
        if (action === "start") {
          if (vm.status === "running") throw new Error(`VM ${vmid} already running`);
          log(`generating cloud-init ISO`);
          this.powerOn(vm);
          return;
        }
        if (vm.status !== "running") throw new Error(`VM ${vmid} not running`);
        if (action === "reboot") {
          vm.startedAt = Date.now();
          return;
        }
        vm.status = "stopped";
        delete vm.startedAt;
      },
    });
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
    return this.tasks.start(node, "qmdestroy", String(vmid), user, {
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
    });
  }

  agentPing(node: string, vmid: number): Record<string, never> {
    const vm = this.vm(node, vmid);
    if (vm.status !== "running") die(`VM ${vmid} is not running`);
    if (!/^(1|enabled=1)/.test(vm.config["agent"] ?? "0")) die("No QEMU guest agent configured");
    if (this.faults.agentDown(vmid)) die("QEMU guest agent is not running");
    return {};
  }

  // ---------- storage ----------

  download(
    node: string,
    storeid: string,
    params: Record<string, string>,
    user: string,
    fetchFile: FetchFile,
  ): string {
    const store = this.storage(node, storeid);
    const content = params["content"]!;
    if (store.type !== "dir" && store.type !== "nfs") die(`storage '${storeid}' is not a file-based storage`);
    if (!store.content.includes(content))
      die(`storage '${storeid}' does not support content-type '${content}'`);
    const filename = params["filename"]!;
    const compression = params["compression"];
    if (compression !== undefined) {
      if (!["gz", "lzo", "zst", "bz2"].includes(compression))
        paramError({
          compression: `value '${compression}' does not have a value in the enumeration 'gz, lzo, zst, bz2'`,
        });
      if (content !== "iso") paramError({ compression: `decompression not supported for ${content}` });
    }
    // pve-storage Storage.pm: iso must end .iso/.img, import .ova/.qcow2/.raw/.vmdk.
    const extension =
      content === "iso"
        ? /\.(iso|img)$/i
        : content === "import"
          ? /\.(ova|qcow2|raw|vmdk)$/i
          : /\.tar\.(gz|xz|zst)$/i;
    if (!extension.test(filename) || /[/\\]/.test(filename)) paramError({ filename: "wrong file extension" });
    const volid = `${storeid}:${content}/${filename}`;
    if (this.findVolume(node, volid)) die(`refusing to override existing file '${filename}'`);
    return this.tasks.start(node, "download", filename, user, {
      start: (log) => log(`downloading ${params["url"]} to ${filename}`),
      finish: async (log) => {
        const got = await fetchFile(
          params["url"]!,
          params["checksum-algorithm"],
          params["verify-certificates"] !== "0",
        );
        const size = got?.size ?? this.options.offlineDownloadSize;
        if (got && params["checksum"]) {
          const expected = params["checksum"].toLowerCase();
          if (got.checksum !== expected)
            throw new Error(`checksum mismatch: got '${got.checksum}' != expect '${expected}'`);
          log(`calculating checksum...OK, checksum verified`);
        } else if (params["checksum"]) {
          log(`checksum not verified: ${params["url"]} is not reachable from the simulator`);
        }
        if (compression) log(`decompressing ${filename}.${compression} to ${filename}`);
        this.volumesOf(node, storeid).push({
          volid,
          content,
          format: content === "iso" ? "iso" : (filename.split(".").pop() ?? "raw"),
          size,
          ctime: Math.floor(Date.now() / 1000),
        });
        log(`download of '${params["url"]}' to '${volid}' finished`);
      },
    });
  }

  backup(node: string, params: Record<string, string>, user: string): string {
    this.assertNode(node);
    const vmids = splitList(params["vmid"] ?? "").map(Number);
    if (vmids.length === 0) die("no VMs selected for backup (use --vmid or --all)");
    const storeid = params["storage"] ?? "local";
    const store = this.storage(node, storeid);
    if (!store.content.includes("backup")) die(`storage '${storeid}' does not support backups`);
    const vms = vmids.map((id) => this.vm(node, id));
    for (const vm of vms) this.checkLock(vm);
    for (const vm of vms) vm.lock = "backup";
    return this.tasks.start(node, "vzdump", vmids.length === 1 ? String(vmids[0]) : "", user, {
      finish: (log) => {
        for (const vm of vms) {
          const stamp = new Date().toISOString().replace(/[-:]/g, "_").replace("T", "-").slice(0, 19);
          const volid = `${storeid}:backup/vzdump-qemu-${vm.vmid}-${stamp}.vma.zst`;
          log(`INFO: Starting Backup of VM ${vm.vmid} (qemu)`);
          const size = this.ownedVolumes(vm).reduce((n, v) => n + (this.findVolume(node, v)?.size ?? 0), 0);
          this.volumesOf(node, storeid).push({
            volid,
            content: "backup",
            format: "vma.zst",
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
  }

  // ---------- HA ----------

  /** Puts a VM under HA; "started" makes the HA manager start it (as user root@pam). */
  addHaResource(params: Record<string, string>): void {
    const vmid = Number(normalizeSid(params["sid"]!).split(":")[1]);
    const vm = this.vms.get(vmid);
    if (!vm) die(`unable to find VM '${vmid}'`);
    const r = this.ha.add(params);
    if (r.state === "started" && vm!.status === "stopped") {
      this.tasks.start(vm!.node, "qmstart", String(vmid), "root@pam", { finish: () => this.powerOn(vm!) });
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
      const sid = `vm:${vm.vmid}`;
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
    for (const [k, v] of Object.entries(vm.config)) {
      const type = propertyFor(QEMU_CONFIG_PROPERTIES, k)?.["type"];
      out[k] =
        (type === "integer" || type === "number" || type === "boolean") && /^-?\d+(\.\d+)?$/.test(v)
          ? Number(v)
          : v;
    }
    out["digest"] = this.digest(vm);
    if (vm.lock) out["lock"] = vm.lock;
    return out;
  }

  maxDisk(vm: Vm): number {
    const boot = Object.entries(vm.config).find(([k, v]) => DISK_KEY.test(k) && !v.includes("media=cdrom"));
    return boot ? (this.findVolume(vm.node, splitDrive(boot[1]).file)?.size ?? 0) : 0;
  }
}

export type FetchFile = (
  url: string,
  algorithm: string | undefined,
  verifyCertificates: boolean,
) => Promise<{ size: number; checksum: string } | undefined>;
