// A second, independent Proxmox client drives the simulator: github.com/luthermonson/go-proxmox, the
// Go library Cluster API's Proxmox provider and Omni build on. It does what such a client does around
// creating a machine (version, nodes, node and cluster status, permissions, storages), then
// create -> read back -> start -> stop -> delete, waiting on every task with the library's own
// polling, and prints one JSON report the vitest test checks.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

type report struct {
	Version          string            `json:"version"`
	Nodes            []string          `json:"nodes"`
	NodePVEVersion   string            `json:"node_pveversion"`
	NodeCPUs         int               `json:"node_cpus"`
	ClusterName      string            `json:"cluster_name"`
	ClusterNodes     int               `json:"cluster_nodes"`
	RootPrivileges   int               `json:"root_privileges"`
	Storages         []string          `json:"storages"`
	ImagesStorage    string            `json:"images_storage"`
	CreateTaskType   string            `json:"create_task_type"`
	CreateStatus     string            `json:"create_status"`
	Config           map[string]string `json:"config"`
	StatusAfterStart string            `json:"status_after_start"`
	SecondStart      string            `json:"second_start"`
	StatusAfterStop  string            `json:"status_after_stop"`
	SecondStop       string            `json:"second_stop"`
	DeleteStatus     string            `json:"delete_status"`
	GoneAfterDelete  bool              `json:"gone_after_delete"`
	TasksListed      int               `json:"tasks_listed"`
	DiskVolumes      []string          `json:"disk_volumes"`
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

// waitCtx bounds every task wait; wait is called with a request's (task, error) pair as its arguments.
var waitCtx context.Context

// wait returns "OK" or the task's failure exit status (the library's TaskFailedError).
func wait(task *proxmox.Task, err error) string {
	must(err, "request")
	werr := task.Wait(waitCtx, 100*time.Millisecond, 30*time.Second)
	var failed *proxmox.TaskFailedError
	if errors.As(werr, &failed) {
		return failed.ExitStatus
	}
	must(werr, "task wait")
	return task.ExitStatus
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitCtx = ctx
	vmid, err := strconv.Atoi(os.Getenv("PVE_VMID"))
	must(err, "PVE_VMID")
	nodeName := os.Getenv("PVE_NODE")

	client := proxmox.NewClient(os.Getenv("PVE_URL")+"/api2/json",
		proxmox.WithAPIToken(os.Getenv("PVE_TOKEN_ID"), os.Getenv("PVE_TOKEN_SECRET")),
		proxmox.WithRootCAFile(os.Getenv("PVE_CA_FILE")),
	)
	var r report

	version, err := client.Version(ctx)
	must(err, "version")
	r.Version = version.Version

	nodes, err := client.Nodes(ctx)
	must(err, "nodes")
	for _, n := range nodes {
		r.Nodes = append(r.Nodes, n.Node)
	}

	node, err := client.Node(ctx, nodeName)
	must(err, "node status")
	r.NodePVEVersion = node.PVEVersion
	r.NodeCPUs = node.CPUInfo.CPUs

	cluster, err := client.Cluster(ctx)
	must(err, "cluster status")
	r.ClusterName = cluster.Name
	r.ClusterNodes = len(cluster.Nodes)

	perms, err := client.Permissions(ctx, &proxmox.PermissionsOptions{Path: "/"})
	must(err, "permissions")
	r.RootPrivileges = len(perms["/"])

	storages, err := node.Storages(ctx)
	must(err, "storages")
	for _, s := range storages {
		r.Storages = append(r.Storages, s.Name)
	}
	images, err := node.StorageImages(ctx)
	must(err, "images storage")
	r.ImagesStorage = images.Name

	create, err := node.NewVirtualMachine(ctx, vmid,
		proxmox.VirtualMachineOption{Name: "name", Value: "go-peer"},
		proxmox.VirtualMachineOption{Name: "cores", Value: 2},
		proxmox.VirtualMachineOption{Name: "memory", Value: 2048},
		proxmox.VirtualMachineOption{Name: "scsihw", Value: "virtio-scsi-single"},
		proxmox.VirtualMachineOption{Name: "scsi0", Value: images.Name + ":4"},
		proxmox.VirtualMachineOption{Name: "ide2", Value: images.Name + ":cloudinit"},
		proxmox.VirtualMachineOption{Name: "net0", Value: "virtio,bridge=vmbr0,tag=3"},
		proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=10.0.3.40/24,gw=10.0.3.1"},
	)
	must(err, "create")
	r.CreateTaskType = create.Type
	r.CreateStatus = wait(create, err)

	vm, err := node.VirtualMachine(ctx, vmid)
	must(err, "read back")
	cfg := vm.VirtualMachineConfig
	r.Config = map[string]string{
		"name":    cfg.Name,
		"net0":    cfg.Nets["net0"],
		"scsi0":   cfg.SCSIs["scsi0"],
		"ide2":    cfg.IDEs["ide2"],
		"smbios1": cfg.SMBios1,
		"meta":    cfg.Meta,
		"digest":  cfg.Digest,
	}
	if cfg.VMGenID != nil {
		r.Config["vmgenid"] = *cfg.VMGenID
	}

	r.StatusAfterStart = wait(vm.Start(ctx))
	must(vm.Ping(ctx), "status after start")
	if vm.IsRunning() {
		r.StatusAfterStart = "running"
	}
	r.SecondStart = wait(vm.Start(ctx))

	r.StatusAfterStop = wait(vm.Stop(ctx))
	must(vm.Ping(ctx), "status after stop")
	if vm.IsStopped() {
		r.StatusAfterStop = "stopped"
	}
	r.SecondStop = wait(vm.Stop(ctx))

	content, err := images.GetContent(ctx)
	must(err, "storage content")
	for _, c := range content {
		r.DiskVolumes = append(r.DiskVolumes, c.Volid)
	}

	r.DeleteStatus = wait(vm.Delete(ctx, &proxmox.VirtualMachineDeleteOptions{Purge: true}))
	_, err = node.VirtualMachine(ctx, vmid)
	r.GoneAfterDelete = err != nil && proxmox.IsNotFound(err)

	tasks, err := node.Tasks(ctx, &proxmox.NodeTasksOptions{Source: "all", VMID: vmid})
	must(err, "task list")
	r.TasksListed = len(tasks)

	must(json.NewEncoder(os.Stdout).Encode(r), "report")
}
