// postcard, the payload encoding of volley (PROTOCOL.md, "Payloads"), driven by
// descriptors that volley-net-ts generates from the Rust declarations.

/** Why bytes could not be read as the type expected. */
export class DecodeError extends Error {}

/** Bytes being written. */
export class Writer {
  private buf = new Uint8Array(64);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** An unsigned LEB128 varint of a number below 2^53. */
  varint(n: number): void {
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }

  /** An unsigned LEB128 varint of a bigint. */
  varbig(n: bigint): void {
    while (n >= 0x80n) {
      this.byte(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.byte(Number(n));
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Bytes being read. */
export class Reader {
  at = 0;
  constructor(readonly buf: Uint8Array) {}

  byte(): number {
    if (this.at >= this.buf.length) throw new DecodeError("truncated");
    return this.buf[this.at++]!;
  }

  bytes(n: number): Uint8Array {
    if (this.at + n > this.buf.length) throw new DecodeError("truncated");
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  rest(): Uint8Array {
    return this.bytes(this.buf.length - this.at);
  }

  /** A varint of at most `bits` bits, as a number (bits ≤ 53). */
  varint(bits = 32): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (n >= 2 ** bits) throw new DecodeError(`varint over ${bits} bits`);
        return n;
      }
      scale *= 0x80;
    }
    throw new DecodeError("varint too long");
  }

  varbig(bits: number): bigint {
    let n = 0n;
    let shift = 0n;
    for (let i = 0; i < 19; i++) {
      const b = this.byte();
      n |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (n >= 1n << BigInt(bits)) throw new DecodeError(`varint over ${bits} bits`);
        return n;
      }
      shift += 7n;
    }
    throw new DecodeError("varint too long");
  }
}

/** How values of `T` travel: what volley-net-ts generates for each type. */
export interface Desc<T> {
  enc(w: Writer, value: T): void;
  dec(r: Reader): T;
}

const utf8 = new TextEncoder();
// `ignoreBOM`: a string that starts with U+FEFF keeps it, as in Rust.
const fromUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function int(bits: number, signed: boolean): Desc<number> {
  const max = 2 ** bits;
  return {
    enc(w, v) {
      if (!Number.isInteger(v)) throw new RangeError(`${v} is not an integer`);
      if (signed) {
        if (v < -(max / 2) || v >= max / 2) throw new RangeError(`${v} is out of range for i${bits}`);
        w.varint(v < 0 ? -2 * v - 1 : 2 * v);
      } else {
        if (v < 0 || v >= max) throw new RangeError(`${v} is out of range for u${bits}`);
        w.varint(v);
      }
    },
    dec(r) {
      const n = r.varint(bits);
      if (!signed) return n;
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    },
  };
}

function big(bits: number, signed: boolean): Desc<bigint> {
  const max = 1n << BigInt(bits);
  return {
    enc(w, v) {
      if (signed) {
        if (v < -(max / 2n) || v >= max / 2n) throw new RangeError(`${v} is out of range for i${bits}`);
        w.varbig(v < 0n ? -2n * v - 1n : 2n * v);
      } else {
        if (v < 0n || v >= max) throw new RangeError(`${v} is out of range for u${bits}`);
        w.varbig(v);
      }
    },
    dec(r) {
      const n = r.varbig(bits);
      if (!signed) return n;
      return n % 2n === 0n ? n / 2n : -(n + 1n) / 2n;
    },
  };
}

const byte8: Desc<number> = {
  enc(w, v) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`${v} is out of range for u8`);
    w.byte(v);
  },
  dec: (r) => r.byte(),
};

const str: Desc<string> = {
  enc(w, v) {
    const b = utf8.encode(v);
    w.varint(b.length);
    w.bytes(b);
  },
  dec(r) {
    const b = r.bytes(r.varint());
    try {
      return fromUtf8.decode(b);
    } catch {
      throw new DecodeError("text is not UTF-8");
    }
  },
};

function float(size: 4 | 8): Desc<number> {
  return {
    enc(w, v) {
      const b = new Uint8Array(size);
      const view = new DataView(b.buffer);
      if (size === 4) view.setFloat32(0, v, true);
      else view.setFloat64(0, v, true);
      w.bytes(b);
    },
    dec(r) {
      const b = r.bytes(size);
      const view = new DataView(b.buffer, b.byteOffset, size);
      return size === 4 ? view.getFloat32(0, true) : view.getFloat64(0, true);
    },
  };
}

type Fields = [string, Desc<unknown>][];
type Variant =
  | { k: "unit" }
  | { k: "newtype"; desc: Desc<unknown> }
  | { k: "tuple"; descs: Desc<unknown>[] }
  | { k: "struct"; fields: Fields };

function encFields(w: Writer, fields: Fields, v: Record<string, unknown>): void {
  for (const [name, desc] of fields) desc.enc(w, v[name]);
}

function decFields(r: Reader, fields: Fields, into: Record<string, unknown>): Record<string, unknown> {
  for (const [name, desc] of fields) into[name] = desc.dec(r);
  return into;
}

/** The descriptors generated code is made of. */
export const d = {
  bool: {
    enc: (w: Writer, v: boolean) => w.byte(v ? 1 : 0),
    dec(r: Reader): boolean {
      const b = r.byte();
      if (b > 1) throw new DecodeError(`bool of ${b}`);
      return b === 1;
    },
  } as Desc<boolean>,
  u8: byte8,
  i8: {
    enc(w: Writer, v: number) {
      if (!Number.isInteger(v) || v < -128 || v > 127) throw new RangeError(`${v} is out of range for i8`);
      w.byte(v & 0xff);
    },
    dec: (r: Reader) => (r.byte() << 24) >> 24,
  } as Desc<number>,
  u16: int(16, false),
  u32: int(32, false),
  i16: int(16, true),
  i32: int(32, true),
  u64: big(64, false),
  i64: big(64, true),
  u128: big(128, false),
  i128: big(128, true),
  f32: float(4),
  f64: float(8),
  str,
  char: {
    enc(w: Writer, v: string) {
      if ([...v].length !== 1) throw new RangeError(`${JSON.stringify(v)} is not one character`);
      str.enc(w, v);
    },
    dec(r: Reader) {
      const v = str.dec(r);
      if ([...v].length !== 1) throw new DecodeError("a char of several characters");
      return v;
    },
  } as Desc<string>,
  bytes: {
    enc(w: Writer, v: Uint8Array) {
      w.varint(v.length);
      w.bytes(v);
    },
    dec: (r: Reader) => r.bytes(r.varint()).slice(),
  } as Desc<Uint8Array>,
  unit: { enc() {}, dec: () => null } as Desc<null>,
  option<T>(inner: Desc<T>): Desc<T | undefined> {
    return {
      enc(w, v) {
        if (v === undefined) w.byte(0);
        else {
          w.byte(1);
          inner.enc(w, v);
        }
      },
      dec(r) {
        const tag = r.byte();
        if (tag === 0) return undefined;
        if (tag === 1) return inner.dec(r);
        throw new DecodeError(`option tag ${tag}`);
      },
    };
  },
  seq<T>(inner: Desc<T>): Desc<T[]> {
    return {
      enc(w, v) {
        w.varint(v.length);
        for (const x of v) inner.enc(w, x);
      },
      dec(r) {
        const n = r.varint();
        // Each element takes at least a byte, except zero-sized ones.
        if (n > r.buf.length - r.at && inner !== (d.unit as unknown)) throw new DecodeError("sequence longer than the frame");
        const out: T[] = [];
        for (let i = 0; i < n; i++) out.push(inner.dec(r));
        return out;
      },
    };
  },
  map<K, V>(key: Desc<K>, value: Desc<V>): Desc<Map<K, V>> {
    return {
      enc(w, v) {
        w.varint(v.size);
        for (const [k, x] of v) {
          key.enc(w, k);
          value.enc(w, x);
        }
      },
      dec(r) {
        const n = r.varint();
        if (n > r.buf.length - r.at) throw new DecodeError("map longer than the frame");
        const out = new Map<K, V>();
        for (let i = 0; i < n; i++) out.set(key.dec(r), value.dec(r));
        return out;
      },
    };
  },
  tuple<T extends unknown[]>(descs: { [I in keyof T]: Desc<T[I]> }): Desc<T> {
    const all = descs as Desc<unknown>[];
    return {
      enc(w, v) {
        all.forEach((desc, i) => desc.enc(w, v[i]));
      },
      dec: (r) => all.map((desc) => desc.dec(r)) as T,
    };
  },
  struct<T>(fields: Fields): Desc<T> {
    return {
      enc: (w, v) => encFields(w, fields, v as Record<string, unknown>),
      dec: (r) => decFields(r, fields, {}) as T,
    };
  },
  variantUnit: { k: "unit" } as Variant,
  variantNewtype: (desc: Desc<unknown>): Variant => ({ k: "newtype", desc }),
  variantTuple: (descs: Desc<unknown>[]): Variant => ({ k: "tuple", descs }),
  variantStruct: (fields: Fields): Variant => ({ k: "struct", fields }),
  enum<T extends { tag: string }>(variants: [string, Variant][]): Desc<T> {
    const index = new Map(variants.map(([name], i) => [name, i]));
    return {
      enc(w, v) {
        const i = index.get(v.tag);
        if (i === undefined) throw new RangeError(`no variant ${JSON.stringify(v.tag)}`);
        w.varint(i);
        const variant = variants[i]![1];
        const value = v as unknown as Record<string, unknown>;
        if (variant.k === "newtype") variant.desc.enc(w, value["value"]);
        else if (variant.k === "tuple") variant.descs.forEach((desc, j) => desc.enc(w, (value["values"] as unknown[])[j]));
        else if (variant.k === "struct") encFields(w, variant.fields, value);
      },
      dec(r) {
        const i = r.varint();
        const found = variants[i];
        if (found === undefined) throw new DecodeError(`variant ${i} of ${variants.length}`);
        const [tag, variant] = found;
        const out: Record<string, unknown> = { tag };
        if (variant.k === "newtype") out["value"] = variant.desc.dec(r);
        else if (variant.k === "tuple") out["values"] = variant.descs.map((desc) => desc.dec(r));
        else if (variant.k === "struct") decFields(r, variant.fields, out);
        return out as unknown as T;
      },
    };
  },
  /** A type declared later, or the type itself: looked up when used. */
  lazy<T>(get: () => Desc<T>): Desc<T> {
    return { enc: (w, v) => get().enc(w, v), dec: (r) => get().dec(r) };
  },
};

/** `value` as `desc` encodes it. */
export function encode<T>(desc: Desc<T>, value: T): Uint8Array {
  const w = new Writer();
  desc.enc(w, value);
  return w.done();
}

/** Exactly `bytes`, read as `desc`; throws `DecodeError` otherwise. */
export function decode<T>(desc: Desc<T>, bytes: Uint8Array): T {
  const r = new Reader(bytes);
  const value = desc.dec(r);
  if (r.at !== bytes.length) throw new DecodeError(`${bytes.length - r.at} bytes left over`);
  return value;
}
