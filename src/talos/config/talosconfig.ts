// The admin talosconfig: a client certificate signed by the cluster's OS CA with organization `os:admin`
// (Talos reads the role from the certificate's Subject Organization: pkg/grpc/middleware/authz), an
// Ed25519 key like Talos' own generator, KeyUsage digitalSignature and ExtKeyUsage clientAuth (apid checks
// it when machine.features.apidCheckExtKeyUsage is on). Context fields as pkg/machinery/client/config.

import { parse, stringify } from "yaml";
import { issueCert, loadCA } from "../../pki/index.ts";
import { b64, type SecretsBundle, unb64 } from "./secrets.ts";

export interface TalosconfigContext {
  endpoints: string[];
  nodes?: string[];
  /** base64 PEM */
  ca: string;
  crt: string;
  key: string;
}

export interface Talosconfig {
  context: string;
  contexts: Record<string, TalosconfigContext>;
}

export interface AdminTalosconfigOptions {
  contextName: string;
  endpoints: readonly string[];
  nodes?: readonly string[];
  now?: Date;
  /** Default 365 days (Talos' default admin certificate lifetime). */
  validityDays?: number;
  roles?: readonly string[];
}

export function generateAdminTalosconfig(
  secrets: SecretsBundle,
  options: AdminTalosconfigOptions,
): Talosconfig {
  const ca = loadCA(unb64(secrets.certs.os.crt), unb64(secrets.certs.os.key));
  const client = issueCert(ca, {
    subject: { organizations: [...(options.roles ?? ["os:admin"])] },
    key: "ed25519",
    notBefore: options.now ?? new Date(),
    validityDays: options.validityDays ?? 365,
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["clientAuth"],
  });
  const context: TalosconfigContext = {
    endpoints: [...options.endpoints],
    ca: secrets.certs.os.crt,
    crt: b64(client.certPem),
    // Same label Talos writes for Ed25519 keys; parsePrivateKeyPem() reads it back for Node.
    key: b64(client.keyPem.replace(/PRIVATE KEY-----/g, "ED25519 PRIVATE KEY-----")),
  };
  if (options.nodes && options.nodes.length > 0) context.nodes = [...options.nodes];
  return { context: options.contextName, contexts: { [options.contextName]: context } };
}

export function talosconfigToYaml(config: Talosconfig): string {
  return stringify(config, { lineWidth: 0 });
}

export function talosconfigFromYaml(text: string): Talosconfig {
  const parsed = parse(text) as Talosconfig | null;
  if (!parsed || typeof parsed.context !== "string" || !parsed.contexts?.[parsed.context]) {
    throw new Error("talosconfig has no current context");
  }
  return parsed;
}

/** The current context's PEMs, decoded, for a TLS client. */
export function talosconfigCredentials(config: Talosconfig, contextName = config.context) {
  const ctx = config.contexts[contextName];
  if (!ctx) throw new Error(`talosconfig has no context ${contextName}`);
  return { caPem: unb64(ctx.ca), certPem: unb64(ctx.crt), keyPem: unb64(ctx.key), endpoints: ctx.endpoints };
}
