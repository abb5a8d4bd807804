import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

export const REDACTED = "[REDACTED]";

/** Keys whose values are secret wherever they appear (a Secret's payload, kubeconfig users, HTTP headers). */
const SECRET_KEYS = new Set([
  "data",
  "stringdata",
  "binarydata",
  "token",
  "password",
  "secret",
  "authorization",
  "apikey",
  "api_key",
  "privatekey",
  "private_key",
  "client-key-data",
  "client-certificate-data",
  "clientkey",
  "kubeconfig",
  "talosconfig",
  "cookie",
  "set-cookie",
]);
const SECRET_WORDS = /password|passwd|secret|token|authorization|credential|private.?key|api.?key|cookie/i;
/** References to secrets are not secrets: `secretRef`, `tokenSecretName` stay readable for debugging. */
const REFERENCE_SUFFIX = /(Ref|Name|Namespace|Names)$/;
const BEARER = /(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;

export function isSecretKey(key: string): boolean {
  if (SECRET_KEYS.has(key.toLowerCase())) return true;
  return SECRET_WORDS.test(key) && !REFERENCE_SUFFIX.test(key);
}

/**
 * Returns a copy of a log record with secret-ish keys replaced at any depth and bearer/basic credentials
 * cut out of strings. pino's own `redact` needs every path spelled out and cannot match a key at any
 * depth, which is what an operator logging arbitrary Kubernetes objects needs.
 */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string")
    return value.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`);
  if (value === null || typeof value !== "object") return value;
  // Errors go to pino's err serializer unchanged: their message is ours and never carries secrets.
  if (value instanceof Error) return value;
  if (seen.has(value) || depth > 12) return "[Truncated]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) && v !== undefined && v !== null ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}

export interface LoggerConfig {
  level?: string;
  name?: string;
  destination?: DestinationStream;
}

/** JSON logs, one line per record, with secrets redacted from both the record and child bindings. */
export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? process.env.LOG_LEVEL ?? "info",
    ...(config.name ? { name: config.name } : {}),
    messageKey: "msg",
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      // Message strings bypass formatters.log; cut credentials out of them too.
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === "string" ? redact(a) : a)) as Parameters<typeof method>,
        );
      },
    },
    serializers: {
      // Error messages can quote what a remote API answered; cut credentials out of them too.
      err: (err: Error) => redact(pino.stdSerializers.err(err)),
    },
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => redact(obj) as Record<string, unknown>,
      bindings: (bindings) => redact(bindings) as Record<string, unknown>,
    },
  };
  return redactingChildren(config.destination ? pino(options, config.destination) : pino(options));
}

/**
 * pino serialises child bindings once, without formatters.log (observed on pino 10): redact them on the way
 * in. Children inherit the root's own `child` through their prototype, so only the root is patched.
 */
function redactingChildren(logger: Logger): Logger {
  const pinoChild = logger.child;
  logger.child = function (this: Logger, bindings, opts) {
    return pinoChild.call(this, redact(bindings) as typeof bindings, opts);
  } as Logger["child"];
  return logger;
}
