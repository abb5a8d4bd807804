// A minimal DER (ITU-T X.690) encoder: just the universal types an X.509 certificate needs. Node can
// parse certificates (crypto.X509Certificate) but cannot create them, so we assemble the bytes ourselves.

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  let rest = length;
  while (rest > 0) {
    bytes.unshift(rest & 0xff);
    rest = Math.floor(rest / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with an arbitrary tag byte (universal, context-specific or application). */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(TAG.sequence, Buffer.concat(items));
}

export function set(...items: Uint8Array[]): Buffer {
  // DER orders SET OF members by their encodings (X.690 §11.6).
  const sorted = [...items].map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(TAG.set, Buffer.concat(sorted));
}

export function boolean(value: boolean): Buffer {
  return tlv(TAG.boolean, Buffer.from([value ? 0xff : 0x00]));
}

export function nullValue(): Buffer {
  return tlv(TAG.null, Buffer.alloc(0));
}

/** INTEGER from a non-negative bigint or an unsigned big-endian byte string (e.g. a serial number). */
export function integer(value: bigint | number | Uint8Array): Buffer {
  let bytes: Buffer;
  if (value instanceof Uint8Array) {
    bytes = Buffer.from(value);
  } else {
    let n = BigInt(value);
    if (n < 0n) throw new RangeError("negative INTEGER is not supported");
    const out: number[] = [];
    do {
      out.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (n > 0n);
    bytes = Buffer.from(out);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1] ?? 0) < 0x80) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  // A leading 1 bit would make the value negative in two's complement: prefix a zero byte.
  if ((bytes[0] ?? 0) >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(TAG.integer, bytes);
}

export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(TAG.octetString, bytes);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`invalid OID ${dotted}`);
    return BigInt(p);
  });
  const [first, second, ...rest] = parts;
  if (first === undefined || second === undefined) throw new Error(`invalid OID ${dotted}`);
  const arcs = [first * 40n + second, ...rest];
  const out: number[] = [];
  for (const arc of arcs) {
    const chunk: number[] = [];
    let n = arc;
    do {
      chunk.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i] = (chunk[i] ?? 0) | 0x80;
    out.push(...chunk);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

export function utf8String(value: string): Buffer {
  return tlv(TAG.utf8String, Buffer.from(value, "utf8"));
}

export function printableString(value: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)) throw new Error(`not a PrintableString: ${value}`);
  return tlv(TAG.printableString, Buffer.from(value, "ascii"));
}

export function ia5String(value: string): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is exactly 7-bit ASCII
  if (!/^[\x00-\x7f]*$/.test(value)) throw new Error(`not an IA5String: ${value}`);
  return tlv(TAG.ia5String, Buffer.from(value, "ascii"));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in UTC with seconds. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-25T06:38:29.123Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, Buffer.from(digits.slice(2), "ascii"));
  return tlv(TAG.generalizedTime, Buffer.from(digits, "ascii"));
}

/** [n] EXPLICIT: wraps a complete encoding. */
export function explicit(tagNumber: number, content: Uint8Array): Buffer {
  return tlv(0xa0 | tagNumber, content);
}

/** [n] IMPLICIT primitive: replaces the tag of a primitive value (content octets only). */
export function implicitPrimitive(tagNumber: number, content: Uint8Array): Buffer {
  return tlv(0x80 | tagNumber, content);
}

/** Reads one TLV at offset: tag, content and where the next one starts. Enough to walk our own output. */
export function readTlv(buf: Uint8Array, offset = 0): { tag: number; content: Buffer; next: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const tag = b[offset];
  const first = b[offset + 1];
  if (tag === undefined || first === undefined) throw new Error("truncated DER");
  let length = first;
  let pos = offset + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (b[pos + i] ?? 0);
    pos += count;
  }
  if (pos + length > b.length) throw new Error("truncated DER");
  return { tag, content: b.subarray(pos, pos + length), next: pos + length };
}

/** The TLVs directly inside a constructed value. */
export function children(content: Uint8Array): { tag: number; content: Buffer; raw: Buffer }[] {
  const out: { tag: number; content: Buffer; raw: Buffer }[] = [];
  let pos = 0;
  const b = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  while (pos < b.length) {
    const t = readTlv(b, pos);
    out.push({ tag: t.tag, content: t.content, raw: b.subarray(pos, t.next) });
    pos = t.next;
  }
  return out;
}
