// API-token privileges and Proxmox's permission expressions (pve-access-control
// src/PVE/RPCEnvironment.pm `check_api2_permissions`): ["perm", path, [privs], "any", 1], ["and", ...],
// ["or", ...]. Tokens here are privilege-separated and carry their ACL directly; an ACL entry on a path
// propagates to everything below it, as Proxmox's default `propagate=1` does.
import type { PermissionCheck } from "./api-schema.ts";

/** Every privilege the simulated endpoints ask for (PVE 9 names). */
export const ALL_PRIVILEGES = [
  "Datastore.Allocate",
  "Datastore.AllocateSpace",
  "Datastore.AllocateTemplate",
  "Datastore.Audit",
  "Sys.Audit",
  "Sys.Console",
  "Sys.Modify",
  "Sys.AccessNetwork",
  "SDN.Use",
  "VM.Allocate",
  "VM.Audit",
  "VM.Backup",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.GuestAgent.Audit",
  "VM.GuestAgent.Unrestricted",
  "VM.PowerMgmt",
] as const;

/** ACL of one token: path -> privileges granted there and below. */
export type TokenAcl = Record<string, readonly string[]>;

export class PermissionDenied extends Error {
  readonly path: string;
  readonly privileges: readonly string[];
  constructor(path: string, privileges: readonly string[]) {
    // RPCEnvironment::check: raise_perm_exc("$path, $privs") -> "Permission check failed (...)".
    super(`Permission check failed (${path}, ${privileges.join("|")})`);
    this.path = path;
    this.privileges = privileges;
  }
}

function covers(aclPath: string, path: string): boolean {
  if (aclPath === "/") return true;
  return path === aclPath || path.startsWith(`${aclPath}/`);
}

export function hasPrivilege(acl: TokenAcl, path: string, privilege: string): boolean {
  return Object.entries(acl).some(([p, privs]) => covers(p, path) && privs.includes(privilege));
}

function substitute(path: string, params: Record<string, unknown>): string {
  return path.replace(/\{([^}]+)\}/g, (_m, n: string) => String(params[n] ?? ""));
}

/** Evaluates a schema permission expression; returns the first failing (path, privileges) or undefined. */
export function evaluate(
  check: PermissionCheck,
  acl: TokenAcl,
  params: Record<string, unknown>,
): PermissionDenied | undefined {
  const [op, ...rest] = check;
  if (op === "perm") {
    const path = substitute(String(rest[0]), params);
    const privs = (rest[1] as string[]) ?? [];
    const any = rest[2] === "any" && Boolean(rest[3]);
    const ok = any
      ? privs.some((p) => hasPrivilege(acl, path, p))
      : privs.every((p) => hasPrivilege(acl, path, p));
    return ok ? undefined : new PermissionDenied(path, privs);
  }
  if (op === "and") {
    for (const sub of rest) {
      const denied = evaluate(sub as PermissionCheck, acl, params);
      if (denied) return denied;
    }
    return undefined;
  }
  if (op === "or") {
    let first: PermissionDenied | undefined;
    for (const sub of rest) {
      const denied = evaluate(sub as PermissionCheck, acl, params);
      if (!denied) return undefined;
      first ??= denied;
    }
    return first;
  }
  // Other forms (userid-param, userid-group) guard user management, which is not simulated.
  return new PermissionDenied("/", [String(op)]);
}

/** Throws PermissionDenied unless every privilege is held on the path. */
export function requirePrivileges(acl: TokenAcl, path: string, privileges: readonly string[]): void {
  const denied = evaluate(["perm", path, [...privileges]], acl, {});
  if (denied) throw denied;
}
