// volley's frames (PROTOCOL.md, "Frames"): each message is `length (varint) ·
// body`, the body a one-byte tag and the message's fields.

import { DecodeError, Reader, Writer } from "./codec.js";

/** A message of the wire protocol. */
export type Message =
  | { tag: "hello"; version: number; hash: bigint; token: Uint8Array }
  | { tag: "welcome"; player: bigint }
  | { tag: "refuse"; code: number; message: string }
  | { tag: "event"; remote: number; payload: Uint8Array }
  | { tag: "request"; call: number; remote: number; payload: Uint8Array }
  /** `status` 0 is Ok (tag 5); any other is tag 6. */
  | { tag: "response"; call: number; status: number; payload: Uint8Array }
  | { tag: "cancel"; call: number }
  | { tag: "ping"; seq: number }
  | { tag: "pong"; seq: number }
  | { tag: "goodbye"; code: number; message: string }
  /** Resume (PROTOCOL.md, "Resume"): how many of the peer's numbered frames were processed. */
  | { tag: "ack"; received: bigint }
  | { tag: "resumeToken"; token: Uint8Array }
  | { tag: "resume"; version: number; hash: bigint; token: Uint8Array; received: bigint }
  | { tag: "resumed"; received: bigint; token: Uint8Array };

/** The bytes of a resume token. */
export const RESUME_TOKEN_LEN = 16;

function hashBytes(hash: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, hash, true);
  return bytes;
}

const utf8 = new TextEncoder();
// `ignoreBOM`: a text that starts with U+FEFF keeps it, as in Rust.
const fromUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function text(r: Reader): string {
  try {
    return fromUtf8.decode(r.rest());
  } catch {
    throw new DecodeError("text is not UTF-8");
  }
}

/** The message's body: its tag and fields. */
export function encodeBody(message: Message, w: Writer = new Writer()): Writer {
  switch (message.tag) {
    case "hello":
      w.byte(0);
      w.varint(message.version);
      w.bytes(hashBytes(message.hash));
      w.bytes(message.token);
      break;
    case "welcome":
      w.byte(1);
      w.varbig(message.player);
      break;
    case "refuse":
      w.byte(2);
      w.byte(message.code);
      w.bytes(utf8.encode(message.message));
      break;
    case "event":
      w.byte(3);
      w.varint(message.remote);
      w.bytes(message.payload);
      break;
    case "request":
      w.byte(4);
      w.varint(message.call);
      w.varint(message.remote);
      w.bytes(message.payload);
      break;
    case "response":
      if (message.status === 0) {
        w.byte(5);
        w.varint(message.call);
      } else {
        w.byte(6);
        w.varint(message.call);
        w.byte(message.status);
      }
      w.bytes(message.payload);
      break;
    case "cancel":
      w.byte(7);
      w.varint(message.call);
      break;
    case "ping":
      w.byte(8);
      w.varint(message.seq);
      break;
    case "pong":
      w.byte(9);
      w.varint(message.seq);
      break;
    case "goodbye":
      w.byte(10);
      w.byte(message.code);
      w.bytes(utf8.encode(message.message));
      break;
    case "ack":
      w.byte(11);
      w.varbig(message.received);
      break;
    case "resumeToken":
      w.byte(12);
      w.bytes(message.token);
      break;
    case "resume":
      w.byte(13);
      w.varint(message.version);
      w.bytes(hashBytes(message.hash));
      w.bytes(message.token);
      w.varbig(message.received);
      break;
    case "resumed":
      w.byte(14);
      w.varbig(message.received);
      w.bytes(message.token);
      break;
  }
  return w;
}

/** The whole frame: length, then body. */
export function encodeFrame(message: Message): Uint8Array {
  const body = encodeBody(message).done();
  const w = new Writer();
  w.varint(body.length);
  w.bytes(body);
  return w.done();
}

/** Reads one body; throws `DecodeError` for anything PROTOCOL.md calls a violation. */
export function decodeBody(body: Uint8Array): Message {
  const r = new Reader(body);
  const tag = r.byte();
  const end = <M extends Message>(message: M): M => {
    if (r.at !== body.length) throw new DecodeError(`${body.length - r.at} bytes after a message of tag ${tag}`);
    return message;
  };
  switch (tag) {
    case 0: {
      const version = r.varint();
      const hash = new DataView(r.bytes(8).slice().buffer).getBigUint64(0, true);
      return { tag: "hello", version, hash, token: r.rest().slice() };
    }
    case 1:
      return end({ tag: "welcome", player: r.varbig(64) });
    case 2:
      return { tag: "refuse", code: r.byte(), message: text(r) };
    case 3:
      return { tag: "event", remote: r.varint(), payload: r.rest() };
    case 4:
      return { tag: "request", call: r.varint(), remote: r.varint(), payload: r.rest() };
    case 5:
      return { tag: "response", call: r.varint(), status: 0, payload: r.rest() };
    case 6: {
      const call = r.varint();
      const status = r.byte();
      if (status === 0) throw new DecodeError("status 0 under tag 6");
      return { tag: "response", call, status, payload: r.rest() };
    }
    case 7:
      return end({ tag: "cancel", call: r.varint() });
    case 8:
      return end({ tag: "ping", seq: r.varint() });
    case 9:
      return end({ tag: "pong", seq: r.varint() });
    case 10:
      return { tag: "goodbye", code: r.byte(), message: text(r) };
    case 11:
      return end({ tag: "ack", received: r.varbig(64) });
    case 12:
      return end({ tag: "resumeToken", token: r.bytes(RESUME_TOKEN_LEN).slice() });
    case 13: {
      const version = r.varint();
      const hash = new DataView(r.bytes(8).slice().buffer).getBigUint64(0, true);
      const token = r.bytes(RESUME_TOKEN_LEN).slice();
      return end({ tag: "resume", version, hash, token, received: r.varbig(64) });
    }
    case 14: {
      const received = r.varbig(64);
      return end({ tag: "resumed", received, token: r.bytes(RESUME_TOKEN_LEN).slice() });
    }
    default:
      throw new DecodeError(`unknown tag ${tag}`);
  }
}
