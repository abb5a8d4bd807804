// Reads the pinned control-plane versions from versions.env, the one place they are written.
import { readFileSync } from "node:fs";

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
}

export function parseVersionsEnv(text: string): ControlPlaneVersions {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (m?.[1] && m[2]) values.set(m[1], m[2]);
  }
  const kubernetes = values.get("KUBERNETES_VERSION");
  const etcd = values.get("ETCD_VERSION");
  if (!kubernetes || !etcd) throw new Error("versions.env must set KUBERNETES_VERSION and ETCD_VERSION");
  return { kubernetes, etcd };
}

export function pinnedVersions(): ControlPlaneVersions {
  return parseVersionsEnv(readFileSync(new URL("./versions.env", import.meta.url), "utf8"));
}
