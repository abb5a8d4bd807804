// The Rsync Job's script, attacked through the spec: paths and commands reach sh only quoted, so a
// quote or a ; in them is data, never a second command. Run by a real sh with echo for ssh and rsync.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { WorkloadMigration } from "../../crds/workload-migration.ts";
import type { KubeObject } from "../../runtime/index.ts";
import {
  isOwnSyncJob,
  KNOWN_HOSTS_PATH,
  rsyncScript,
  SYNC_OWNER_ANNOTATION,
  shQuote,
  syncJob,
  syncJobName,
  syncKeySecretName,
} from "./sync-jobs.ts";

const wm = (from: string, stopCommand: string, knownHosts?: string) =>
  ({
    metadata: { name: "m", namespace: "infra", uid: "u1", generation: 3 },
    spec: {
      targets: [{ name: "app", kind: "Deployment", template: { image: "x", volumes: [{ name: "data" }] } }],
      dataSync: {
        method: "Rsync",
        image: "instrumentisto/rsync-ssh:latest",
        timeout: "90s",
        ssh: {
          host: "10.0.2.20",
          user: "root",
          privateKeySecretRef: { name: "k", key: "ssh-privatekey" },
          stopCommand,
          ...(knownHosts ? { knownHosts } : {}),
        },
        paths: [{ from, target: "app", volume: "data" }],
      },
    },
  }) as unknown as WorkloadMigration;

/** Runs the script with ssh and rsync replaced by functions that print their arguments, one a line. */
function argsSeen(script: string): string[] {
  // To stderr, which goes to the caller: the checksum pass's $(…) must read nothing, as when in sync.
  const stubs = `exec 2>&1; ssh() { for a in "$@"; do printf 'ssh:%s\\n' "$a" >&2; done; }; rsync() { for a in "$@"; do printf 'rsync:%s\\n' "$a" >&2; done; }`;
  return execFileSync("sh", ["-c", `${stubs}\n${script}`], {
    encoding: "utf8",
  })
    .trim()
    .split("\n");
}

describe("the Rsync Job", () => {
  it("passes a path with quotes and ; to rsync as one argument", () => {
    const evil = "/srv/a'; touch /tmp/pwned; echo '";
    const seen = argsSeen(rsyncScript(wm(evil, "systemctl stop app"), "initial"));
    expect(seen).toContain(`rsync:root@10.0.2.20:${evil}/`);
    expect(seen.some((l) => l.includes("pwned") && !l.startsWith("rsync:"))).toBe(false);
  });

  it("sends the stop command to the VM as one ssh argument, before the copy, in the final run only", () => {
    const stop = "docker compose stop; echo 'done'";
    const final = argsSeen(rsyncScript(wm("/srv/app", stop), "final"));
    expect(final.indexOf(`ssh:${stop}`)).toBeGreaterThan(-1);
    expect(final.indexOf(`ssh:${stop}`)).toBeLessThan(final.indexOf("rsync:-aHAX"));
    expect(argsSeen(rsyncScript(wm("/srv/app", stop), "initial"))).not.toContain(`ssh:${stop}`);
  });

  it("is marked with the migration's uid and generation, and its deadline is dataSync.timeout", () => {
    const job = syncJob(wm("/srv/app", "x"), "final", "m-sync-ssh", []);
    expect(job.metadata?.annotations).toEqual({
      "homelab.shdr.ch/migration-uid": "u1",
      "homelab.shdr.ch/migration-generation": "3",
    });
    expect((job.spec as { activeDeadlineSeconds: number }).activeDeadlineSeconds).toBe(90);
  });

  it("with the VM's host keys, checks them strictly; the file it writes is what OpenSSH reads", () => {
    const dir = mkdtempSync(join(tmpdir(), "sync-known-hosts-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
    const pub = readFileSync(join(dir, "host.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
    // A comment with quotes and a ; stays data in the file, never a command.
    const knownHosts = `10.0.2.20 ${pub} it's; touch ${dir}/pwned\n`;
    const file = join(dir, "known_hosts");
    const script = rsyncScript(wm("/srv/app", "x", knownHosts), "final").replaceAll(KNOWN_HOSTS_PATH, file);
    const seen = argsSeen(script);
    expect(seen).toContain(`ssh:StrictHostKeyChecking=yes`);
    expect(seen).not.toContain(`ssh:StrictHostKeyChecking=accept-new`);
    expect(seen).toContain(`ssh:UserKnownHostsFile=${file}`);
    expect(readFileSync(file, "utf8")).toBe(knownHosts);
    // OpenSSH's own parser finds the VM's key for its address in that file, and none for another host.
    expect(execFileSync("ssh-keygen", ["-F", "10.0.2.20", "-f", file], { encoding: "utf8" })).toContain(pub);
    expect(() => execFileSync("ssh-keygen", ["-F", "10.0.2.21", "-f", file], { stdio: "pipe" })).toThrow();
    expect(() => readFileSync(join(dir, "pwned"))).toThrow();
  });

  it("without host keys, trusts the first key each Job is shown (and says nothing is pinned)", () => {
    // The first copy has no ssh call of its own: rsync gets the ssh command line as one -e argument.
    const seen = argsSeen(rsyncScript(wm("/srv/app", "x"), "initial"));
    const remoteShell = seen.filter((l) => l.startsWith("rsync:ssh "));
    expect(remoteShell.length).toBe(1);
    expect(remoteShell[0]).toContain("-o StrictHostKeyChecking=accept-new");
    expect(rsyncScript(wm("/srv/app", "x"), "initial")).not.toContain("printf");
  });

  it("a path with $(…) in the final check's failure message is printed, never run", () => {
    const dir = mkdtempSync(join(tmpdir(), "sync-evil-path-"));
    const evil = `/srv/$(touch ${dir}/pwned)"\`touch ${dir}/pwned2\``;
    // The checksum pass finds something left, so the script reaches its message about the path.
    const stubs = `ssh() { :; }; rsync() { case "$1" in -aHAXn) echo "changed file";; esac; }`;
    let out = "";
    try {
      execFileSync("sh", ["-c", `${stubs}\n${rsyncScript(wm(evil, "x"), "final")}`], { encoding: "utf8" });
    } catch (err) {
      out = String((err as { stdout?: string }).stdout);
    }
    expect(out).toContain(`${evil} still differs after the copy:`);
    expect(() => readFileSync(join(dir, "pwned"))).toThrow();
    expect(() => readFileSync(join(dir, "pwned2"))).toThrow();
  });

  it("the reverse Job is the user's reverseJob, told SYNC_PHASE=reverse, also for an Rsync migration", () => {
    const m = wm("/srv/app", "x");
    (m.spec.dataSync as Record<string, unknown>)["reverseJob"] = {
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{ name: "back", image: "img", env: [{ name: "SYNC_PHASE", value: "forged" }] }],
        },
      },
    };
    const job = syncJob(m, "reverse", "m-sync-ssh", []);
    const spec = job.spec as { template: { spec: { containers: { name: string; env: unknown[] }[] } } };
    expect(spec.template.spec.containers.map((c) => c.name)).toEqual(["back"]);
    expect(spec.template.spec.containers[0]!.env).toEqual([{ name: "SYNC_PHASE", value: "reverse" }]);
    expect(job.metadata?.name).toBe(syncJobName(m, "reverse"));
  });

  it("quotes like sh expects", () => {
    expect(execFileSync("sh", ["-c", `printf %s ${shQuote("it's")}`], { encoding: "utf8" })).toBe("it's");
  });
});

describe("sync Job names", () => {
  const named = (name: string, uid: string) =>
    ({ metadata: { name, namespace: "infra", uid } }) as unknown as WorkloadMigration;
  it("differ for two migrations sharing the first 40 characters, and for a redone one of the same name", () => {
    const prefix = "a".repeat(40);
    const a = named(`${prefix}-one`, "11111111-aaaa");
    const b = named(`${prefix}-two`, "22222222-bbbb");
    const again = named(`${prefix}-one`, "33333333-cccc");
    for (const phase of ["initial", "final", "resume", "reverse"] as const) {
      expect(syncJobName(a, phase)).not.toBe(syncJobName(b, phase));
      expect(syncJobName(a, phase)).not.toBe(syncJobName(again, phase));
      expect(syncJobName(a, phase).length).toBeLessThanOrEqual(63);
    }
    expect(syncKeySecretName(a)).not.toBe(syncKeySecretName(b));
  });
  it("are the same for the same migration (a restarted operator finds its Job)", () => {
    expect(syncJobName(named("m", "u1"), "final")).toBe(syncJobName(named("m", "u1"), "final"));
  });
  it("only a Job carrying this migration's uid is its own", () => {
    const wm = named("m", "u1");
    const job = (uid?: string) =>
      ({ metadata: { annotations: uid ? { [SYNC_OWNER_ANNOTATION]: uid } : {} } }) as KubeObject;
    expect(isOwnSyncJob(wm, job("u1"))).toBe(true);
    expect(isOwnSyncJob(wm, job("u2"))).toBe(false);
    expect(isOwnSyncJob(wm, job())).toBe(false);
    // A migration without a uid (never from the API server) owns nothing, not even an empty annotation.
    expect(isOwnSyncJob(named("m", ""), job(""))).toBe(false);
  });
});
