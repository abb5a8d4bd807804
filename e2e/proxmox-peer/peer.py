"""A real third-party client (proxmoxer, from PyPI) driving the Proxmox VE simulator.

Lists nodes, creates a VM, starts it, stops and deletes it, waiting on every task with proxmoxer's own
task helper, and prints what it saw as JSON for the vitest suite to check. Connection settings come from
the environment; the token secret is never printed.
"""

import json
import os
import sys

from proxmoxer import ProxmoxAPI
from proxmoxer.tools import Tasks


def wait(api, upid):
    status = Tasks.blocking_status(api, upid, timeout=30, polling_interval=0.05)
    if status is None or status.get("exitstatus") != "OK":
        log = api.nodes(Tasks.decode_upid(upid)["node"]).tasks(upid).log.get()
        raise SystemExit(f"task {upid} failed: {status} {Tasks.decode_log(log)}")
    return status


def main():
    api = ProxmoxAPI(
        os.environ["PVE_HOST"],
        port=int(os.environ["PVE_PORT"]),
        user=os.environ["PVE_USER"],
        token_name=os.environ["PVE_TOKEN_NAME"],
        token_value=os.environ["PVE_TOKEN_VALUE"],
        verify_ssl=os.environ["PVE_CA_FILE"],
        service="PVE",
    )
    out = {}
    out["nodes"] = sorted(n["node"] for n in api.nodes.get())
    node = out["nodes"][0]
    vmid = int(api.cluster.nextid.get())
    out["vmid"] = vmid
    create = api.nodes(node).qemu.post(
        vmid=vmid,
        name="proxmoxer-peer",
        cores=2,
        memory=2048,
        scsi0="local-lvm:8",
        ide2="local-lvm:cloudinit",
        ipconfig0="ip=10.0.9.10/24,gw=10.0.9.1",
        nameserver="10.0.9.1",
        net0="virtio,bridge=vmbr0",
        agent=1,
    )
    out["create_task"] = Tasks.decode_upid(create)
    out["create_status"] = wait(api, create)["exitstatus"]
    out["config_scsi0"] = api.nodes(node).qemu(vmid).config.get()["scsi0"]
    wait(api, api.nodes(node).qemu(vmid).status.start.post())
    out["status_after_start"] = api.nodes(node).qemu(vmid).status.current.get()["status"]
    out["listed"] = [v["vmid"] for v in api.cluster.resources.get(type="vm")]
    wait(api, api.nodes(node).qemu(vmid).status.stop.post())
    delete = api.nodes(node).qemu(vmid).delete(purge=1)
    out["delete_status"] = wait(api, delete)["exitstatus"]
    out["listed_after_delete"] = [v["vmid"] for v in api.cluster.resources.get(type="vm")]
    try:
        api.nodes(node).qemu(vmid).config.get()
        out["missing_error"] = None
    except Exception as err:  # proxmoxer raises ResourceException with Proxmox's status and message
        out["missing_error"] = {"status": getattr(err, "status_code", None), "text": str(err)}
    try:
        api.nodes(node).qemu.post(vmid=vmid, name="x", bogus=1)
        out["param_error"] = None
    except Exception as err:
        out["param_error"] = {"status": getattr(err, "status_code", None), "errors": getattr(err, "errors", None)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
