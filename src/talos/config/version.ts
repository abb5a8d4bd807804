/** Talos and Kubernetes versions are written vMAJOR.MINOR.PATCH (optionally with a -pre suffix). */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(v: string): SemVer {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v);
  if (!m) throw new Error(`invalid version "${v}", expected vX.Y.Z`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** True when `version` is at least MAJOR.MINOR (patch ignored): config contracts change per minor. */
export function atLeastMinor(version: string, major: number, minor: number): boolean {
  const v = parseVersion(version);
  return v.major > major || (v.major === major && v.minor >= minor);
}
