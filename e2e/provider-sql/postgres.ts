// A throwaway PostgreSQL server on loopback for the real provider-sql to manage: Debian's postgresql
// package (initdb + postgres), a superuser with a password over TCP (scram-sha-256, as the provider logs
// in), and psql to look at what the provider did. PostgreSQL refuses to run as root, so under root the
// server runs as the package's `postgres` user. Its processes are recorded for the control plane's
// reaper, which stops them if the test process dies without stopping them.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { appendFile, chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { ownerLine, pidFileName } from "../../src/local/control-plane/stale.ts";
import { waitFor } from "../harness/wait.ts";

const run = promisify(execFile);

export interface Postgres {
  host: string;
  port: number;
  superuser: string;
  password: string;
  /** Runs one statement as `user` (default the superuser) over TCP and returns psql's unaligned rows. */
  query(sql: string, as?: { user: string; password: string; database?: string }): Promise<string[]>;
  /** Records another process (e.g. the provider) for the reaper of this folder. */
  track(pid: number): Promise<void>;
  stop(): Promise<void>;
}

/** The folder of Debian's PostgreSQL server binaries (the newest installed major version). */
function serverBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest || !existsSync(join(root, newest, "bin", "initdb")))
    throw new Error("PostgreSQL's server is not installed (Debian package postgresql)");
  return join(root, newest, "bin");
}

async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
  const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<Postgres> {
  const bin = serverBinDir();
  const dir = await mkdtemp(join(tmpdir(), "homelab-postgres-e2e-"));
  const pidFile = join(dir, pidFileName(process.pid));
  await writeFile(pidFile, ownerLine());
  const reaper = spawn(
    process.execPath,
    [
      fileURLToPath(new URL("../../src/local/control-plane/reaper.ts", import.meta.url)),
      String(process.pid),
      dir,
      "remove",
    ],
    { detached: true, stdio: "ignore" },
  );
  reaper.unref();
  const track = (pid: number) => appendFile(pidFile, `${pid}\n`);

  const owner = await postgresUser();
  const data = join(dir, "data");
  const socketDir = join(dir, "socket");
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwFile = join(dir, "pwfile");
  await mkdir(socketDir);
  await mkdir(data, { mode: 0o700 });
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    // The server's user must reach its folders: the temp folder is traversable, the rest is its own.
    await chmod(dir, 0o711);
    for (const path of [pwFile, socketDir, data]) await chown(path, owner.uid, owner.gid);
  }
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const superuser = "postgres";
  await run(
    join(bin, "initdb"),
    [
      "-D",
      data,
      "-U",
      superuser,
      `--pwfile=${pwFile}`,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--no-sync",
    ],
    { ...as, cwd: dir },
  );
  const port = await freePort();
  const server: ChildProcess = spawn(
    join(bin, "postgres"),
    [
      "-D",
      data,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      `unix_socket_directories=${socketDir}`,
      "-c",
      "fsync=off",
    ],
    { ...as, cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  server.stderr?.on("data", (c: Buffer) => {
    log = (log + c.toString()).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  if (server.pid) await track(server.pid);

  const query: Postgres["query"] = async (sql, who) => {
    const user = who?.user ?? superuser;
    const { stdout } = await run(
      "psql",
      [
        `host=127.0.0.1 port=${port} user=${user} dbname=${who?.database ?? "postgres"} sslmode=disable`,
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-At",
        "-c",
        sql,
      ],
      { env: { ...process.env, PGPASSWORD: who?.password ?? password, PGCONNECT_TIMEOUT: "5" } },
    );
    return stdout.split("\n").filter((l) => l !== "");
  };
  await waitFor("PostgreSQL to accept logins", () => query("select 1").then(() => true), 60_000, 250).catch(
    (err: unknown) => {
      server.kill("SIGKILL");
      throw new Error(`${(err as Error).message}\n--- postgres ---\n${log}`);
    },
  );
  return {
    host: "127.0.0.1",
    port,
    superuser,
    password,
    query,
    track,
    async stop() {
      // Fast shutdown: SIGINT ends the sessions and stops cleanly.
      server.kill("SIGINT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      server.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
