// The TypeScript codec against Rust's postcard, byte for byte, both ways:
// values proptest makes in Rust are decoded and encoded again here; values
// made here are decoded and encoded again by Rust. The type, `Everything`,
// holds every shape the generator maps (volley-ts/examples/codec_corpus.rs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import { decode, encode } from "../src/index.js";
import { ROUND_TRIP, type Everything, type Shape } from "./corpus_protocol.js";

const repo = new URL("../../../../", import.meta.url).pathname;
const corpus = process.env["VOLLEY_CODEC_CORPUS"] ?? `${repo}target/debug/examples/codec_corpus`;
const desc = ROUND_TRIP.request;

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text: string) => new Uint8Array(text.match(/../g)!.map((h) => parseInt(h, 16)));

test("values Rust encoded decode and encode again to the same bytes", () => {
  const lines = execFileSync(corpus, ["sample", "500"], { encoding: "utf8" }).trim().split("\n");
  assert.equal(lines.length, 500);
  for (const line of lines) {
    const value = decode(desc, unhex(line));
    assert.equal(hex(encode(desc, value)), line);
  }
});

// A small deterministic generator (xorshift), so a failure repeats.
let seed = 0x2545f491;
const next = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const int = (lo: number, hi: number) => Math.floor(lo + next() * (hi - lo + 1));
const big = (bits: number, signed: boolean) => {
  let n = 0n;
  for (let i = 0; i < bits; i += 16) n = (n << 16n) | BigInt(int(0, 0xffff));
  n &= (1n << BigInt(bits)) - 1n;
  return signed && n >= 1n << BigInt(bits - 1) ? n - (1n << BigInt(bits)) : n;
};
const letters = ["a", "Z", "é", "ß", "漢", "🎲", " ", "\n", "\u0000", "\u{10FFFF}"];
const text = (max: number) => Array.from({ length: int(0, max) }, () => letters[int(0, letters.length - 1)]!).join("");
const shape = (): Shape => {
  switch (int(0, 3)) {
    case 0:
      return { tag: "Empty" };
    case 1:
      return { tag: "Circle", value: (next() - 0.5) * 1e9 };
    case 2:
      return { tag: "Pair", values: [int(-32768, 32767), next() < 0.5 ? undefined : text(5)] };
    default:
      return { tag: "Rect", w: int(0, 2 ** 32 - 1), h: int(0, 2 ** 32 - 1), tags: Array.from({ length: int(0, 3) }, () => text(4)) };
  }
};
const everything = (): Everything => ({
  flag: next() < 0.5,
  small: int(0, 255),
  medium: int(0, 65535),
  word: int(0, 2 ** 32 - 1),
  wide: big(64, false),
  huge: big(128, false),
  tiny: int(-128, 127),
  short: int(-32768, 32767),
  int: int(-(2 ** 31), 2 ** 31 - 1),
  long: big(64, true),
  vast: big(128, true),
  single: Math.fround((next() - 0.5) * 1e6),
  double: (next() - 0.5) * 1e300,
  letter: letters[int(0, letters.length - 1)]!,
  text: text(20),
  blob: Uint8Array.from({ length: int(0, 30) }, () => int(0, 255)),
  maybe: next() < 0.5 ? undefined : int(-(2 ** 31), 2 ** 31 - 1),
  list: Array.from({ length: int(0, 4) }, () => text(6)),
  // Keys sorted and distinct, as a Rust BTreeMap encodes them.
  table: new Map([...new Set(Array.from({ length: int(0, 4) }, () => text(5)))].sort(byUtf8).map((k) => [k, big(64, false)])),
  pair: [int(0, 255), text(5)],
  shapes: Array.from({ length: int(0, 4) }, shape),
  meters: Math.fround((next() - 0.5) * 1e4),
  marker: null,
  nothing: null,
  player: { name: text(8), level: int(0, 100), gold: int(0, 2 ** 32 - 1) },
  purchase: { item: text(8), price: int(0, 1000) },
  confirm: { confirmed: next() < 0.5 },
});
function byUtf8(a: string, b: string): number {
  const [x, y] = [new TextEncoder().encode(a), new TextEncoder().encode(b)];
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

test("values TypeScript encoded decode and encode again to the same bytes in Rust", () => {
  const lines = Array.from({ length: 500 }, () => hex(encode(desc, everything())));
  const back = execFileSync(corpus, ["reencode"], { input: lines.join("\n") + "\n", encoding: "utf8" }).trim().split("\n");
  assert.deepEqual(back, lines);
});

test("bytes that do not decode are refused, never thrown as anything else", () => {
  const good = encode(desc, everything());
  for (let cut = 0; cut < good.length; cut += 7) {
    assert.throws(() => decode(desc, good.subarray(0, cut)), /truncated|over|longer|variant|option|bool|UTF-8|char/);
  }
  assert.throws(() => decode(desc, Uint8Array.from([...good, 0])), /left over/);
});
