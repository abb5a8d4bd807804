// The image path as Proxmox VE 9 guards it (pve-storage Status.pm download_url, PVE::Tools
// download_file_from_url, qemu-server's import-from checks): every refusal, in the place Proxmox makes
// it — the request (400/500) or the download task.
import { createHash } from "node:crypto";
import { type Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../client.ts";
import { ProxmoxApiError, type ProxmoxParameterError } from "../errors.ts";
import { parseUpid, type Upid } from "../upid.ts";
import { type ProxmoxSimulator, simulatedDownload } from "./server.ts";
import { type SimulatorWithClient, startSimulatorWithClient, taskOutcome } from "./test-support.ts";

let rig: SimulatorWithClient;
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let agent: Agent;
const FACTORY =
  "https://factory.talos.dev/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.11.0";
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  rig = await startSimulatorWithClient(
    {
      taskDurationMs: 10,
      storages: [
        {
          storage: "local",
          type: "dir",
          content: ["iso", "vztmpl", "backup"],
          shared: false,
          total: 2 ** 40,
        },
        {
          storage: "cephfs",
          type: "cephfs",
          content: ["iso", "import", "snippets"],
          shared: true,
          total: 2 ** 40,
        },
        {
          storage: "ceph-vm-disks",
          type: "rbd",
          content: ["images", "rootdir"],
          shared: true,
          total: 2 ** 40,
        },
        { storage: "pbs", type: "pbs", content: ["backup"], shared: true, total: 2 ** 40 },
        {
          storage: "old-nfs",
          type: "nfs",
          content: ["iso", "import"],
          shared: true,
          total: 2 ** 40,
          disabled: true,
        },
      ],
      remoteFiles: { [`${FACTORY}/known.qcow2`]: Buffer.from("a known qcow2 image") },
      tokens: [{ tokenId: "audit@pve!ro", secret: "ro", acl: { "/storage": ["Datastore.Audit"] } }],
    },
    { timeoutMs: 10_000 },
  );
  ({ sim, client, agent } = rig);
});
afterAll(() => rig.stop());

type Download = Parameters<ProxmoxClient["downloadUrl"]>[2];
const download = (storage: string, request: Download) => client.downloadUrl("pve1", storage, request);

const outcome = (task: Promise<Upid>) => taskOutcome(client, task);

async function refusal(call: Promise<unknown>) {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxApiError);
  const api = err as ProxmoxApiError;
  return { status: api.status, message: api.proxmoxMessage, errors: (err as ProxmoxParameterError).errors };
}

const volids = async (storage: string) => (await client.storageContent("pve1", storage)).map((v) => v.volid);

describe("checksums, for any URL", () => {
  it("a mismatch fails the task for a URL the simulator cannot reach, and no volume appears", async () => {
    const url = `${FACTORY}/nocloud-amd64.qcow2`;
    const wrong = "ab".repeat(32);
    expect(
      await outcome(
        download("cephfs", {
          url,
          content: "import",
          filename: "wrong.qcow2",
          checksum: { algorithm: "sha256", value: wrong },
        }),
      ),
    ).toBe(`checksum mismatch: got '${sha256(simulatedDownload(url))}' != expect '${wrong}'`);
    expect(await volids("cephfs")).not.toContain("cephfs:import/wrong.qcow2");
  });

  it("the URL's content digest passes, in any case of hex digits", async () => {
    const url = `${FACTORY}/nocloud-amd64.qcow2`;
    const right = sha256(simulatedDownload(url)).toUpperCase();
    expect(
      await outcome(
        download("cephfs", {
          url,
          content: "import",
          filename: "talos.qcow2",
          checksum: { algorithm: "sha256", value: right },
        }),
      ),
    ).toBe("OK");
    expect(await volids("cephfs")).toContain("cephfs:import/talos.qcow2");
  });

  it("a published remote file is checked against its own content", async () => {
    const request = (value: string, filename: string) =>
      download("cephfs", {
        url: `${FACTORY}/known.qcow2`,
        content: "import",
        filename,
        checksum: { algorithm: "sha256", value },
      });
    expect(await outcome(request(sha256(Buffer.from("a known qcow2 image")), "known.qcow2"))).toBe("OK");
    expect(
      await outcome(request(sha256(simulatedDownload(`${FACTORY}/known.qcow2`)), "other.qcow2")),
    ).toMatch(/^checksum mismatch/);
  });

  it("an existing file: kept when its checksum matches, refused otherwise (in the task)", async () => {
    const url = `${FACTORY}/nocloud-amd64.iso`;
    const digest = sha256(simulatedDownload(url));
    const iso = (checksum?: string) =>
      download("local", {
        url,
        content: "iso",
        filename: "talos.iso",
        ...(checksum ? { checksum: { algorithm: "sha256" as const, value: checksum } } : {}),
      });
    expect(await outcome(iso())).toBe("OK");
    expect(await outcome(iso())).toBe(
      "refusing to override existing file '/var/lib/vz/template/iso/talos.iso'",
    );
    expect(await outcome(iso("0".repeat(64)))).toBe(
      `checksum mismatch: got '${digest}' != expect '${"0".repeat(64)}', aborting`,
    );
    expect(await outcome(iso(digest))).toBe("OK");
    expect((await volids("local")).filter((v) => v === "local:iso/talos.iso")).toHaveLength(1);
  });
});

describe("what download-url refuses", () => {
  it("decompression of anything but an ISO fails the task; for an ISO it is allowed", async () => {
    expect(
      await outcome(
        download("cephfs", {
          url: `${FACTORY}/x.raw.zst`,
          content: "import",
          filename: "x.raw",
          compression: "zst",
        }),
      ),
    ).toBe("decompression not supported for import");
    expect(
      await outcome(
        download("cephfs", {
          url: `${FACTORY}/x.iso.zst`,
          content: "iso",
          filename: "x.iso",
          compression: "zst",
        }),
      ),
    ).toBe("OK");
  });

  it("xz is not a known compression format (400)", async () => {
    const r = await refusal(
      download("cephfs", {
        url: `${FACTORY}/x.iso.xz`,
        content: "iso",
        filename: "y.iso",
        compression: "xz" as "zst",
      }),
    );
    expect(r.status).toBe(400);
    expect(r.errors).toEqual({
      compression: "value 'xz' does not have a value in the enumeration 'gz, lzo, zst, bz2'",
    });
  });

  it("content import takes only .qcow2, .raw, .vmdk and .ova names", async () => {
    for (const filename of ["talos.raw.xz", "talos.img", "talos.iso", "talos", ".qcow2", "talos.QCOW2"]) {
      const r = await refusal(download("cephfs", { url: `${FACTORY}/x`, content: "import", filename }));
      expect([r.status, r.errors]).toEqual([400, { filename: "invalid filename or wrong extension" }]);
    }
    for (const filename of ["a.qcow2", "a.raw", "a.vmdk", "a.ova"])
      expect(
        await outcome(download("cephfs", { url: `${FACTORY}/${filename}`, content: "import", filename })),
      ).toBe("OK");
  });

  it("the file name is normalized as Storage.pm does before it is checked", async () => {
    expect(
      await outcome(
        download("cephfs", { url: `${FACTORY}/n`, content: "import", filename: "dir/my image.qcow2" }),
      ),
    ).toBe("OK");
    expect(await volids("cephfs")).toContain("cephfs:import/my_image.qcow2");
  });

  it("an ISO needs .iso or .img", async () => {
    const r = await refusal(download("cephfs", { url: `${FACTORY}/x`, content: "iso", filename: "x.raw" }));
    expect([r.status, r.errors]).toEqual([400, { filename: "wrong file extension" }]);
  });

  it("the content type must be enabled on the storage", async () => {
    const r = await refusal(
      download("local", { url: `${FACTORY}/a.qcow2`, content: "import", filename: "a.qcow2" }),
    );
    expect([r.status, r.message]).toEqual([
      500,
      "storage 'local' is not configured for content-type 'import'",
    ]);
  });

  it("the storage must be file based and enabled", async () => {
    expect(
      (
        await refusal(
          download("ceph-vm-disks", { url: `${FACTORY}/a.iso`, content: "iso", filename: "a.iso" }),
        )
      ).message,
    ).toBe("can't upload to storage type 'rbd', not a file based storage!");
    expect(
      (await refusal(download("pbs", { url: `${FACTORY}/a.iso`, content: "iso", filename: "a.iso" })))
        .message,
    ).toBe("can't upload to storage type 'pbs', not a file based storage!");
    expect(
      (await refusal(download("old-nfs", { url: `${FACTORY}/a.iso`, content: "iso", filename: "a.iso" })))
        .message,
    ).toBe("storage 'old-nfs' is disabled");
  });

  it("records each accepted download with its outcome", () => {
    const talos = sim
      .records()
      .filter((r) => r.kind === "download" && r.volid === "cephfs:import/talos.qcow2");
    expect(talos.map((r) => [r.url, r.exitstatus])).toEqual([[`${FACTORY}/nocloud-amd64.qcow2`, "OK"]]);
  });
});

describe("import-from on VM create", () => {
  const create = (vmid: number, scsi0: string) =>
    client.createVm("pve1", vmid, { name: `import-${vmid}`, scsi0, net0: "virtio,bridge=vmbr0" });

  it("imports an import volume onto the disk storage at the source's size", async () => {
    await client.waitForTask(await create(4001, "ceph-vm-disks:0,import-from=cephfs:import/talos.qcow2"));
    expect((await client.getConfig("pve1", 4001))["scsi0"]).toBe(
      // the simulator's default size for a download it cannot fetch: 87 MiB
      "ceph-vm-disks:vm-4001-disk-0,size=87M",
    );
  });

  it("refuses an ISO as source before any task", async () => {
    const r = await refusal(create(4002, "ceph-vm-disks:0,import-from=local:iso/talos.iso"));
    expect([r.status, r.errors]).toEqual([
      400,
      { scsi0: "local:iso/talos.iso has wrong type 'iso' - needs to be 'images' or 'import'" },
    ]);
  });

  it("refuses import-from without <storage>:0", async () => {
    const r = await refusal(create(4003, "ceph-vm-disks:8,import-from=cephfs:import/talos.qcow2"));
    expect(r.errors).toEqual({
      scsi0: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
    });
  });

  it("refuses a target storage without vm images", async () => {
    const r = await refusal(create(4004, "cephfs:0,import-from=cephfs:import/talos.qcow2"));
    expect(r.errors).toEqual({ storage: "storage 'cephfs' does not support vm images" });
  });

  it("an ISO attached as a drive needs media=cdrom; an import volume cannot be attached directly", async () => {
    const iso = await refusal(create(4006, "local:iso/talos.iso"));
    expect(iso.errors).toEqual({ scsi0: "explicit 'media=cdrom' is required for iso images" });
    const imported = await refusal(create(4007, "cephfs:import/talos.qcow2"));
    expect(imported.errors).toEqual({ scsi0: "content type needs to be 'images' or 'iso'" });
    await client.waitForTask(
      await client.createVm("pve1", 4008, { name: "cd", ide2: "local:iso/talos.iso,media=cdrom" }),
    );
  });

  it("a source that does not exist fails the create task, and leaves no VM", async () => {
    expect(await outcome(create(4005, "ceph-vm-disks:0,import-from=cephfs:import/missing.qcow2"))).toBe(
      "unable to create VM 4005 - could not get size of cephfs:import/missing.qcow2",
    );
    expect((await client.listVms()).some((v) => v.vmid === 4005)).toBe(false);
  });
});

describe("storage content listing", () => {
  it("lists Proxmox's fields only", async () => {
    const [volume] = await client.storageContent("pve1", "cephfs", { content: "import" });
    expect(Object.keys(volume!).sort()).toEqual(["content", "ctime", "format", "size", "volid"]);
    expect(volume).toMatchObject({ content: "import", format: "qcow2" });
  });
});

describe("one volume", () => {
  const call = async (method: string, path: string, token = `${sim.tokenId}=${sim.tokenSecret}`) => {
    const response = await fetch(`${sim.url}/api2/json${path}`, {
      method,
      dispatcher: agent,
      headers: { authorization: `PVEAPIToken=${token}` },
    });
    return { status: response.status, data: ((await response.json()) as { data: unknown }).data };
  };

  it("is read with its path, and deleted by a task only with Datastore.Allocate", async () => {
    await client.waitForTask(
      await download("cephfs", { url: `${FACTORY}/gone.qcow2`, content: "import", filename: "gone.qcow2" }),
    );
    const path = "/nodes/pve1/storage/cephfs/content/cephfs:import%2Fgone.qcow2";
    expect((await call("GET", path, "audit@pve!ro=ro")).data).toMatchObject({
      format: "qcow2",
      path: "/mnt/pve/cephfs/import/gone.qcow2",
    });
    expect((await call("DELETE", path, "audit@pve!ro=ro")).status).toBe(403);
    const deleted = await call("DELETE", path);
    expect(deleted.status).toBe(200);
    expect(String(deleted.data)).toMatch(/^UPID:pve1:.*:imgdel:/);
    await client.waitForTask(parseUpid(String(deleted.data)));
    expect(await volids("cephfs")).not.toContain("cephfs:import/gone.qcow2");
    expect((await call("GET", path)).status).toBe(500);
  });
});
