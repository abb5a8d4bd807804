// The typed Proxmox VE client the controllers use: one method per operation, every response checked by
// a zod schema, every asynchronous call returning a parsed UPID that waitForTask can follow.
import { z } from "zod";
import { ProxmoxApiError, ProxmoxTaskFailedError, ProxmoxTaskTimeoutError } from "./errors.ts";
import {
  agentPingSchema,
  type HaResource,
  type HaRuleInfo,
  haResourceSchema,
  haRuleSchema,
  nextIdSchema,
  nodeResourceSchema,
  nodeSchema,
  type ProxmoxNode,
  type StorageInfo,
  type StorageVolume,
  storageContentSchema,
  storageResourceSchema,
  storageSchema,
  type TaskStatus,
  taskLogSchema,
  taskStatusSchema,
  upidTextSchema,
  type VmConfig,
  type VmResource,
  type VmStatus,
  versionSchema,
  vmConfigSchema,
  vmResourceSchema,
  vmStatusSchema,
} from "./schemas.ts";
import { type Params, ProxmoxTransport, type TransportOptions } from "./transport.ts";
import { parseUpid, taskSucceeded, type Upid } from "./upid.ts";

export type ProxmoxClientOptions = TransportOptions;

/** Config keys and values as Proxmox takes them (`scsi0: "local-lvm:32"`, `cores: 4`, `agent: true`). */
export type VmConfigInput = Record<string, string | number | boolean | undefined>;

export interface WaitOptions {
  /** Give up after this long; default 10 minutes. */
  timeoutMs?: number;
  /** First poll delay, doubled up to maxDelayMs; defaults 100 ms and 2 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How many log lines a failure carries; default 10. */
  logLines?: number;
  signal?: AbortSignal;
}

export interface TaskResult {
  upid: Upid;
  /** "OK" or "WARNINGS: n". */
  exitstatus: string;
}

export type HaRuleInput =
  | {
      rule: string;
      type: "node-affinity";
      resources: string[];
      /** Node names, optionally with priority: "pve1:2". */
      nodes: string[];
      strict?: boolean;
      disable?: boolean;
      comment?: string;
    }
  | {
      rule: string;
      type: "resource-affinity";
      resources: string[];
      /** "negative" keeps the resources on different nodes (control planes apart). */
      affinity: "positive" | "negative";
      disable?: boolean;
      comment?: string;
    };

const upid = upidTextSchema.transform((t) => parseUpid(t));
const nothing = z.unknown();

const seg = (s: string | number) => encodeURIComponent(String(s));

export class ProxmoxClient {
  readonly transport: ProxmoxTransport;

  constructor(options: ProxmoxClientOptions) {
    this.transport = new ProxmoxTransport(options);
  }

  /**
   * A view of this client whose every call is bound to `signal` (a reconcile's ctx.signal): once it
   * aborts, nothing more is sent to Proxmox and calls in flight are cancelled. Shares the connection pool.
   */
  withSignal(signal: AbortSignal): ProxmoxClient {
    const view = Object.create(this) as ProxmoxClient;
    Object.defineProperty(view, "transport", { value: this.transport.withSignal(signal) });
    return view;
  }

  /** Number of HTTP requests sent so far (retries included). */
  get requestCount(): number {
    return this.transport.requestCount;
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  // ---------- cluster ----------

  version() {
    return this.transport.call("GET", "/version", {}, versionSchema);
  }

  /**
   * The token's effective privileges (GET /access/permissions): path → privilege → propagate flag. With
   * `path`, exactly that path as Proxmox computes it (inheritance included).
   */
  permissions(path?: string): Promise<Record<string, Record<string, number>>> {
    return this.transport.call(
      "GET",
      "/access/permissions",
      { path },
      z.record(z.string(), z.record(z.string(), z.number())),
    );
  }

  listNodes(): Promise<ProxmoxNode[]> {
    return this.transport.call("GET", "/nodes", {}, z.array(nodeSchema));
  }

  /** The node's network interfaces (`type: "bridge"` for its Linux bridges). */
  listNetworks(node: string, options: { type?: string } = {}): Promise<{ iface: string; type: string }[]> {
    return this.transport.call(
      "GET",
      `/nodes/${seg(node)}/network`,
      { type: options.type },
      z.array(z.looseObject({ iface: z.string(), type: z.string() })),
    );
  }

  /** Every VM of the cluster in one read: the steady-state check costs one request, not one per VM. */
  listVms(): Promise<VmResource[]> {
    return this.transport.call("GET", "/cluster/resources", { type: "vm" }, z.array(vmResourceSchema));
  }

  /** Where a VM is now (HA may have moved it), from the same single cluster-wide read; undefined if absent. */
  async locateVm(vmid: number): Promise<VmResource | undefined> {
    return (await this.listVms()).find((v) => v.vmid === vmid);
  }

  listNodeResources() {
    return this.transport.call("GET", "/cluster/resources", { type: "node" }, z.array(nodeResourceSchema));
  }

  listStorageResources() {
    return this.transport.call(
      "GET",
      "/cluster/resources",
      { type: "storage" },
      z.array(storageResourceSchema),
    );
  }

  /** The next free VM id, or — with `vmid` — that id if it is free (400 if taken). Not a reservation. */
  nextId(vmid?: number): Promise<number> {
    return this.transport.call("GET", "/cluster/nextid", { vmid }, nextIdSchema);
  }

  // ---------- VMs ----------

  /**
   * Creates a VM (task qmcreate). Never retried after the request may have reached Proxmox: on a
   * network error, look the VM id up before trying again.
   */
  createVm(
    node: string,
    vmid: number,
    config: VmConfigInput,
    options: { start?: boolean; haManaged?: boolean } = {},
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/qemu`,
      { ...config, vmid, start: options.start, "ha-managed": options.haManaged },
      upid,
    );
  }

  getConfig(node: string, vmid: number): Promise<VmConfig> {
    return this.transport.call("GET", `/nodes/${seg(node)}/qemu/${vmid}/config`, {}, vmConfigSchema);
  }

  /** Synchronous config change (PUT). `digest` makes it fail if someone changed the config meanwhile. */
  async updateConfig(
    node: string,
    vmid: number,
    changes: VmConfigInput,
    options: { delete?: string[]; digest?: string } = {},
  ): Promise<void> {
    await this.transport.call(
      "PUT",
      `/nodes/${seg(node)}/qemu/${vmid}/config`,
      {
        ...changes,
        delete: options.delete?.length ? options.delete.join(",") : undefined,
        digest: options.digest,
      },
      nothing,
    );
  }

  /** Asynchronous config change (POST, task qmconfig), for changes that allocate disks. */
  updateConfigAsync(
    node: string,
    vmid: number,
    changes: VmConfigInput,
    options: { delete?: string[]; digest?: string } = {},
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/qemu/${vmid}/config`,
      {
        ...changes,
        delete: options.delete?.length ? options.delete.join(",") : undefined,
        digest: options.digest,
      },
      upid,
    );
  }

  /** Grows a disk to `size` ("40G") or by it ("+10G"); Proxmox refuses to shrink. */
  resizeDisk(node: string, vmid: number, disk: string, size: string) {
    return this.transport.call("PUT", `/nodes/${seg(node)}/qemu/${vmid}/resize`, { disk, size }, upid);
  }

  status(node: string, vmid: number): Promise<VmStatus> {
    return this.transport.call("GET", `/nodes/${seg(node)}/qemu/${vmid}/status/current`, {}, vmStatusSchema);
  }

  start(node: string, vmid: number) {
    return this.transport.call("POST", `/nodes/${seg(node)}/qemu/${vmid}/status/start`, {}, upid);
  }

  /** ACPI shutdown; `forceStop` stops the VM if it has not shut down after `timeoutSeconds`. */
  shutdown(node: string, vmid: number, options: { timeoutSeconds?: number; forceStop?: boolean } = {}) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/qemu/${vmid}/status/shutdown`,
      { timeout: options.timeoutSeconds, forceStop: options.forceStop },
      upid,
    );
  }

  stop(node: string, vmid: number) {
    return this.transport.call("POST", `/nodes/${seg(node)}/qemu/${vmid}/status/stop`, {}, upid);
  }

  reboot(node: string, vmid: number) {
    return this.transport.call("POST", `/nodes/${seg(node)}/qemu/${vmid}/status/reboot`, {}, upid);
  }

  /**
   * Destroys a stopped VM. `purge` also removes it from HA, backup and replication jobs (without it
   * Proxmox refuses to delete an HA-managed VM); `destroyUnreferencedDisks` removes disks of this VM id
   * that the config no longer lists.
   */
  deleteVm(
    node: string,
    vmid: number,
    options: { purge?: boolean; destroyUnreferencedDisks?: boolean } = {},
  ) {
    return this.transport.call(
      "DELETE",
      `/nodes/${seg(node)}/qemu/${vmid}`,
      { purge: options.purge, "destroy-unreferenced-disks": options.destroyUnreferencedDisks },
      upid,
    );
  }

  /** Replaces the VM's tags. */
  setTags(node: string, vmid: number, tags: string[]): Promise<void> {
    return tags.length
      ? this.updateConfig(node, vmid, { tags: formatTags(tags) })
      : this.updateConfig(node, vmid, {}, { delete: ["tags"] });
  }

  /** True when the guest agent answers; false when the VM or its agent is not running. */
  async agentPing(node: string, vmid: number): Promise<boolean> {
    try {
      await this.transport.call("POST", `/nodes/${seg(node)}/qemu/${vmid}/agent/ping`, {}, agentPingSchema);
      return true;
    } catch (err) {
      if (err instanceof ProxmoxApiError && err.status === 500 && /not running/.test(err.proxmoxMessage))
        return false;
      throw err;
    }
  }

  // ---------- containers (LXC) ----------

  /**
   * Creates a container from a template volume (`<storage>:vztmpl/<file>`, task vzcreate); `rootfs`
   * as `<storage>:<GiB>`. Never retried after the request may have reached Proxmox.
   */
  createContainer(
    node: string,
    vmid: number,
    config: VmConfigInput & { ostemplate: string },
    options: { start?: boolean; haManaged?: boolean } = {},
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/lxc`,
      { ...config, vmid, start: options.start, "ha-managed": options.haManaged },
      upid,
    );
  }

  getContainerConfig(node: string, vmid: number): Promise<VmConfig> {
    return this.transport.call("GET", `/nodes/${seg(node)}/lxc/${vmid}/config`, {}, vmConfigSchema);
  }

  containerStatus(node: string, vmid: number): Promise<VmStatus> {
    return this.transport.call("GET", `/nodes/${seg(node)}/lxc/${vmid}/status/current`, {}, vmStatusSchema);
  }

  /** Task vzstart (hastart when HA manages it); Proxmox refuses a running container up front. */
  startContainer(node: string, vmid: number) {
    return this.transport.call("POST", `/nodes/${seg(node)}/lxc/${vmid}/status/start`, {}, upid);
  }

  /**
   * Clean shutdown (task vzshutdown, hastop when HA manages it); `forceStop` stops the container if it
   * has not shut down after `timeoutSeconds` (Proxmox's default 60). Refused up front when not running.
   */
  shutdownContainer(
    node: string,
    vmid: number,
    options: { timeoutSeconds?: number; forceStop?: boolean } = {},
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/lxc/${vmid}/status/shutdown`,
      { timeout: options.timeoutSeconds, forceStop: options.forceStop },
      upid,
    );
  }

  /** Hard stop (task vzstop); refused up front when not running. */
  stopContainer(node: string, vmid: number) {
    return this.transport.call("POST", `/nodes/${seg(node)}/lxc/${vmid}/status/stop`, {}, upid);
  }

  /**
   * Destroys a stopped container (task vzdestroy). `purge` also removes it from HA, backup and
   * replication jobs (without it Proxmox refuses an HA-managed one); `destroyUnreferencedDisks` removes
   * volumes of this id that the config no longer lists.
   */
  deleteContainer(
    node: string,
    vmid: number,
    options: { purge?: boolean; destroyUnreferencedDisks?: boolean } = {},
  ) {
    return this.transport.call(
      "DELETE",
      `/nodes/${seg(node)}/lxc/${vmid}`,
      { purge: options.purge, "destroy-unreferenced-disks": options.destroyUnreferencedDisks },
      upid,
    );
  }

  // ---------- storage ----------

  listStorages(node: string, options: { content?: string } = {}): Promise<StorageInfo[]> {
    return this.transport.call(
      "GET",
      `/nodes/${seg(node)}/storage`,
      { content: options.content },
      z.array(storageSchema),
    );
  }

  storageContent(
    node: string,
    storage: string,
    options: { content?: string; vmid?: number } = {},
  ): Promise<StorageVolume[]> {
    return this.transport.call(
      "GET",
      `/nodes/${seg(node)}/storage/${seg(storage)}/content`,
      { content: options.content, vmid: options.vmid },
      z.array(storageContentSchema),
    );
  }

  /** Lets the node download a file (task download); the volume appears once the task is done. */
  downloadUrl(
    node: string,
    storage: string,
    request: {
      url: string;
      content: "iso" | "vztmpl" | "import";
      filename: string;
      checksum?: { algorithm: "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512"; value: string };
      /** Only for content iso; Proxmox cannot decompress xz. */
      compression?: "gz" | "lzo" | "zst" | "bz2";
      verifyCertificates?: boolean;
    },
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/storage/${seg(storage)}/download-url`,
      {
        url: request.url,
        content: request.content,
        filename: request.filename,
        checksum: request.checksum?.value,
        "checksum-algorithm": request.checksum?.algorithm,
        compression: request.compression,
        "verify-certificates": request.verifyCertificates,
      },
      upid,
    );
  }

  // ---------- HA ----------

  listHaResources(): Promise<HaResource[]> {
    return this.transport.call("GET", "/cluster/ha/resources", {}, z.array(haResourceSchema));
  }

  getHaResource(sid: string): Promise<HaResource> {
    return this.transport.call("GET", `/cluster/ha/resources/${seg(sid)}`, {}, haResourceSchema);
  }

  async addHaResource(resource: {
    sid: string;
    state?: "started" | "stopped" | "disabled" | "ignored";
    comment?: string;
    maxRestart?: number;
    maxRelocate?: number;
    failback?: boolean;
  }): Promise<void> {
    await this.transport.call(
      "POST",
      "/cluster/ha/resources",
      {
        sid: resource.sid,
        state: resource.state,
        comment: resource.comment,
        max_restart: resource.maxRestart,
        max_relocate: resource.maxRelocate,
        failback: resource.failback,
      },
      nothing,
    );
  }

  async updateHaResource(sid: string, changes: { state?: string; comment?: string }): Promise<void> {
    await this.transport.call("PUT", `/cluster/ha/resources/${seg(sid)}`, changes, nothing);
  }

  /** Removes the resource from HA; `purge` (default on in Proxmox) also drops it from HA rules. */
  async deleteHaResource(sid: string, options: { purge?: boolean } = {}): Promise<void> {
    await this.transport.call(
      "DELETE",
      `/cluster/ha/resources/${seg(sid)}`,
      { purge: options.purge },
      nothing,
    );
  }

  listHaRules(): Promise<HaRuleInfo[]> {
    return this.transport.call("GET", "/cluster/ha/rules", {}, z.array(haRuleSchema));
  }

  getHaRule(rule: string): Promise<HaRuleInfo> {
    return this.transport.call("GET", `/cluster/ha/rules/${seg(rule)}`, {}, haRuleSchema);
  }

  async addHaRule(rule: HaRuleInput): Promise<void> {
    await this.transport.call("POST", "/cluster/ha/rules", haRuleParams(rule), nothing);
  }

  async updateHaRule(rule: HaRuleInput): Promise<void> {
    await this.transport.call("PUT", `/cluster/ha/rules/${seg(rule.rule)}`, haRuleParams(rule), nothing);
  }

  async deleteHaRule(rule: string): Promise<void> {
    await this.transport.call("DELETE", `/cluster/ha/rules/${seg(rule)}`, {}, nothing);
  }

  // ---------- backup ----------

  /**
   * vzdump of one guest, VM or container (task vzdump); the archive (`vzdump-qemu-…` or `vzdump-lxc-…`)
   * shows up in the storage's `backup` content.
   */
  backup(
    node: string,
    request: {
      vmid: number;
      storage: string;
      mode?: "snapshot" | "suspend" | "stop";
      compress?: "0" | "1" | "gzip" | "lzo" | "zstd";
      notesTemplate?: string;
    },
  ) {
    return this.transport.call(
      "POST",
      `/nodes/${seg(node)}/vzdump`,
      {
        vmid: request.vmid,
        storage: request.storage,
        mode: request.mode,
        compress: request.compress,
        "notes-template": request.notesTemplate,
      },
      upid,
    );
  }

  // ---------- tasks ----------

  /**
   * A node's tasks, newest first; `source: "active"` for running ones, `typefilter` e.g. "download",
   * `vmid` the guest a task is about.
   */
  listTasks(
    node: string,
    options: { source?: "active" | "archive" | "all"; typefilter?: string; vmid?: number } = {},
  ): Promise<{ upid: string; type: string; id?: string; status?: string }[]> {
    return this.transport.call(
      "GET",
      `/nodes/${seg(node)}/tasks`,
      { source: options.source, typefilter: options.typefilter, vmid: options.vmid },
      z.array(
        z.looseObject({
          upid: z.string(),
          type: z.string(),
          id: z.string().optional(),
          status: z.string().optional(),
        }),
      ),
    );
  }

  taskStatus(task: Upid): Promise<TaskStatus> {
    return this.transport.call(
      "GET",
      `/nodes/${seg(task.node)}/tasks/${seg(task.raw)}/status`,
      {},
      taskStatusSchema,
    );
  }

  async taskLog(task: Upid, options: { start?: number; limit?: number } = {}): Promise<string[]> {
    const lines = await this.transport.call(
      "GET",
      `/nodes/${seg(task.node)}/tasks/${seg(task.raw)}/log`,
      { start: options.start, limit: options.limit },
      taskLogSchema,
    );
    return lines.map((l) => l.t);
  }

  /**
   * Polls the task on its own node with exponential backoff until it stops. Resolves with the exit
   * status when it is OK or WARNINGS; a failed task throws ProxmoxTaskFailedError with the log's last
   * lines; the deadline throws ProxmoxTaskTimeoutError.
   */
  async waitForTask(task: Upid, options: WaitOptions = {}): Promise<TaskResult> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    let delay = options.initialDelayMs ?? 100;
    for (;;) {
      options.signal?.throwIfAborted();
      const status = await this.taskStatus(task);
      if (status.status === "stopped") {
        const exitstatus = status.exitstatus ?? "unexpected status";
        if (taskSucceeded(exitstatus)) return { upid: task, exitstatus };
        throw new ProxmoxTaskFailedError(
          task.raw,
          exitstatus,
          await this.logTail(task, options.logLines ?? 10),
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ProxmoxTaskTimeoutError(task.raw, timeoutMs);
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 2_000);
    }
  }

  private async logTail(task: Upid, lines: number): Promise<string[]> {
    try {
      const all = await this.taskLog(task, { start: 0, limit: 5_000 });
      return all.slice(-lines);
    } catch {
      return [];
    }
  }
}

/** Proxmox tags: `;`-separated, lowercase recommended; characters outside PVE's tag pattern are rejected. */
export function formatTags(tags: string[]): string {
  for (const t of tags) {
    if (!/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t)) throw new Error(`invalid Proxmox tag ${JSON.stringify(t)}`);
  }
  return [...new Set(tags)].sort().join(";");
}

export interface CloudInitNetwork {
  /** Storage that holds the cloud-init drive (becomes `ide2: <storage>:cloudinit`). */
  storage: string;
  /** Address with prefix length, e.g. 10.0.3.16/24; "dhcp" for DHCP. */
  address: string;
  gateway?: string;
  nameservers?: string[];
  searchdomain?: string;
}

/** VM config keys for Proxmox's own cloud-init drive carrying the static network of interface 0. */
export function cloudInitConfig(net: CloudInitNetwork): VmConfigInput {
  const ipconfig =
    net.address === "dhcp" ? "ip=dhcp" : `ip=${net.address}${net.gateway ? `,gw=${net.gateway}` : ""}`;
  return {
    ide2: `${net.storage}:cloudinit`,
    ipconfig0: ipconfig,
    nameserver: net.nameservers?.length ? net.nameservers.join(" ") : undefined,
    searchdomain: net.searchdomain,
  };
}

export function haRuleParams(rule: HaRuleInput): Params {
  const common = {
    rule: rule.rule,
    type: rule.type,
    resources: rule.resources.join(","),
    disable: rule.disable,
    comment: rule.comment,
  };
  return rule.type === "node-affinity"
    ? { ...common, nodes: rule.nodes.join(","), strict: rule.strict }
    : { ...common, affinity: rule.affinity };
}
