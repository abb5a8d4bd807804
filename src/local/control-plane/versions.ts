// Reads the pinned control-plane versions from versions.env, the one place they are written.
import { readFileSync } from "node:fs";

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
  kwok: string;
}

export function parseVersionsEnv(text: string): ControlPlaneVersions {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (m?.[1] && m[2]) values.set(m[1], m[2]);
  }
  const kubernetes = values.get("KUBERNETES_VERSION");
  const etcd = values.get("ETCD_VERSION");
  const kwok = values.get("KWOK_VERSION");
  if (!kubernetes || !etcd || !kwok)
    throw new Error("versions.env must set KUBERNETES_VERSION, ETCD_VERSION and KWOK_VERSION");
  return { kubernetes, etcd, kwok };
}

export function pinnedVersions(): ControlPlaneVersions {
  return parseVersionsEnv(readFileSync(new URL("./versions.env", import.meta.url), "utf8"));
}
