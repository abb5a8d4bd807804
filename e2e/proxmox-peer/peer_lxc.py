"""proxmoxer (from PyPI) driving the simulator's LXC endpoints, as an admin's script would.

Downloads a container template, creates a container, lists it, starts it, tries to delete it while it
runs (Proxmox refuses), shuts it down, backs it up with vzdump and deletes it with purge, waiting on every
task with proxmoxer's own helper; prints what it saw as JSON. The token secret is never printed.
"""

import json
import os
import sys

from proxmoxer import ProxmoxAPI
from proxmoxer.tools import Tasks

TEMPLATE = "debian-12-standard_12.12-1_amd64.tar.zst"


def wait(api, upid):
    status = Tasks.blocking_status(api, upid, timeout=30, polling_interval=0.05)
    if status is None or status.get("exitstatus") != "OK":
        log = api.nodes(Tasks.decode_upid(upid)["node"]).tasks(upid).log.get()
        raise SystemExit(f"task {upid} failed: {status} {Tasks.decode_log(log)}")
    return Tasks.decode_upid(upid)["type"]


def error_of(call):
    try:
        call()
        return None
    except Exception as err:  # proxmoxer's ResourceException carries Proxmox's status and message
        return {"status": getattr(err, "status_code", None), "text": str(err)}


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
    node = sorted(n["node"] for n in api.nodes.get())[0]
    out = {}
    wait(
        api,
        api.nodes(node).storage("local")("download-url").post(
            url=f"http://download.proxmox.com/images/system/{TEMPLATE}", content="vztmpl", filename=TEMPLATE
        ),
    )
    vmid = int(api.cluster.nextid.get())
    out["vmid"] = vmid
    ct = api.nodes(node).lxc(vmid)
    out["create_task"] = wait(
        api,
        api.nodes(node).lxc.post(
            vmid=vmid,
            ostemplate=f"local:vztmpl/{TEMPLATE}",
            hostname="proxmoxer-ct",
            memory=512,
            rootfs="local-lvm:4",
            net0="name=eth0,bridge=vmbr0,ip=dhcp",
            unprivileged=1,
        ),
    )
    out["config_rootfs"] = ct.config.get()["rootfs"]
    out["start_task"] = wait(api, ct.status.start.post())
    out["node_list"] = [[c["vmid"], c["name"], c["status"]] for c in api.nodes(node).lxc.get()]
    out["cluster_list"] = [[v["id"], v["type"], v["name"]] for v in api.cluster.resources.get(type="vm")]
    out["delete_running_error"] = error_of(lambda: ct.delete(purge=1))
    out["qemu_status_error"] = error_of(lambda: api.nodes(node).qemu(vmid).status.current.get())
    out["shutdown_task"] = wait(api, ct.status.shutdown.post(timeout=30, forceStop=1))
    out["status_after_shutdown"] = ct.status.current.get()["status"]
    out["stop_stopped_error"] = error_of(lambda: ct.status.stop.post())
    out["backup_task"] = wait(api, api.nodes(node).vzdump.post(vmid=vmid, storage="local", mode="stop"))
    out["archives"] = [v["volid"] for v in api.nodes(node).storage("local").content.get(content="backup", vmid=vmid)]
    out["delete_task"] = wait(api, ct.delete(**{"purge": 1, "destroy-unreferenced-disks": 1}))
    out["listed_after_delete"] = [v["vmid"] for v in api.cluster.resources.get(type="vm")]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
