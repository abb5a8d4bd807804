import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, isSecretKey, REDACTED, redact } from "./logger.ts";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({ level: "debug", destination });
  return {
    logger,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    raw: () => lines.join("\n"),
  };
}

describe("log redaction", () => {
  it("never writes a Secret's payload, tokens or passwords, at any depth", () => {
    const { logger, raw, records } = capture();
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "proxmox-credentials", namespace: "homelab" },
      data: { token: "c3VwZXJzZWNyZXQ=" },
      stringData: { password: "hunter2-plain" },
    };
    logger.info(
      {
        object: secret,
        request: { headers: { Authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig" } },
        proxmox: { tokenId: "root@pam!op", tokenSecret: "0f6b4d2e-aaaa-bbbb-cccc-123456789abc" },
        list: [{ clientSecret: "kc-secret-value" }],
        kubeconfig: "apiVersion: v1\nusers: [...]",
      },
      "Reconciled Secret",
    );
    const text = raw();
    for (const leaked of [
      "c3VwZXJzZWNyZXQ=",
      "hunter2-plain",
      "eyJhbGciOiJSUzI1NiJ9",
      "0f6b4d2e-aaaa",
      "kc-secret-value",
      "users: [...]",
    ]) {
      expect(text).not.toContain(leaked);
    }
    const rec = records()[0]!;
    expect(rec).toMatchObject({
      level: "info",
      msg: "Reconciled Secret",
      object: {
        kind: "Secret",
        metadata: { name: "proxmox-credentials" },
        data: REDACTED,
        stringData: REDACTED,
      },
      request: { headers: { Authorization: REDACTED } },
      proxmox: { tokenId: REDACTED, tokenSecret: REDACTED },
    });
  });

  it("redacts credentials in messages and child bindings, keeps the correlation keys", () => {
    const { logger, raw, records } = capture();
    const child = logger.child({
      controller: "peertenant",
      namespace: "ns1",
      name: "alice",
      reconcileID: "r-1",
      password: "pw-in-binding",
    });
    child.warn("Retrying with header Authorization: Bearer abc.def.ghi");
    expect(raw()).not.toContain("pw-in-binding");
    expect(raw()).not.toContain("abc.def.ghi");
    expect(records()[0]).toMatchObject({
      controller: "peertenant",
      namespace: "ns1",
      name: "alice",
      reconcileID: "r-1",
    });
  });

  it("keeps references to secrets readable (secretRef, tokenSecretName)", () => {
    expect(
      redact({ credentialsSecretRef: { name: "pve", namespace: "homelab" }, tokenSecretName: "pve-token" }),
    ).toEqual({
      credentialsSecretRef: { name: "pve", namespace: "homelab" },
      tokenSecretName: "pve-token",
    });
    expect(["name", "namespace", "key", "reconcileID", "controller"].some(isSecretKey)).toBe(false);
  });

  it("survives cycles and keeps Errors for the err serializer", () => {
    const a: Record<string, unknown> = { name: "x" };
    a.self = a;
    expect(redact(a)).toEqual({ name: "x", self: "[Truncated]" });
    const { logger, records } = capture();
    logger.error({ err: new Error("boom") }, "Failed");
    expect(records()[0]).toMatchObject({ err: { message: "boom", type: "Error" } });
  });

  it("cuts credentials out of logged error messages", () => {
    const { logger, raw, records } = capture();
    logger.error(
      { err: new Error("upstream said: Authorization: Bearer sekrit-token-123 is invalid") },
      "Failed",
    );
    expect(raw()).not.toContain("sekrit-token-123");
    expect((records()[0]!.err as { message: string }).message).toContain("Bearer [REDACTED]");
  });
});
