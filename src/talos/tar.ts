// The smallest ustar writer/reader the Kubeconfig RPC needs: Talos wraps the kubeconfig "as a gzip'ed tar
// containing one file `kubeconfig` (mode 0600) to match the Copy protocol"
// (internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go Kubeconfig).

import { gunzipSync, gzipSync } from "node:zlib";

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

export interface TarEntry {
  name: string;
  data: Buffer;
  mode?: number;
  mtime?: Date;
}

export function createTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (Buffer.byteLength(e.name) > 100) throw new Error(`tar entry name too long: ${e.name}`);
    const header = Buffer.alloc(BLOCK);
    header.write(e.name, 0, 100, "utf8");
    header.write(octal(e.mode ?? 0o600, 8), 100, 8, "ascii");
    header.write(octal(0, 8), 108, 8, "ascii");
    header.write(octal(0, 8), 116, 8, "ascii");
    header.write(octal(e.data.length, 12), 124, 12, "ascii");
    header.write(octal(Math.floor((e.mtime ?? new Date(0)).getTime() / 1000), 12), 136, 12, "ascii");
    header.write("        ", 148, 8, "ascii"); // checksum is computed with this field as spaces
    header.write("0", 156, 1, "ascii");
    header.write("ustar\u000000", 257, 8, "ascii");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
    parts.push(header, e.data, Buffer.alloc((BLOCK - (e.data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

export function readTar(tar: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let pos = 0;
  while (pos + BLOCK <= tar.length) {
    const header = tar.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const size = Number.parseInt(
      header.subarray(124, 136).toString("ascii").replace(/\0.*$/s, "").trim() || "0",
      8,
    );
    const mode = Number.parseInt(
      header.subarray(100, 108).toString("ascii").replace(/\0.*$/s, "").trim() || "0",
      8,
    );
    const type = String.fromCharCode(header[156] ?? 0);
    pos += BLOCK;
    if (type === "0" || type === "\0")
      out.push({ name, mode, data: Buffer.from(tar.subarray(pos, pos + size)) });
    pos += Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}

export const createTarGz = (entries: readonly TarEntry[]): Buffer => gzipSync(createTar(entries));
export const readTarGz = (data: Buffer): TarEntry[] => readTar(gunzipSync(data));
