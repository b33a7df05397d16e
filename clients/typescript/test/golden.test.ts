// The golden frames of PROTOCOL.md, produced and read by the TypeScript code:
// the document, the Rust implementation (volley-proto's golden test) and
// this client cannot drift apart.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { decodeBody, encodeFrame, type Message } from "../src/index.js";

const doc = readFileSync(new URL("../../../../PROTOCOL.md", import.meta.url), "utf8");
const golden = new Map(
  [...doc.matchAll(/```golden\n([\s\S]*?)```/g)]
    .flatMap((block) => block[1]!.trim().split("\n"))
    .map((line) => line.split(" | ") as [string, string]),
);
const text = (s: string) => new TextEncoder().encode(s);
const bytes = (...b: number[]) => Uint8Array.from(b);

const messages: [string, Message][] = [
  ['hello v3, hash 0x0123456789abcdef, token "tk"', { tag: "hello", version: 3, hash: 0x0123456789abcdefn, token: text("tk") }],
  ["welcome player 300", { tag: "welcome", player: 300n }],
  ['refuse RemotesMismatch "no"', { tag: "refuse", code: 1, message: "no" }],
  ["event remote 2, payload 05", { tag: "event", remote: 2, payload: bytes(5) }],
  ["request id 3, remote 1, payload 2a", { tag: "request", call: 3, remote: 1, payload: bytes(0x2a) }],
  ["request id 300, remote 1, payload 2a", { tag: "request", call: 300, remote: 1, payload: bytes(0x2a) }],
  ["response id 3 ok, payload 2b", { tag: "response", call: 3, status: 0, payload: bytes(0x2b) }],
  ['response id 3 rejected "no gold"', { tag: "response", call: 3, status: 1, payload: text("no gold") }],
  ["response id 3 overloaded", { tag: "response", call: 3, status: 5, payload: bytes() }],
  ["cancel id 3", { tag: "cancel", call: 3 }],
  ["ping seq 1", { tag: "ping", seq: 1 }],
  ["pong seq 1", { tag: "pong", seq: 1 }],
  ['goodbye Kicked "bye"', { tag: "goodbye", code: 1, message: "bye" }],
];

test("every golden frame of PROTOCOL.md is produced and read back", () => {
  const frames = [...golden.keys()].filter((k) => !k.startsWith("remotes hash"));
  assert.deepEqual(messages.map(([label]) => label).sort(), frames.sort(), "a golden line without its message here");
  for (const [label, message] of messages) {
    const hex = Array.from(encodeFrame(message), (b) => b.toString(16).padStart(2, "0")).join(" ");
    assert.equal(hex, golden.get(label), label);
    const frame = encodeFrame(message);
    assert.deepEqual(decodeBody(frame.subarray(1)), message, label);
  }
});

test("a body PROTOCOL.md calls a violation is refused", () => {
  for (const bad of [bytes(11), bytes(7), bytes(7, 3, 0), bytes(6, 3, 0), bytes(10, 1, 0xff)]) {
    assert.throws(() => decodeBody(bad));
  }
});
