// LXC containers in the simulated cluster, as pve-container's API does them (src/PVE/API2/LXC.pm
// create_vm / destroy_vm, src/PVE/API2/LXC/Status.pm vm_start / vm_stop / vm_shutdown): containers share
// the cluster's id space, volumes, HA and tasks with VMs, but have their own config directory, task
// types (vzcreate, vzstart, vzstop, vzshutdown, vzdestroy), HA service ids (`ct:<id>`) and a split
// between API-call and worker checks that differs from qemu-server's: a container that is not running
// is refused up front by stop and shutdown ("CT 100 not running"), a running one by start.
import { guestType, isFileBased, randomMac, type SimCluster, type Vm } from "./cluster.ts";
import { die, paramError } from "./failure.ts";
import { sidOf } from "./ha.ts";

const GiB = 1024 ** 3;
/** create_vm's defaults when the request leaves them out. */
const DEFAULT_ROOTFS_GIB = 4;
const DEFAULT_MEMORY_MIB = "512";
const DEFAULT_SWAP_MIB = "512";
/** Parameters of the create request that are not config keys. */
const NOT_CONFIG = [
  "node",
  "vmid",
  "ostemplate",
  "password",
  "storage",
  "force",
  "restore",
  "pool",
  "ignore-unpack-errors",
  "ssh-public-keys",
  "start",
  "ha-managed",
  "unique",
  "bwlimit",
];

/** The storages a create allocates on: `rootfs`/`mp<n>` values `<storage>:<GiB>`, or the default storage. */
export function containerStorages(params: Record<string, string>): string[] {
  const out = new Set<string>();
  const storage = params["storage"] ?? "local";
  let rootfs = false;
  for (const [k, v] of Object.entries(params)) {
    if (k !== "rootfs" && !/^mp\d+$/.test(k)) continue;
    if (k === "rootfs") rootfs = true;
    const volume = v.split(",")[0]!.replace(/^volume=/, "");
    if (/^\d+(\.\d+)?$/.test(volume)) out.add(storage);
    else {
      const m = /^([^:]+):/.exec(volume);
      if (m) out.add(m[1]!);
    }
  }
  if (!rootfs) out.add(storage);
  return [...out];
}

export class SimLxc {
  private readonly c: SimCluster;

  constructor(cluster: SimCluster) {
    this.c = cluster;
  }

  /**
   * create_vm: the id must be unused (check_vmid_unused names the kind holding it), every storage a
   * mount point allocates on must allow `rootdir`, the template must be a vztmpl (or backup) volume.
   * The vzcreate worker allocates the volumes, unpacks the template and writes the config
   * (hostname CT<id>, memory and swap 512 MiB unless given); on failure it removes what it made.
   */
  create(node: string, params: Record<string, string>, user: string): string {
    const c = this.c;
    c.assertNode(node);
    const vmid = Number(params["vmid"]);
    const existing = c.vms.get(vmid);
    if (existing)
      die(`${guestType(existing) === "lxc" ? "CT" : "VM"} ${vmid} already exists on node '${existing.node}'`);
    const storage = params["storage"] ?? "local";
    for (const sid of containerStorages(params)) {
      const store = c.enabledStorage(node, sid);
      if (!store.content.includes("rootdir"))
        paramError({ storage: `storage '${sid}' does not support container directories` });
    }
    const ostemplate = params["ostemplate"]!;
    if (!/^[^:]+:(vztmpl|backup)\//.test(ostemplate))
      die(`volume '${ostemplate}' is not a container template or backup archive`);
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) if (!NOT_CONFIG.includes(k)) config[k] = v;
    config["rootfs"] ??= `${storage}:${DEFAULT_ROOTFS_GIB}`;
    for (const key of Object.keys(config)) {
      if (/^net\d+$/.test(key)) config[key] = withHwaddr(config[key]!, c.options.random);
    }
    config["hostname"] ??= `CT${vmid}`;
    config["memory"] ??= DEFAULT_MEMORY_MIB;
    config["swap"] ??= DEFAULT_SWAP_MIB;
    const vm: Vm = { vmid, type: "lxc", node, config, status: "stopped", lock: "create" };
    c.vms.set(vmid, vm);
    const start = params["start"] === "1";
    const haManaged = params["ha-managed"] === "1";
    const upid = c.tasks.start(node, "vzcreate", String(vmid), user, {
      finish: (log) => {
        try {
          if (!c.findVolume(node, ostemplate)) throw new Error(`volume '${ostemplate}' does not exist`);
          for (const key of Object.keys(config)) {
            if (key === "rootfs" || /^mp\d+$/.test(key))
              config[key] = this.allocate(vm, config[key]!, storage, log);
          }
          log(`extracting archive '${ostemplate}'`);
          log("Total bytes read: 0 (0B, 0B/s)");
        } catch (err) {
          for (const volid of c.ownedVolumes(vm)) c.removeVolume(node, volid);
          c.vms.delete(vmid);
          throw new Error(`unable to create CT ${vmid} - ${(err as Error).message}`);
        }
        if (haManaged) c.ha.add({ sid: sidOf(vmid, "lxc"), state: start ? "started" : "stopped" });
        if (start) c.powerOn(vm);
      },
      cleanup: () => {
        if (vm.lock === "create") delete vm.lock;
      },
    });
    return c.record("vm-create", node, { vmid }, upid);
  }

  /** create_disks: `<storage>:<GiB>` (or a bare size on the default storage) becomes a new volume. */
  private allocate(vm: Vm, value: string, storage: string, log: (l: string) => void): string {
    const c = this.c;
    const [first = "", ...rest] = value.split(",");
    const volume = first.replace(/^volume=/, "");
    const sized = /^(?:([^:]+):)?(\d+(?:\.\d+)?)$/.exec(volume);
    if (!sized) {
      if (!c.findVolume(vm.node, volume)) throw new Error(`volume '${volume}' does not exist`);
      return value;
    }
    const storeid = sized[1] ?? storage;
    const store = c.enabledStorage(vm.node, storeid);
    const size = Math.round(Number(sized[2]) * GiB);
    const list = c.volumesOf(vm.node, storeid);
    const fileBased = isFileBased(store);
    const name = c.nextDiskName(vm.vmid, list, fileBased ? ".raw" : "");
    const volid = fileBased ? `${storeid}:${vm.vmid}/${name}` : `${storeid}:${name}`;
    list.push({
      volid,
      // Storage content listings show a container's volumes as rootdir, a VM's as images.
      content: "rootdir",
      format: "raw",
      size,
      vmid: vm.vmid,
      ctime: Math.floor(Date.now() / 1000),
    });
    log(`Formatting '${volid}', fmt=raw size=${size}`);
    const opts = rest.filter((o) => !o.startsWith("size="));
    return [volid, ...opts, `size=${Math.round(size / GiB)}G`].join(",");
  }

  /**
   * vm_start / vm_stop / vm_shutdown. Refused up front: start of a running container ("CT 100 already
   * running"), stop or shutdown of one that is not running or does not exist ("CT 100 not running"),
   * skiplock for anyone but root@pam. An HA-managed container's request goes to the HA manager
   * (hastart / hastop). The worker (vzstart / vzstop / vzshutdown) loads the config and checks its
   * lock ("CT is locked (backup)"); start checks again that it is not running (two starts at once:
   * the second fails as Proxmox's config flock would make it).
   */
  power(node: string, vmid: number, action: "start" | "stop" | "shutdown", user: string, skiplock: boolean) {
    const c = this.c;
    c.assertNode(node);
    if (skiplock) paramError({ skiplock: "Only root may use this option." });
    const find = () => {
      const vm = c.vms.get(vmid);
      return vm && vm.node === node && guestType(vm) === "lxc" ? vm : undefined;
    };
    const running = find()?.status === "running";
    if (action === "start" && running) die(`CT ${vmid} already running`);
    if (action !== "start" && !running) die(`CT ${vmid} not running`);
    const ha = c.ha.resources.get(sidOf(vmid, "lxc"));
    if (ha) {
      ha.state = action === "start" ? "started" : "stopped";
      const type = action === "start" ? "hastart" : "hastop";
      return c.record(
        "power",
        node,
        { vmid, action },
        c.tasks.start(node, type, String(vmid), user, {
          start: (log) => log(`Requesting HA ${action === "start" ? "start" : "stop"} for CT ${vmid}`),
          finish: () => {
            const vm = find();
            if (!vm) return;
            if (action === "start") c.powerOn(vm);
            else c.powerOff(vm);
          },
        }),
      );
    }
    const type = { start: "vzstart", stop: "vzstop", shutdown: "vzshutdown" }[action];
    const check = (): Vm => {
      const vm = find();
      if (!vm) throw new Error(`Configuration file 'nodes/${node}/lxc/${vmid}.conf' does not exist`);
      if (vm.lock) throw new Error(`CT is locked (${vm.lock})`);
      if (action === "start" && vm.status === "running") throw new Error(`CT ${vmid} already running`);
      return vm;
    };
    return c.record(
      "power",
      node,
      { vmid, action },
      c.tasks.start(node, type, String(vmid), user, {
        start: () => void check(),
        finish: () => {
          const vm = check();
          if (action === "start") c.powerOn(vm);
          else c.powerOff(vm);
        },
      }),
    );
  }

  /**
   * destroy_vm: a missing config, a lock, an HA resource without purge ("unable to remove CT 100 - used
   * in HA resources and purge parameter not set.") and a running container without force ("unable to
   * destroy CT 100 - container is running") are refused up front. The vzdestroy worker (force: after
   * stopping it) removes its volumes, with destroy-unreferenced-disks also the storages' other volumes
   * of this id, and with purge its HA resource and rule membership.
   */
  destroy(node: string, vmid: number, params: Record<string, string>, user: string): string {
    const c = this.c;
    const vm = c.ct(node, vmid);
    c.checkLock(vm);
    const sid = sidOf(vmid, "lxc");
    const purge = params["purge"] === "1";
    if (c.ha.resources.has(sid) && !purge)
      die(`unable to remove CT ${vmid} - used in HA resources and purge parameter not set.`);
    const force = params["force"] === "1";
    if (vm.status === "running" && !force) die(`unable to destroy CT ${vmid} - container is running`);
    vm.lock = "destroyed";
    return c.record(
      "vm-delete",
      node,
      { vmid },
      c.tasks.start(node, "vzdestroy", String(vmid), user, {
        finish: (log) => {
          if (vm.status === "running") c.powerOff(vm);
          for (const volid of c.ownedVolumes(vm)) {
            c.removeVolume(node, volid);
            log(`Removing volume '${volid}'`);
          }
          if (params["destroy-unreferenced-disks"] === "1") {
            for (const s of c.storages) {
              const list = c.volumesOf(node, s.storage);
              for (const v of list.filter(
                (x) => x.vmid === vmid && (x.content === "rootdir" || x.content === "images"),
              )) {
                c.removeVolume(node, v.volid);
                log(`Removing unreferenced volume '${v.volid}'`);
              }
            }
          }
          if (purge) {
            c.ha.resources.delete(sid);
            c.ha.removeFromRules(sid);
            log(`purging CT ${vmid} from related configurations..`);
          }
          c.vms.delete(vmid);
        },
        cleanup: () => {
          if (c.vms.has(vmid) && vm.lock === "destroyed") delete vm.lock;
        },
      }),
    );
  }
}

/** pve-container: a veth without `hwaddr` gets one under Proxmox's MAC prefix. */
function withHwaddr(value: string, random: () => number): string {
  return /(^|,)hwaddr=/.test(value) ? value : `${value},hwaddr=${randomMac(random)}`;
}
