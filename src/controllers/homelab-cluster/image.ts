// Phase 2: the Talos nocloud disk image for schematic + version on the image storage, downloaded once.
//
// Path (PVE 9): download-url with content `import` of Image Factory's uncompressed `nocloud-amd64.qcow2`,
// then each VM disk is `<diskStorage>:0,import-from=<volid>`. Why: download-url decompresses only for
// content `iso` (and has no xz at all), and import-from refuses `iso` volumes; content `import` takes
// qcow2/raw/vmdk and feeds import-from (pve-storage Status.pm download_url, qemu-server Qemu.pm
// import-from checks; research/cluster-lifecycle.md). No SSH, no snippets.
//
// Once: the storage's content is listed before downloading (a file named by version and schematic is
// reused), and a started download's UPID is kept in status so a restart waits for it instead of starting
// another one.
import { parseUpid } from "../../proxmox/index.ts";
import { isOurVm, talosImage } from "./names.ts";
import { blocked, done, type Outcome, waiting } from "./outcome.ts";
import { milestone, type Scope } from "./scope.ts";
import { imageNodeOf } from "./validate.ts";

/** Nodes whose storage must hold the image: one for shared storage, else every node still needing a VM. */
async function targets(scope: Scope, needed: string[]): Promise<string[]> {
  const pve = await scope.proxmox();
  const node = imageNodeOf(scope.spec);
  const storage = (await pve.listStorages(node)).find((s) => s.storage === scope.spec.proxmox.imageStorage);
  return storage?.shared ? [node] : [...new Set(needed)];
}

export async function ensureImage(scope: Scope): Promise<Outcome> {
  const { spec } = scope;
  const image = talosImage(spec);
  const volid = image.volid(spec.proxmox.imageStorage);
  // The image only feeds VM creation: once every VM exists, there is nothing to check (steady state).
  const vms = await scope.vms();
  const needed = spec.nodes.filter(
    (n) => !vms.some((v) => v.vmid === n.vmid && isOurVm(v.tags, scope.name, n.name)),
  );
  const known = scope.previous.image;
  if (needed.length === 0) {
    if (known) scope.status.image = known;
    return done("ImageNotNeeded", `every VM exists; new VMs are created from ${volid}`);
  }

  const pve = await scope.proxmox();
  const pending: string[] = [];
  for (const node of await targets(
    scope,
    needed.map((n) => n.proxmoxNode),
  )) {
    // A download we started: while it runs, its status is the one call a pass costs.
    let task = known?.tasks?.find((t) => t.startsWith(`UPID:${node}:`));
    if (!task) {
      // Started by a run that died before writing its UPID down: Proxmox's own task list still has it
      // (download-url names its task after the file), so it is waited for, never started twice.
      const running = await pve.listTasks(node, { source: "active", typefilter: "download" });
      task = running.find((t) => t.id === image.filename)?.upid;
      if (task) scope.status.image = { url: image.url, tasks: [...(known?.tasks ?? []), task] };
    }
    const st = task ? await pve.taskStatus(parseUpid(task)) : undefined;
    if (st?.status === "running") {
      pending.push(`${node}: downloading`);
      continue;
    }
    const content = await pve.storageContent(node, spec.proxmox.imageStorage, { content: "import" });
    if (content.some((v) => v.volid === volid)) continue;
    if (task && st) {
      // Stopped but no volume: it failed. Say why, forget it, and start again on the next pass.
      scope.status.image = { url: image.url, tasks: (known?.tasks ?? []).filter((t) => t !== task) };
      const log = (await pve.taskLog(parseUpid(task), { start: 0, limit: 500 })).slice(-2).join(" | ");
      return blocked(
        "ImageDownloadFailed",
        `download on ${node} ended ${st.exitstatus}: ${log}`,
        scope.opts.timings.blockedMs,
      );
    }
    const upid = await pve.downloadUrl(node, spec.proxmox.imageStorage, {
      url: image.url,
      content: "import",
      filename: image.filename,
      ...(spec.talos.imageChecksum ? { checksum: spec.talos.imageChecksum } : {}),
    });
    const tasks = [...(scope.status.image?.tasks ?? known?.tasks ?? []), upid.raw];
    scope.status.image = { url: image.url, tasks };
    // Written at once: a restart must find this download rather than start a second one.
    await scope.writeProgress();
    milestone(scope, "ImageDownloading", "Download", `downloading ${image.url} to ${volid} on ${node}`);
    pending.push(`${node}: download started`);
  }
  if (pending.length) {
    return waiting(
      "ImageDownloading",
      `${image.url} → ${volid} (${pending.join(", ")})`,
      scope.opts.timings.pollMs,
    );
  }
  if (known?.volumeID !== volid) milestone(scope, "ImageDownloaded", "Download", `${volid} is ready`);
  scope.status.image = { url: image.url, volumeID: volid };
  return done(
    "ImagePresent",
    `${volid}${spec.talos.imageChecksum ? ` (${spec.talos.imageChecksum.algorithm} verified by Proxmox)` : ""}`,
  );
}
