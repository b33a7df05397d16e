// A volley client over WebTransport or WebSocket: the client side of
// PROTOCOL.md.

import { decode, DecodeError, encode, Reader } from "./codec.js";
import { decodeBody, encodeFrame, type Message } from "./frames.js";
import type { Link, LinkEvents, TransportKind } from "./link.js";
import type { ClientEvent, ClientFn, ProtocolInfo, ServerEvent, ServerFn } from "./remotes.js";
import { Replay } from "./replay.js";
import { openWebSocket, type WebSocketClass } from "./websocket.js";
import { openWebTransport, type WebTransportClass } from "./webtransport.js";

/** The wire protocol version this client speaks (PROTOCOL.md). */
export const PROTOCOL_VERSION = 3;


/** How a call ended, when not with its answer: the same kinds as Rust's `FunctionError`. */
export type FunctionErrorKind =
  | "Timeout"
  | "Cancelled"
  | "BadRequest"
  | "InvalidResult"
  | "Unprocessed"
  | "Rejected"
  | "Disconnected"
  | "Overloaded"
  | "RateLimited"
  | "TooLarge";

export class FunctionError extends Error {
  constructor(
    readonly kind: FunctionErrorKind,
    message?: string,
  ) {
    super(message ?? kind);
    this.name = "FunctionError";
  }
}

/** Thrown by a handler: the caller gets `Rejected` with this message. */
export class Reject extends Error {}

const STATUS: Record<number, FunctionErrorKind> = {
  1: "Rejected",
  2: "BadRequest",
  3: "Unprocessed",
  4: "Cancelled",
  5: "Overloaded",
  6: "RateLimited",
  7: "TooLarge",
};

/** Why `connect` failed: refused by the server (with its code), or the transport. */
export class ConnectError extends Error {
  constructor(
    readonly kind:
      | "VersionMismatch"
      | "RemotesMismatch"
      | "Unauthorized"
      | "Unavailable"
      | "ResumeRefused"
      | "Refused"
      | "Transport",
    message: string,
  ) {
    super(message);
    this.name = "ConnectError";
  }
}

const REFUSE: ConnectError["kind"][] = ["VersionMismatch", "RemotesMismatch", "Unauthorized", "Unavailable", "ResumeRefused"];
const GOODBYE = ["Normal", "Kicked", "ShuttingDown", "ProtocolViolation", "IdleTimeout", "TooSlow"];

/** Why a connection ended. */
export type CloseReason =
  | { kind: "local" }
  | { kind: "remote"; code: string; message: string }
  | { kind: "lost"; message: string };

export interface ConnectOptions {
  /** Bytes (or text) the server's authenticator reads. */
  token?: Uint8Array | string;
  /** A WebSocket class, where there is no global one (Node 20 without `--experimental-websocket`). */
  WebSocket?: WebSocketClass;
  /** A WebTransport class, where there is no global one. */
  WebTransport?: WebTransportClass;
  /**
   * Over WebTransport, the SHA-256 of a self-signed server certificate the
   * page trusts (bytes, or hex as the demo server prints it). The browser
   * takes only ECDSA certificates valid at most 14 days this way; a server
   * with a CA-issued certificate needs none.
   */
  serverCertificateHashes?: readonly (Uint8Array | string)[];
  /** Timeout of calls whose remote declares none. Default: 10,000 ms. */
  defaultTimeoutMs?: number;
  /** The largest frame sent or accepted. Default: 1 MiB, as volley's. */
  maxFrameLen?: number;
  /** How long the handshake may take. Default: 5,000 ms. */
  handshakeTimeoutMs?: number;
  /** Whether and how to reconnect after losing an established connection. Default: none. */
  reconnect?: ReconnectPolicy;
  /**
   * With `reconnect`: resume first, as the Rust client does. The same player
   * comes back with every call and event in flight either way delivered
   * once, if the server still keeps it; otherwise the client joins anew.
   * Default: true.
   */
  resume?: boolean;
  /** How long to try resuming: the server's grace period. Default: 5,000 ms, as volley's. */
  resumeGraceMs?: number;
}

/**
 * How a client reconnects, as the Rust client's `ReconnectPolicy`: after
 * `initialDelayMs`, then waits doubling up to `maxDelayMs` (each shortened by
 * up to a quarter, at random), for at most `maxAttempts` attempts. It
 * reconnects when the connection was lost or the server shut down; not after
 * `close()`, a kick, a refusal or a protocol violation. Calls made while
 * disconnected fail `Disconnected` at once.
 */
export interface ReconnectPolicy {
  /** Default: 100 ms. */
  initialDelayMs?: number;
  /** Default: 5,000 ms. */
  maxDelayMs?: number;
  /** Default: 10. */
  maxAttempts?: number;
}

/**
 * Where to reach a server that speaks both: WebTransport first, and WebSocket
 * where the runtime has no WebTransport or its session does not come up
 * within `fallbackAfterMs`.
 */
export interface Targets {
  /** `https://host:port/path` */
  webtransport?: string;
  /** `ws://host:port/path` or `wss://…` */
  websocket?: string;
  /** How long WebTransport may take to come up before WebSocket is tried. Default: 3,000 ms. */
  fallbackAfterMs?: number;
}

/** Where a client's connection stands. */
export type ConnectionState = "connected" | "reconnecting" | "closed";

interface Pending {
  resolve(bytes: Uint8Array): void;
  reject(error: FunctionError): void;
}

const utf8 = new TextEncoder();
const empty = new Uint8Array();

/** The largest unreliable event payload, as volley's `max_unreliable_len` (bytes). */
const MAX_UNRELIABLE_LEN = 1200;
/** Unreliable events are dropped while more than this is waiting on the stream, as volley's `unreliable_backlog` (bytes). */
const UNRELIABLE_BACKLOG = 16 * 1024;

type Opener = (events: LinkEvents) => Link;

/**
 * Connects to the volley server at `target`: a `ws://`/`wss://` URL for
 * WebSocket, an `https://` URL for WebTransport, or both as {@link Targets}
 * (WebTransport first, WebSocket as the fallback). `client.transport` says
 * which it got; reconnects use the same one.
 */
export async function connect(target: string | Targets, protocol: ProtocolInfo, options: ConnectOptions = {}): Promise<Client> {
  if (typeof target === "string") {
    const open = target.startsWith("https://") ? webTransportOpener(target, options) : webSocketOpener(target, options);
    return dialWith(open, protocol, options);
  }
  if (target.webtransport === undefined) {
    if (target.websocket === undefined) throw new ConnectError("Transport", "no URL to connect to");
    return dialWith(webSocketOpener(target.websocket, options), protocol, options);
  }
  if (target.websocket === undefined) return dialWith(webTransportOpener(target.webtransport, options), protocol, options);
  try {
    const handshakeTimeoutMs = Math.min(options.handshakeTimeoutMs ?? 5_000, target.fallbackAfterMs ?? 3_000);
    return await dialWith(webTransportOpener(target.webtransport, options), protocol, { ...options, handshakeTimeoutMs });
  } catch (e) {
    // A refusal would be the same over WebSocket; only a transport failure falls back.
    if (!(e instanceof ConnectError) || e.kind !== "Transport") throw e;
    return dialWith(webSocketOpener(target.websocket, options), protocol, options);
  }
}

async function dialWith(open: Opener, protocol: ProtocolInfo, options: ConnectOptions): Promise<Client> {
  const client = new Client(open, protocol, options);
  await client.dial();
  return client;
}

function webSocketOpener(url: string, options: ConnectOptions): Opener {
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (Socket === undefined) {
    throw new ConnectError("Transport", "no WebSocket: pass one in ConnectOptions.WebSocket (Node 20: --experimental-websocket)");
  }
  return (events) => openWebSocket(url, Socket, events);
}

function webTransportOpener(url: string, options: ConnectOptions): Opener {
  const Session = options.WebTransport ?? (globalThis as { WebTransport?: WebTransportClass }).WebTransport;
  if (Session === undefined) throw new ConnectError("Transport", "no WebTransport in this runtime");
  const hashes = (options.serverCertificateHashes ?? []).map((h) => (typeof h === "string" ? fromHex(h) : h));
  return (events) => openWebTransport(url, hashes, Session, events);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  return both;
}

function fromHex(hex: string): Uint8Array {
  const digits = hex.replace(/[^0-9a-fA-F]/g, "");
  if (digits.length !== 64) throw new ConnectError("Transport", `a SHA-256 certificate hash has 64 hex digits, not ${digits.length}`);
  return Uint8Array.from(digits.match(/../g)!, (byte) => parseInt(byte, 16));
}

export class Client {
  /** This client's player id, as the server numbered it. */
  playerId = 0n;
  /** The smoothed round-trip time in milliseconds, once a pong came. */
  rtt: number | undefined;
  /** Resolves once the connection has ended, with why. */
  readonly closed: Promise<CloseReason>;

  /** Where the connection stands; `onStateChange` tells each change. */
  state: ConnectionState = "connected";
  /** Unreliable events dropped because the connection was backed up. */
  unreliableDropped = 0;

  private link!: Link;
  private input = new Uint8Array(0);
  private nextCall = 1;
  private pending = new Map<number, Pending>();
  private handlers = new Map<number, (payload: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>>();
  private running = new Map<number, AbortController>();
  private listeners = new Map<number, Set<(payload: Uint8Array) => void>>();
  private open = false;
  private ended: CloseReason | undefined;
  /** No more redialing: closed by us, or for good. */
  private final = false;
  private endedWith!: (reason: CloseReason) => void;
  private welcomed: ((error?: Error) => void) | undefined;
  private stateListeners = new Set<(state: ConnectionState) => void>();
  private resumedListeners = new Set<() => void>();
  private pingSeq = 0;
  private pingSent = new Map<number, number>();
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  /** Resume: what is kept for the server, once it made the player resumable. */
  private replay: Replay | undefined;
  /** The frame after the welcome says whether the player is resumable. */
  private tokenExpected = false;
  /** The connection was lost; resuming. */
  private away = false;
  private readonly maxFrameLen: number;
  private readonly defaultTimeoutMs: number;

  /** @internal use `connect`. */
  constructor(
    private readonly openLink: Opener,
    private readonly protocol: ProtocolInfo,
    private readonly options: ConnectOptions,
  ) {
    this.maxFrameLen = options.maxFrameLen ?? 1 << 20;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
    this.closed = new Promise((resolve) => (this.endedWith = resolve));
  }

  /** Which transport the connection runs over. */
  get transport(): TransportKind {
    return this.link.kind;
  }

  /** Calls `listener` at each change of `state`; returns the unsubscribe. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Calls `listener` each time a lost connection is resumed: the same player,
   * nothing in flight lost. A `connected` after `reconnecting` without it is a
   * new player (a new `playerId`): the server no longer kept the old one.
   * Returns the unsubscribe.
   */
  onResumed(listener: () => void): () => void {
    this.resumedListeners.add(listener);
    return () => this.resumedListeners.delete(listener);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  /** Whether this client asks the server to make its player resumable. */
  private get wantsResume(): boolean {
    return this.options.reconnect !== undefined && this.options.resume !== false;
  }

  /** @internal Opens a connection and shakes hands: a hello, or a resume of the player it had. */
  async dial(resume = false): Promise<void> {
    this.input = new Uint8Array(0);
    this.ended = undefined;
    const current = () => link === this.link;
    const link: Link = this.openLink({
      bytes: (bytes) => current() && this.receive(bytes),
      datagram: (bytes) => current() && this.receiveDatagram(bytes),
      violation: (reason) => current() && this.violation(reason),
      lost: (message) => current() && this.end({ kind: "lost", message }),
    });
    this.link = link;
    const options = this.options;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.link.close();
        reject(new ConnectError("Transport", "handshake timed out"));
      }, options.handshakeTimeoutMs ?? 5_000);
      this.welcomed = (error) => {
        clearTimeout(timer);
        this.welcomed = undefined;
        if (error) reject(error);
        else resolve();
      };
      link.opened.then(
        () => {
          const replay = this.replay;
          if (resume && replay?.token !== undefined) {
            replay.acknowledged = replay.received;
            const { hash } = this.protocol;
            this.send({ tag: "resume", version: PROTOCOL_VERSION, hash, token: replay.token, received: replay.received });
            return;
          }
          const token = typeof options.token === "string" ? utf8.encode(options.token) : (options.token ?? empty);
          const hello = encodeFrame({ tag: "hello", version: PROTOCOL_VERSION, hash: this.protocol.hash, token });
          if (!this.wantsResume) return this.sendBytes(hello);
          // Asks to be resumable, in the same write as the hello: the server
          // reads it only until it answers the hello.
          this.sendBytes(concat(hello, encodeFrame({ tag: "ack", received: 0n })));
        },
        () => {}, // `lost` ends the handshake
      );
    });
    this.open = true;
    this.setState("connected");
    if (resume) for (const listener of this.resumedListeners) listener();
    this.ping();
    this.keepAlive = setInterval(() => this.ping(), 10_000);
  }

  /** Calls `remote` on the server. Rejects with a `FunctionError`. */
  invoke<Req, Resp>(
    remote: ServerFn<Req, Resp>,
    req: Req,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Resp> {
    if (!this.open && !this.away) return Promise.reject(new FunctionError("Disconnected"));
    let payload: Uint8Array;
    try {
      payload = encode(remote.request, req);
    } catch (e) {
      return Promise.reject(new FunctionError("BadRequest", `could not encode the request: ${String(e)}`));
    }
    const call = this.nextCall++;
    const request = encodeFrame({ tag: "request", call, remote: remote.id, payload });
    if (request.length > this.maxFrameLen) return Promise.reject(new FunctionError("TooLarge"));
    const timeoutMs = options.timeoutMs ?? remote.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<Resp>((resolve, reject) => {
      const giveUp = (error: FunctionError) => {
        if (!this.pending.has(call)) return;
        this.pending.delete(call);
        clearTimeout(timer);
        this.sendNumbered(encodeFrame({ tag: "cancel", call }));
        reject(error);
      };
      const timer = setTimeout(() => giveUp(new FunctionError("Timeout")), timeoutMs);
      options.signal?.addEventListener("abort", () => giveUp(new FunctionError("Cancelled")), { once: true });
      this.pending.set(call, {
        resolve: (bytes) => {
          clearTimeout(timer);
          try {
            resolve(decode(remote.response, bytes));
          } catch (e) {
            reject(new FunctionError("InvalidResult", String(e)));
          }
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.sendNumbered(request);
    });
  }

  /** Answers the server's calls of `remote`. A handler that throws `Reject` answers `Rejected`; any other throw `Unprocessed`. */
  onRequest<Req, Resp>(remote: ClientFn<Req, Resp>, handler: (req: Req, signal: AbortSignal) => Resp | Promise<Resp>): void {
    this.handlers.set(remote.id, async (payload, signal) => {
      const req = decode(remote.request, payload);
      return encode(remote.response, await handler(req, signal));
    });
  }

  /**
   * Fires `remote` at the server. An unreliable event goes as a datagram
   * over WebTransport, never queued behind reliable traffic; over WebSocket
   * it is dropped rather than queued while the connection is backed up, as
   * volley's Rust client does. Returns false when it was dropped (counted in
   * `unreliableDropped`); throws `TooLarge` for an unreliable payload over
   * 1,200 bytes or a datagram the path cannot carry.
   */
  fire<T>(remote: ServerEvent<T>, value: T): boolean {
    if (!this.open && !this.away) throw new FunctionError("Disconnected");
    const payload = encode(remote.value, value);
    const frame = encodeFrame({ tag: "event", remote: remote.id, payload });
    if (frame.length > this.maxFrameLen) throw new FunctionError("TooLarge");
    if (remote.unreliable) {
      if (payload.length > MAX_UNRELIABLE_LEN) throw new FunctionError("TooLarge");
      if (this.away) {
        // State the next one supersedes is not kept while away.
        this.unreliableDropped++;
        return false;
      }
      let sent: boolean;
      if (this.link.maxDatagramSize > 0) {
        if (frame.length > this.link.maxDatagramSize) throw new FunctionError("TooLarge");
        sent = this.link.sendDatagram(frame);
      } else {
        sent = this.link.backlog <= UNRELIABLE_BACKLOG;
        if (sent) this.sendNumbered(frame);
      }
      if (!sent) this.unreliableDropped++;
      return sent;
    }
    this.sendNumbered(frame);
    return true;
  }

  /** Calls `listener` with each `remote` the server fires; returns the unsubscribe. */
  on<T>(remote: ClientEvent<T>, listener: (value: T) => void): () => void {
    const set = this.listeners.get(remote.id) ?? new Set();
    this.listeners.set(remote.id, set);
    const wrapped = (payload: Uint8Array) => {
      let value: T;
      try {
        value = decode(remote.value, payload);
      } catch {
        return; // a bad event is dropped, as volley's Rust client does
      }
      listener(value);
    };
    set.add(wrapped);
    return () => set.delete(wrapped);
  }

  /** Says goodbye and closes. */
  close(): void {
    if (this.open) {
      this.send({ tag: "goodbye", code: 0, message: "client closing" });
    }
    this.final = true;
    this.away = false;
    this.end({ kind: "local" });
  }

  private send(message: Message): void {
    this.sendBytes(encodeFrame(message));
  }

  private sendBytes(bytes: Uint8Array): void {
    this.link.send(bytes);
  }

  /** Sends a numbered frame (a request, response, event on the stream or cancel), kept until acknowledged if resumable; while away, only kept. */
  private sendNumbered(bytes: Uint8Array): void {
    this.replay?.record(bytes);
    if (!this.away) this.sendBytes(bytes);
  }

  /** Tells the server how many of its numbered frames were processed. */
  private acknowledge(): void {
    const replay = this.replay;
    if (replay === undefined || replay.received === replay.acknowledged) return;
    replay.acknowledged = replay.received;
    this.send({ tag: "ack", received: replay.received });
  }

  private ping(): void {
    const seq = this.pingSeq++;
    this.pingSent.set(seq, performance.now());
    this.send({ tag: "ping", seq });
    this.acknowledge();
  }

  private receive(bytes: Uint8Array): void {
    const all = concat(this.input, bytes);
    let at = 0;
    try {
      while (at < all.length) {
        const r = new Reader(all.subarray(at));
        let len: number;
        try {
          len = r.varint(32);
        } catch (e) {
          if (e instanceof DecodeError && e.message === "truncated") break;
          throw e;
        }
        if (len > this.maxFrameLen) return this.violation(`frame of ${len} bytes`);
        if (len === 0) return this.violation("empty frame");
        if (r.buf.length - r.at < len) break;
        this.message(decodeBody(r.bytes(len)));
        at += r.at;
      }
    } catch (e) {
      return this.violation(e instanceof Error ? e.message : String(e));
    }
    this.input = all.slice(at);
    if (this.replay?.ackDue) this.acknowledge();
  }

  /** One datagram: exactly one frame, an unreliable event of the server's (PROTOCOL.md). */
  private receiveDatagram(bytes: Uint8Array): void {
    if (!this.open) return; // it overtook the welcome: dropped, as datagrams may be
    try {
      const r = new Reader(bytes);
      const len = r.varint(32);
      const message = len > 0 && len <= this.maxFrameLen ? decodeBody(r.bytes(len)) : undefined;
      if (message?.tag !== "event" || r.at !== bytes.length) return this.violation("datagram that is not one event");
      this.message(message);
    } catch (e) {
      this.violation(`datagram: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private message(message: Message): void {
    if (this.tokenExpected) {
      // The frame after the welcome: a resume token, or none at all.
      this.tokenExpected = false;
      if (message.tag === "resumeToken") {
        if (this.replay !== undefined) this.replay.token = message.token;
        return;
      }
      this.replay = undefined;
    }
    const numbered = message.tag === "event" || message.tag === "request" || message.tag === "response" || message.tag === "cancel";
    if (numbered && this.open && this.replay !== undefined) this.replay.received++;
    switch (message.tag) {
      case "welcome":
        this.playerId = message.player;
        // Open from here: the frames after it in this read count already.
        this.open = true;
        if (this.wantsResume) {
          this.replay = new Replay();
          this.tokenExpected = true;
        }
        this.welcomed?.();
        return;
      case "resumed": {
        const again = this.replay?.after(message.received);
        if (again === undefined) throw new DecodeError("a resume the client cannot follow");
        this.replay!.token = message.token;
        this.away = false;
        this.open = true;
        for (const frame of again) this.sendBytes(frame);
        this.welcomed?.();
        return;
      }
      case "ack":
        if (this.replay === undefined || !this.replay.acknowledgedByServer(message.received)) {
          throw new DecodeError("an acknowledgement of frames never sent");
        }
        return;
      case "refuse": {
        const code = REFUSE[message.code] ?? "Refused";
        this.welcomed?.(new ConnectError(code, message.message));
        this.end({ kind: "remote", code, message: message.message });
        return;
      }
      case "event":
        for (const listener of this.listeners.get(message.remote) ?? []) listener(message.payload);
        return;
      case "request":
        this.serve(message.call, message.remote, message.payload.slice());
        return;
      case "response": {
        const pending = this.pending.get(message.call);
        if (pending === undefined) return; // answered after we gave up
        this.pending.delete(message.call);
        if (message.status === 0) return pending.resolve(message.payload);
        const kind = STATUS[message.status] ?? "Unprocessed";
        const reason = kind === "Rejected" ? new TextDecoder().decode(message.payload) : undefined;
        pending.reject(new FunctionError(kind, reason));
        return;
      }
      case "cancel":
        this.running.get(message.call)?.abort();
        return;
      case "ping":
        this.send({ tag: "pong", seq: message.seq });
        this.acknowledge();
        return;
      case "pong": {
        const sent = this.pingSent.get(message.seq);
        this.pingSent.delete(message.seq);
        if (sent !== undefined) {
          const sample = performance.now() - sent;
          this.rtt = this.rtt === undefined ? sample : this.rtt * 0.875 + sample * 0.125;
        }
        return;
      }
      case "goodbye":
        this.end({ kind: "remote", code: GOODBYE[message.code] ?? "Unknown", message: message.message });
        return;
      case "hello":
      case "resume":
      case "resumeToken":
        throw new DecodeError(`a ${message.tag} from the server, out of place`);
    }
  }

  private serve(call: number, id: number, payload: Uint8Array): void {
    const handler = this.handlers.get(id);
    const answer = (status: number, payload: Uint8Array) =>
      this.sendNumbered(encodeFrame({ tag: "response", call, status, payload }));
    if (handler === undefined) return answer(3, empty);
    const controller = new AbortController();
    this.running.set(call, controller);
    handler(payload, controller.signal).then(
      (bytes) => {
        this.running.delete(call);
        if (controller.signal.aborted) return answer(4, empty);
        if (bytes.length + 16 > this.maxFrameLen) return answer(7, empty);
        answer(0, bytes);
      },
      (error: unknown) => {
        this.running.delete(call);
        if (error instanceof DecodeError) return answer(2, empty);
        if (error instanceof Reject) return answer(1, utf8.encode(error.message));
        answer(3, empty);
      },
    );
  }

  /** Whether `reason` is worth redialing for (as the Rust client decides). */
  private static redials(reason: CloseReason): boolean {
    return Client.lostInTransit(reason) || (reason.kind === "remote" && reason.code === "ShuttingDown");
  }

  /** The transport was lost, not ended for breaking the protocol. */
  private static lostInTransit(reason: CloseReason): boolean {
    return reason.kind === "lost" && !reason.message.startsWith("protocol violation");
  }

  /** Redials with backoff; ends for good once the attempts are spent. */
  private async reconnect(policy: ReconnectPolicy, reason: CloseReason): Promise<void> {
    this.setState("reconnecting");
    let delay = policy.initialDelayMs ?? 100;
    const attempts = policy.maxAttempts ?? 10;
    for (let attempt = 0; attempt < attempts && !this.final; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, delay * (1 - Math.random() / 4)));
      if (this.final) break;
      try {
        await this.dial();
        return;
      } catch {
        delay = Math.min(delay * 2, policy.maxDelayMs ?? 5_000);
      }
    }
    this.finish(reason);
  }

  private violation(reason: string): void {
    this.send({ tag: "goodbye", code: 3, message: reason });
    this.end({ kind: "lost", message: `protocol violation: ${reason}` });
  }

  /** The current connection ended: its calls fail; redial, or end for good. */
  private end(reason: CloseReason): void {
    if (this.away) {
      // A resume attempt failed; the resume loop judges.
      this.welcomed?.(new ConnectError("Transport", reason.kind === "lost" ? reason.message : "closed"));
      this.link.close();
      return;
    }
    if (this.ended) return;
    if (Client.lostInTransit(reason) && this.open && this.replay?.token !== undefined && !this.replay.broken && !this.final) {
      return this.goAway();
    }
    this.ended = reason;
    const wasOpen = this.open;
    this.open = false;
    clearInterval(this.keepAlive);
    const handshaking = this.welcomed;
    handshaking?.(new ConnectError("Transport", reason.kind === "local" ? "closed" : reason.message));
    for (const pending of this.pending.values()) pending.reject(new FunctionError("Disconnected"));
    this.pending.clear();
    for (const running of this.running.values()) running.abort();
    this.running.clear();
    this.pingSent.clear();
    this.link.close();
    // A failed redial is the reconnect loop's to judge.
    if (handshaking && !wasOpen && this.state === "reconnecting") return;
    const policy = this.options.reconnect;
    if (wasOpen && policy !== undefined && !this.final && Client.redials(reason)) {
      void this.reconnect(policy, reason);
      return;
    }
    this.finish(reason);
  }

  /** The connection was lost: the player waits at the server; resume it on a new one. */
  private goAway(): void {
    this.open = false;
    this.away = true;
    clearInterval(this.keepAlive);
    this.pingSent.clear();
    this.link.close();
    this.setState("reconnecting");
    void this.resume(Date.now() + (this.options.resumeGraceMs ?? 5_000));
  }

  /** Redials with the resume token until the grace period ends; then joins anew by the reconnect policy. */
  private async resume(until: number): Promise<void> {
    const policy = this.options.reconnect ?? {};
    let delay = 0;
    while (this.away && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(Math.max(delay * 2, policy.initialDelayMs ?? 100), policy.maxDelayMs ?? 5_000);
      if (!this.away) return;
      try {
        // Back: the resumed answer ended `away`.
        await this.dial(true);
        return;
      } catch (e) {
        if (e instanceof ConnectError && e.kind === "ResumeRefused") break;
      }
    }
    if (!this.away) return;
    // Not resumed: the connection ends for real, and the client joins anew.
    this.away = false;
    this.replay = undefined;
    this.ended = undefined;
    this.open = true; // what was open ends now
    this.end({ kind: "lost", message: "the connection was lost and not resumed" });
  }

  private finish(reason: CloseReason): void {
    this.final = true;
    this.setState("closed");
    this.endedWith(reason);
  }
}
