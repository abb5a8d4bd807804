// Which roles may call what, from Talos' authz table (internal/app/machined/pkg/system/services/machined.go
// @v1.12.0; LifecycleService and ImageService added in v1.13). Roles come from the client certificate's
// Subject Organization (pkg/grpc/middleware/authz/injector.go).

const ADMIN = ["os:admin"];
const OPERATOR = ["os:admin", "os:operator"];
const READER = ["os:admin", "os:operator", "os:reader"];

export const METHOD_ROLES: Record<string, readonly string[]> = {
  "/machine.MachineService/ApplyConfiguration": ADMIN,
  "/machine.MachineService/Bootstrap": ADMIN,
  "/machine.MachineService/EtcdForfeitLeadership": ADMIN,
  "/machine.MachineService/EtcdLeaveCluster": ADMIN,
  "/machine.MachineService/EtcdMemberList": [...READER, "os:etcd:backup"],
  "/machine.MachineService/EtcdRemoveMemberByID": ADMIN,
  "/machine.MachineService/EtcdStatus": READER,
  "/machine.MachineService/Hostname": READER,
  "/machine.MachineService/Kubeconfig": ADMIN,
  "/machine.MachineService/Reboot": OPERATOR,
  "/machine.MachineService/ImagePull": OPERATOR,
  "/machine.MachineService/Reset": ADMIN,
  "/machine.MachineService/ServiceList": READER,
  "/machine.MachineService/Upgrade": ADMIN,
  "/machine.MachineService/Version": READER,
  "/machine.ImageService/Pull": OPERATOR,
  "/machine.LifecycleService/Upgrade": ADMIN,
  "/cosi.resource.State/Get": READER,
  "/cosi.resource.State/List": READER,
};

/** Maintenance mode serves only these without a client certificate (LAN clients get os:reader). */
export const MAINTENANCE_METHODS = new Set([
  "/machine.MachineService/ApplyConfiguration",
  "/machine.MachineService/Version",
  "/machine.MachineService/Hostname",
  "/machine.MachineService/ServiceList",
]);

export function allowed(method: string, roles: readonly string[]): boolean {
  const needed = METHOD_ROLES[method];
  return needed !== undefined && roles.some((r) => needed.includes(r));
}
