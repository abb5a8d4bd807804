// One handler per served endpoint. Parameters arrive already checked against the official schema and
// the schema's own permission expression; the checks written here are the ones Proxmox documents only
// as prose (`"user": "all"` plus a description), e.g. create-VM's VM.Allocate + Datastore.AllocateSpace.
import { type FetchFile, guestType, type SimCluster, type Volume } from "./cluster.ts";
import { ApiFailure, die } from "./failure.ts";
import type { Faults } from "./faults.ts";
import { splitList } from "./formats.ts";
import type { HaRule } from "./ha.ts";
import { containerStorages, SimLxc } from "./lxc.ts";
import { ALL_PRIVILEGES, hasPrivilege, requirePrivileges, type TokenAcl } from "./permissions.ts";
import type { TaskRunner } from "./tasks.ts";

export interface HandlerContext {
  params: Record<string, string>;
  /** `user@realm!tokenid`, the task owner in UPIDs. */
  user: string;
  acl: TokenAcl;
  cluster: SimCluster;
  tasks: TaskRunner;
  faults: Faults;
  fetchFile: FetchFile;
  version: string;
  bridges: readonly string[];
}

type Handler = (ctx: HandlerContext) => unknown;

/** A list answer that also reports its full length (`"total"` beside `"data"`, as the task log does). */
export class WithTotal {
  readonly data: unknown[];
  readonly total: number;
  constructor(data: unknown[], total: number) {
    this.data = data;
    this.total = total;
  }
}

const vmid = (ctx: HandlerContext) => Number(ctx.params["vmid"]);

function versionInfo(ctx: HandlerContext) {
  return {
    version: ctx.version,
    release: ctx.version.split(".").slice(0, 2).join("."),
    // A git commit id in Proxmox (pattern [0-9a-fA-F]{8,64}); fixed for the simulator.
    repoid: "5e1a7ac0",
  };
}
const node = (ctx: HandlerContext) => ctx.params["node"]!;
const GiB = 1024 ** 3;

function vmSummary(ctx: HandlerContext, id: number) {
  const { cluster } = ctx;
  const vm = cluster.vms.get(id)!;
  const type = guestType(vm);
  const down = ctx.faults.nodeDown(vm.node);
  const memory = Number((vm.config["memory"] ?? "512").replace(/^current=/, "")) * 1024 ** 2;
  const cpus = Number(vm.config["cores"] ?? 1) * Number(vm.config["sockets"] ?? 1);
  const running = vm.status === "running" && !down;
  const ha = cluster.ha.status(id, type);
  return {
    id: `${type}/${id}`,
    type,
    vmid: id,
    // A container's name is its hostname.
    name:
      (type === "lxc" ? vm.config["hostname"] : vm.config["name"]) ?? `${type === "lxc" ? "CT" : "VM "}${id}`,
    node: vm.node,
    status: down ? "unknown" : vm.status,
    template: 0,
    maxmem: memory,
    mem: running ? Math.floor(memory / 3) : 0,
    maxcpu: cpus,
    cpu: running ? 0.02 : 0,
    maxdisk: cluster.maxDisk(vm),
    disk: 0,
    uptime: running && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
    netin: 0,
    netout: 0,
    diskread: 0,
    diskwrite: 0,
    ...(vm.config["tags"] ? { tags: vm.config["tags"] } : {}),
    ...(vm.lock ? { lock: vm.lock } : {}),
    ...(ha.managed ? { hastate: ha.state } : {}),
  };
}

/** A container's status (LXC.pm vmlist / Status.pm vm_status: the same fields, plus `ha` for one). */
function containerStatus(ctx: HandlerContext, id: number, withHa: boolean) {
  const vm = ctx.cluster.vms.get(id)!;
  const s = vmSummary(ctx, id);
  return {
    vmid: id,
    name: s.name,
    status: vm.status,
    uptime: s.uptime,
    cpus: s.maxcpu,
    cpu: s.cpu,
    maxmem: s.maxmem,
    mem: s.mem,
    maxswap: Number(vm.config["swap"] ?? 512) * 1024 ** 2,
    maxdisk: s.maxdisk,
    disk: 0,
    netin: 0,
    netout: 0,
    diskread: 0,
    diskwrite: 0,
    ...(withHa ? { ha: ctx.cluster.ha.status(id, "lxc") } : {}),
    ...(s.tags ? { tags: s.tags } : {}),
    ...(vm.lock ? { lock: vm.lock } : {}),
  };
}

function nodeSummary(ctx: HandlerContext, name: string) {
  const online = !ctx.faults.nodeDown(name);
  return {
    id: `node/${name}`,
    type: "node",
    node: name,
    status: online ? "online" : "offline",
    level: "",
    maxcpu: 16,
    cpu: online ? 0.05 : 0,
    maxmem: 64 * GiB,
    mem: online ? 8 * GiB : 0,
    maxdisk: 100 * GiB,
    disk: 10 * GiB,
    uptime: online ? 86_400 : 0,
  };
}

function storageSummaries(ctx: HandlerContext, nodeName: string) {
  return ctx.cluster.storages
    .filter(
      (s) =>
        hasPrivilege(ctx.acl, `/storage/${s.storage}`, "Datastore.Audit") ||
        hasPrivilege(ctx.acl, `/storage/${s.storage}`, "Datastore.AllocateSpace"),
    )
    .map((s) => {
      const used = ctx.cluster.volumesOf(nodeName, s.storage).reduce((n, v) => n + v.size, 0);
      return {
        storage: s.storage,
        type: s.type,
        content: [...s.content].sort().join(","),
        shared: s.shared ? 1 : 0,
        active: s.disabled ? 0 : 1,
        enabled: s.disabled ? 0 : 1,
        total: s.total,
        used,
        avail: s.total - used,
        used_fraction: used / s.total,
      };
    });
}

/** Drive values that allocate on a storage (`<storage>:<size>`, `<storage>:cloudinit`, `<storage>:0,import-from=`). */
function storagesUsed(params: Record<string, string>): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(params)) {
    if (!/^(ide|sata|scsi|virtio)\d+$|^efidisk0$|^tpmstate0$/.test(k)) continue;
    const m = /^(?:file=)?([^:,]+):([^,]+)/.exec(v);
    if (m && (/^\d+(\.\d+)?$/.test(m[2]!) || m[2] === "cloudinit")) out.add(m[1]!);
  }
  return [...out];
}

function bridgesUsed(params: Record<string, string>): string[] {
  return Object.entries(params)
    .filter(([k]) => /^net\d+$/.test(k))
    .map(([, v]) => /(?:^|,)bridge=([^,]+)/.exec(v)?.[1])
    .filter((b): b is string => b !== undefined);
}

function volumeListing(v: Volume) {
  return {
    volid: v.volid,
    content: v.content,
    format: v.format,
    size: v.size,
    ctime: v.ctime,
    ...(v.vmid !== undefined ? { vmid: v.vmid } : {}),
    ...(v.notes !== undefined ? { notes: v.notes } : {}),
  };
}

/** `{volume}` is a volid or a volume name on `{storage}`. */
const volumeId = (ctx: HandlerContext) => {
  const volume = ctx.params["volume"]!;
  return volume.includes(":") ? volume : `${ctx.params["storage"]}:${volume}`;
};

function volumePath(ctx: HandlerContext, volid: string): string {
  const [storeid, name] = [volid.slice(0, volid.indexOf(":")), volid.slice(volid.indexOf(":") + 1)];
  const store = ctx.cluster.storages.find((s) => s.storage === storeid)!;
  if (store.type === "rbd") return `rbd:${storeid}/${name}`;
  const base = store.type === "dir" && storeid === "local" ? "/var/lib/vz" : `/mnt/pve/${storeid}`;
  const dir = name.startsWith("iso/") ? "template/" : name.startsWith("vztmpl/") ? "template/cache/" : "";
  return `${base}/${dir}${name.replace(/^vztmpl\//, "")}`.replace(/\/(\d+)\/vm-/, "/images/$1/vm-");
}

/** A rule as the API shows it: its config, id and digest (the simulator's ordering stays internal). */
function haRule(rule: HaRule) {
  const { order: _order, ...shown } = rule;
  return { ...shown, digest: "" };
}

function task(ctx: HandlerContext) {
  const t = ctx.tasks.tasks.get(ctx.params["upid"]!);
  if (!t || t.node !== node(ctx)) throw new ApiFailure(500, `no such task\n`);
  // Tasks.pm: the owner may read its task; others need Sys.Audit on the node.
  if (t.user !== ctx.user) requirePrivileges(ctx.acl, `/nodes/${t.node}`, ["Sys.Audit"]);
  return t;
}

export const HANDLERS: Record<string, Handler> = {
  "GET /version": (ctx) => versionInfo(ctx),
  "GET /nodes/{node}/version": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    return versionInfo(ctx);
  },

  // AccessControl.pm permissions: the caller's own effective privileges, by ACL path (or for one path).
  "GET /access/permissions": (ctx) => {
    const userid = ctx.params["userid"];
    if (userid && userid !== ctx.user) requirePrivileges(ctx.acl, "/access", ["Sys.Audit"]);
    if (userid && userid !== ctx.user) die(`no such user ('${userid}')`);
    const paths = ctx.params["path"] ? [ctx.params["path"]] : Object.keys(ctx.acl).sort();
    return Object.fromEntries(
      paths.map((p) => [
        p,
        Object.fromEntries(
          ALL_PRIVILEGES.filter((priv) => hasPrivilege(ctx.acl, p, priv)).map((priv) => [priv, 1]),
        ),
      ]),
    );
  },

  // Cluster.pm status: one "cluster" entry, then one entry per node (local = the node answering).
  "GET /cluster/status": (ctx) => [
    {
      type: "cluster",
      id: "cluster",
      name: "homelab",
      nodes: ctx.cluster.nodes.length,
      quorate:
        ctx.cluster.nodes.filter((n) => !ctx.faults.nodeDown(n)).length * 2 > ctx.cluster.nodes.length
          ? 1
          : 0,
      version: ctx.cluster.nodes.length + 1,
    },
    ...ctx.cluster.nodes.map((n, i) => ({
      type: "node",
      id: `node/${n}`,
      name: n,
      nodeid: i + 1,
      ip: `10.0.0.${11 + i}`,
      online: ctx.faults.nodeDown(n) ? 0 : 1,
      local: i === 0 ? 1 : 0,
      level: "",
    })),
  ],

  // Network.pm index: the node's interfaces; here only its Linux bridges (VLAN-aware, as the seed's).
  "GET /nodes/{node}/network": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    const type = ctx.params["type"];
    if (type && !["bridge", "any_bridge", "any_local_bridge"].includes(type)) return [];
    return ctx.bridges.map((iface, i) => ({
      iface,
      type: "bridge",
      active: 1,
      autostart: 1,
      bridge_ports: `eno${i + 1}`,
      bridge_stp: "off",
      bridge_fd: "0",
      bridge_vlan_aware: 1,
      families: ["inet"],
      method: "manual",
      priority: i + 1,
    }));
  },

  "GET /nodes/{node}/status": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    return {
      cpu: 0.05,
      cpuinfo: { cores: 8, cpus: 16, model: "Simulated CPU", sockets: 1 },
      "current-kernel": {
        machine: "x86_64",
        release: "6.14.11-4-pve",
        sysname: "Linux",
        version: "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4",
      },
      "boot-info": { mode: "efi", secureboot: 0 },
      loadavg: ["0.12", "0.10", "0.08"],
      memory: { total: 64 * GiB, used: 8 * GiB, free: 56 * GiB, available: 56 * GiB },
      pveversion: `pve-manager/${ctx.version}/simulator`,
      rootfs: { total: 100 * GiB, used: 10 * GiB, free: 90 * GiB, avail: 90 * GiB },
    };
  },

  "GET /nodes": (ctx) =>
    ctx.cluster.nodes.map((n) => {
      const { id, type, status, level, maxcpu, cpu, maxmem, mem, maxdisk, disk, uptime } = nodeSummary(
        ctx,
        n,
      );
      return {
        id,
        type,
        node: n,
        status,
        level,
        maxcpu,
        cpu,
        maxmem,
        mem,
        maxdisk,
        disk,
        uptime,
        ssl_fingerprint: "",
      };
    }),

  "GET /cluster/resources": (ctx) => {
    const type = ctx.params["type"];
    const out: unknown[] = [];
    if (!type || type === "vm") {
      for (const id of [...ctx.cluster.vms.keys()].sort((a, b) => a - b)) {
        if (hasPrivilege(ctx.acl, `/vms/${id}`, "VM.Audit")) out.push(vmSummary(ctx, id));
      }
    }
    if (!type || type === "node") for (const n of ctx.cluster.nodes) out.push(nodeSummary(ctx, n));
    if (!type || type === "storage") {
      for (const n of ctx.cluster.nodes) {
        for (const s of storageSummaries(ctx, n)) {
          out.push({
            id: `storage/${n}/${s.storage}`,
            type: "storage",
            storage: s.storage,
            node: n,
            status: ctx.faults.nodeDown(n) ? "unknown" : "available",
            content: s.content,
            plugintype: s.type,
            shared: s.shared,
            maxdisk: s.total,
            disk: s.used,
          });
        }
      }
    }
    return out;
  },

  "GET /cluster/nextid": (ctx) =>
    ctx.cluster.nextId(ctx.params["vmid"] === undefined ? undefined : Number(ctx.params["vmid"])),

  "GET /nodes/{node}/qemu": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    return [...ctx.cluster.vms.values()]
      .filter((vm) => guestType(vm) === "qemu")
      .filter((vm) => vm.node === node(ctx) && hasPrivilege(ctx.acl, `/vms/${vm.vmid}`, "VM.Audit"))
      .map((vm) => {
        const s = vmSummary(ctx, vm.vmid);
        return {
          vmid: s.vmid,
          name: s.name,
          status: s.status,
          maxmem: s.maxmem,
          mem: s.mem,
          cpus: s.maxcpu,
          maxdisk: s.maxdisk,
          uptime: s.uptime,
          ...(s.tags ? { tags: s.tags } : {}),
          ...(s.lock ? { lock: s.lock } : {}),
        };
      });
  },

  "POST /nodes/{node}/qemu": (ctx) => {
    // Qemu.pm create_vm: VM.Allocate on the VM, Datastore.AllocateSpace on every storage it allocates
    // on, SDN.Use on every bridge (PVE 8+: /sdn/zones/localnetwork/<bridge>).
    requirePrivileges(ctx.acl, `/vms/${vmid(ctx)}`, ["VM.Allocate"]);
    for (const s of storagesUsed(ctx.params))
      requirePrivileges(ctx.acl, `/storage/${s}`, ["Datastore.AllocateSpace"]);
    for (const b of bridgesUsed(ctx.params))
      requirePrivileges(ctx.acl, `/sdn/zones/localnetwork/${b}`, ["SDN.Use"]);
    return ctx.cluster.createVm(node(ctx), ctx.params, ctx.user);
  },

  "DELETE /nodes/{node}/qemu/{vmid}": (ctx) =>
    ctx.cluster.destroy(node(ctx), vmid(ctx), ctx.params, ctx.user),

  "GET /nodes/{node}/qemu/{vmid}/config": (ctx) =>
    ctx.cluster.typedConfig(ctx.cluster.vm(node(ctx), vmid(ctx))),

  "POST /nodes/{node}/qemu/{vmid}/config": (ctx) =>
    ctx.cluster.updateConfig(node(ctx), vmid(ctx), ctx.params, ctx.user, true),

  "PUT /nodes/{node}/qemu/{vmid}/config": (ctx) =>
    ctx.cluster.updateConfig(node(ctx), vmid(ctx), ctx.params, ctx.user, false),

  "PUT /nodes/{node}/qemu/{vmid}/resize": (ctx) =>
    ctx.cluster.resize(node(ctx), vmid(ctx), ctx.params["disk"]!, ctx.params["size"]!, ctx.user),

  "GET /nodes/{node}/qemu/{vmid}/status/current": (ctx) => {
    const vm = ctx.cluster.vm(node(ctx), vmid(ctx));
    const s = vmSummary(ctx, vm.vmid);
    const agent = /^(1|enabled=1)/.test(vm.config["agent"] ?? "0");
    return {
      vmid: vm.vmid,
      name: s.name,
      status: vm.status,
      qmpstatus: vm.status,
      uptime: s.uptime,
      cpus: s.maxcpu,
      cpu: s.cpu,
      maxmem: s.maxmem,
      mem: s.mem,
      maxdisk: s.maxdisk,
      netin: 0,
      netout: 0,
      diskread: 0,
      diskwrite: 0,
      ha: ctx.cluster.ha.status(vm.vmid, "qemu"),
      ...(agent ? { agent: 1 } : {}),
      ...(vm.status === "running" ? { pid: 10_000 + vm.vmid } : {}),
      ...(s.tags ? { tags: s.tags } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
    };
  },

  "POST /nodes/{node}/qemu/{vmid}/status/start": (ctx) =>
    ctx.cluster.power(node(ctx), vmid(ctx), "start", ctx.user, ctx.params["skiplock"] === "1"),
  "POST /nodes/{node}/qemu/{vmid}/status/stop": (ctx) =>
    ctx.cluster.power(node(ctx), vmid(ctx), "stop", ctx.user, ctx.params["skiplock"] === "1"),
  "POST /nodes/{node}/qemu/{vmid}/status/shutdown": (ctx) =>
    ctx.cluster.power(node(ctx), vmid(ctx), "shutdown", ctx.user, ctx.params["skiplock"] === "1"),
  "POST /nodes/{node}/qemu/{vmid}/status/reboot": (ctx) =>
    ctx.cluster.power(node(ctx), vmid(ctx), "reboot", ctx.user, false),

  "POST /nodes/{node}/qemu/{vmid}/agent/ping": (ctx) => ({
    result: ctx.cluster.agentPing(node(ctx), vmid(ctx)),
  }),

  // LXC.pm vmlist: the node's containers the caller may audit.
  "GET /nodes/{node}/lxc": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    return [...ctx.cluster.vms.values()]
      .filter((vm) => guestType(vm) === "lxc")
      .filter((vm) => vm.node === node(ctx) && hasPrivilege(ctx.acl, `/vms/${vm.vmid}`, "VM.Audit"))
      .map((vm) => containerStatus(ctx, vm.vmid, false));
  },

  "POST /nodes/{node}/lxc": (ctx) => {
    // LXC.pm create_vm: VM.Allocate on the container, Datastore.AllocateSpace on every storage it
    // allocates on, SDN.Use on every bridge, and Sys.Modify on / for a privileged container.
    requirePrivileges(ctx.acl, `/vms/${vmid(ctx)}`, ["VM.Allocate"]);
    for (const s of containerStorages(ctx.params))
      requirePrivileges(ctx.acl, `/storage/${s}`, ["Datastore.AllocateSpace"]);
    for (const b of bridgesUsed(ctx.params))
      requirePrivileges(ctx.acl, `/sdn/zones/localnetwork/${b}`, ["SDN.Use"]);
    if (ctx.params["unprivileged"] !== "1") requirePrivileges(ctx.acl, "/", ["Sys.Modify"]);
    return new SimLxc(ctx.cluster).create(node(ctx), ctx.params, ctx.user);
  },

  "DELETE /nodes/{node}/lxc/{vmid}": (ctx) =>
    new SimLxc(ctx.cluster).destroy(node(ctx), vmid(ctx), ctx.params, ctx.user),

  "GET /nodes/{node}/lxc/{vmid}/config": (ctx) =>
    ctx.cluster.typedConfig(ctx.cluster.ct(node(ctx), vmid(ctx))),

  "GET /nodes/{node}/lxc/{vmid}/status/current": (ctx) =>
    containerStatus(ctx, ctx.cluster.ct(node(ctx), vmid(ctx)).vmid, true),

  "POST /nodes/{node}/lxc/{vmid}/status/start": (ctx) =>
    new SimLxc(ctx.cluster).power(node(ctx), vmid(ctx), "start", ctx.user, ctx.params["skiplock"] === "1"),
  "POST /nodes/{node}/lxc/{vmid}/status/stop": (ctx) =>
    new SimLxc(ctx.cluster).power(node(ctx), vmid(ctx), "stop", ctx.user, ctx.params["skiplock"] === "1"),
  "POST /nodes/{node}/lxc/{vmid}/status/shutdown": (ctx) =>
    new SimLxc(ctx.cluster).power(node(ctx), vmid(ctx), "shutdown", ctx.user, false),

  "GET /nodes/{node}/storage": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    const content = ctx.params["content"] ? splitList(ctx.params["content"]) : undefined;
    return storageSummaries(ctx, node(ctx)).filter(
      (s) =>
        (!ctx.params["storage"] || s.storage === ctx.params["storage"]) &&
        (!content || content.some((c) => s.content.split(",").includes(c))),
    );
  },

  "GET /nodes/{node}/storage/{storage}/status": (ctx) => {
    const s = storageSummaries(ctx, node(ctx)).find((x) => x.storage === ctx.params["storage"]);
    if (!s) ctx.cluster.storage(node(ctx), ctx.params["storage"]!);
    const { storage: _name, used_fraction: _fraction, ...status } = s!;
    return status;
  },

  // Storage/Content.pm index: one entry per volume, the fields Proxmox lists (no internal bookkeeping).
  "GET /nodes/{node}/storage/{storage}/content": (ctx) => {
    const volumes = ctx.cluster.volumesOf(node(ctx), ctx.params["storage"]!);
    return volumes
      .filter((v) => !ctx.params["content"] || v.content === ctx.params["content"])
      .filter((v) => !ctx.params["vmid"] || v.vmid === Number(ctx.params["vmid"]))
      .map(volumeListing);
  },

  "GET /nodes/{node}/storage/{storage}/content/{volume}": (ctx) => {
    const volid = volumeId(ctx);
    // "read access for the volume": Datastore.Audit or Datastore.AllocateSpace on its storage.
    const storeid = volid.slice(0, volid.indexOf(":"));
    if (!hasPrivilege(ctx.acl, `/storage/${storeid}`, "Datastore.AllocateSpace"))
      requirePrivileges(ctx.acl, `/storage/${storeid}`, ["Datastore.Audit"]);
    const v = ctx.cluster.findVolume(node(ctx), volid);
    if (!v) die(`volume '${volid}' does not exist`);
    return { format: v!.format, size: v!.size, used: v!.size, path: volumePath(ctx, v!.volid) };
  },

  // Datastore.Allocate on the storage (the backup-volume exception via VM.Backup is not simulated).
  "DELETE /nodes/{node}/storage/{storage}/content/{volume}": (ctx) => {
    const volid = volumeId(ctx);
    requirePrivileges(ctx.acl, `/storage/${volid.slice(0, volid.indexOf(":"))}`, ["Datastore.Allocate"]);
    return ctx.cluster.deleteVolume(node(ctx), ctx.params["storage"]!, volid, ctx.user);
  },

  "POST /nodes/{node}/storage/{storage}/download-url": (ctx) =>
    ctx.cluster.download(node(ctx), ctx.params["storage"]!, ctx.params, ctx.user, ctx.fetchFile),

  "GET /cluster/ha/resources": (ctx) =>
    [...ctx.cluster.ha.resources.values()]
      .filter((r) => !ctx.params["type"] || r.sid.startsWith(`${ctx.params["type"]}:`))
      .map((r) => ({ ...r, type: r.sid.split(":")[0], digest: "" })),
  "POST /cluster/ha/resources": (ctx) => ctx.cluster.addHaResource(ctx.params),
  "GET /cluster/ha/resources/{sid}": (ctx) => {
    const r = ctx.cluster.ha.resource(ctx.params["sid"]!);
    return { ...r, type: r.sid.split(":")[0], digest: "" };
  },
  "PUT /cluster/ha/resources/{sid}": (ctx) => ctx.cluster.ha.update(ctx.params["sid"]!, ctx.params),
  "DELETE /cluster/ha/resources/{sid}": (ctx) =>
    ctx.cluster.ha.delete(ctx.params["sid"]!, ctx.params["purge"] !== "0"),

  "GET /cluster/ha/rules": (ctx) =>
    [...ctx.cluster.ha.rules.values()]
      .filter((r) => !ctx.params["type"] || r.type === ctx.params["type"])
      .filter((r) => !ctx.params["resource"] || splitList(r.resources).includes(ctx.params["resource"]!))
      .map(haRule),
  "POST /cluster/ha/rules": (ctx) => ctx.cluster.ha.addRule(ctx.params),
  "GET /cluster/ha/rules/{rule}": (ctx) => haRule(ctx.cluster.ha.rule(ctx.params["rule"]!)),
  "PUT /cluster/ha/rules/{rule}": (ctx) => ctx.cluster.ha.updateRule(ctx.params["rule"]!, ctx.params),
  "DELETE /cluster/ha/rules/{rule}": (ctx) => ctx.cluster.ha.deleteRule(ctx.params["rule"]!),

  "POST /nodes/{node}/vzdump": (ctx) => {
    // vzdump: VM.Backup on each guest and Datastore.AllocateSpace on the target storage.
    for (const id of splitList(ctx.params["vmid"] ?? ""))
      requirePrivileges(ctx.acl, `/vms/${id}`, ["VM.Backup"]);
    requirePrivileges(ctx.acl, `/storage/${ctx.params["storage"] ?? "local"}`, ["Datastore.AllocateSpace"]);
    return ctx.cluster.backup(node(ctx), ctx.params, ctx.user);
  },

  // Tasks.pm node_tasks: newest first; without Sys.Audit on the node only the caller's own tasks.
  "GET /nodes/{node}/tasks": (ctx) => {
    ctx.cluster.assertNode(node(ctx));
    const p = ctx.params;
    const audit = hasPrivilege(ctx.acl, `/nodes/${node(ctx)}`, "Sys.Audit");
    const statusFilter = p["statusfilter"] ? splitList(p["statusfilter"]) : undefined;
    const list = [...ctx.tasks.tasks.values()]
      .filter((t) => t.node === node(ctx))
      .filter((t) => audit || t.user === ctx.user)
      .filter((t) =>
        p["source"] === "active" ? t.status === "running" : p["source"] === "all" || t.status === "stopped",
      )
      .filter((t) => !p["typefilter"] || t.type === p["typefilter"])
      .filter((t) => !p["vmid"] || t.id === p["vmid"])
      .filter((t) => !p["userfilter"] || t.user.includes(p["userfilter"]))
      .filter((t) => !p["since"] || t.starttime >= Number(p["since"]))
      .filter((t) => !p["until"] || t.starttime <= Number(p["until"]))
      .filter((t) => p["errors"] !== "1" || (t.status === "stopped" && t.exitstatus !== "OK"))
      .filter((t) => {
        if (!statusFilter) return true;
        const state =
          t.status === "running"
            ? "active"
            : t.exitstatus === "OK"
              ? "ok"
              : /^WARNINGS/.test(t.exitstatus ?? "")
                ? "warning"
                : "error";
        return statusFilter.includes(state);
      })
      .sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    const start = Number(p["start"] ?? 0);
    const limit = Number(p["limit"] ?? 50);
    return new WithTotal(
      list.slice(start, start + limit).map((t) => ({
        upid: t.upid,
        node: t.node,
        pid: t.pid,
        pstart: t.pstart,
        starttime: t.starttime,
        type: t.type,
        id: t.id,
        user: t.user,
        ...(t.status === "stopped" ? { status: t.exitstatus, endtime: t.endtime } : {}),
      })),
      list.length,
    );
  },

  "GET /nodes/{node}/tasks/{upid}/status": (ctx) => {
    const t = task(ctx);
    return {
      upid: t.upid,
      node: t.node,
      pid: t.pid,
      pstart: t.pstart,
      starttime: t.starttime,
      type: t.type,
      id: t.id,
      user: t.user,
      status: t.status,
      ...(t.exitstatus !== undefined ? { exitstatus: t.exitstatus } : {}),
    };
  },

  "GET /nodes/{node}/tasks/{upid}/log": (ctx) => {
    const t = task(ctx);
    const start = Number(ctx.params["start"] ?? 0);
    const limit = Number(ctx.params["limit"] ?? 50);
    const lines = t.log.length ? t.log : ["no content"];
    return new WithTotal(
      lines.slice(start, start + limit).map((text, i) => ({ n: start + i + 1, t: text })),
      lines.length,
    );
  },
};
