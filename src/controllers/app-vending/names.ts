// Names of what one AppVending makes. Kubernetes names only have to be unique per kind in the
// AppVending's namespace; external names (the S3 bucket, the PostgreSQL role and database, the Keycloak
// clientId) live in systems every tenant shares, so they carry the namespace and a hash of the pair:
// `peers-a` + `b-c` and `peers-a-b` + `c` read alike but hash apart.
import { createHash } from "node:crypto";

/** Prefix of every managed resource an AppVending creates, so `kubectl get managed` shows whose it is. */
export const MR_PREFIX = "av-";

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** `text` cut to `max` characters with a hash of the whole kept at the end, when it is longer. */
function fitted(text: string, max: number, sep: string): string {
  if (text.length <= max) return text;
  const hash = shortHash(text);
  return `${text.slice(0, max - hash.length - sep.length).replace(/[-_]+$/, "")}${sep}${hash}`;
}

/** metadata.name of every managed resource of `appName` (one per kind, so one name serves all kinds). */
export function managedName(appName: string): string {
  return fitted(`${MR_PREFIX}${appName}`, 63, "-");
}

/** The database password Secret's name (password-secret.ts): the Role's name, unique per AppVending. */
export function passwordSecretName(appName: string): string {
  return `${managedName(appName)}-pg-password`;
}

/** Everything that names one AppVending's external resources, derived from namespace and name only. */
export interface ExternalNames {
  /** S3 bucket name: lowercase, digits and dashes, at most 63 (RGW follows S3's rules). */
  bucket: string;
  /** PostgreSQL role and database name: lowercase, digits and underscores, at most 63 (NAMEDATALEN-1). */
  postgres: string;
  /** Keycloak clientId, unique within the realm that tenants share. */
  clientId: string;
}

export function externalNames(namespace: string, name: string): ExternalNames {
  const hash = shortHash(`${namespace}/${name}`);
  const slug = `${namespace}-${name}`;
  const keep = 63 - hash.length - 1;
  const bucket = `${slug.slice(0, keep).replace(/[-.]+$/, "")}-${hash}`.replace(/\./g, "-");
  const postgres = `${slug.replace(/[-.]/g, "_").slice(0, keep).replace(/_+$/, "")}_${hash}`;
  const clientId = `${slug.slice(0, 255 - hash.length - 1)}-${hash}`;
  return { bucket, postgres, clientId };
}

/** Name of the Lease that claims `hostname` for one AppVending, cluster-wide (see claims.ts). */
export function hostnameClaimName(hostname: string): string {
  return `host.${hostname}`;
}
