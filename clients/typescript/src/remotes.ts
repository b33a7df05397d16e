// The remotes a generated module declares, typed by their payloads.

import type { Desc } from "./codec.js";

/** A function the server handles: `client.invoke(F, req)`. */
export interface ServerFn<Req, Resp> {
  readonly kind: "serverFn";
  readonly name: string;
  readonly id: number;
  readonly request: Desc<Req>;
  readonly response: Desc<Resp>;
  /** The declared timeout, in milliseconds, if any. */
  readonly timeoutMs: number | undefined;
}

/** A function the client handles: `client.onRequest(F, handler)`. */
export interface ClientFn<Req, Resp> {
  readonly kind: "clientFn";
  readonly name: string;
  readonly id: number;
  readonly request: Desc<Req>;
  readonly response: Desc<Resp>;
  readonly timeoutMs: number | undefined;
}

/** An event the server listens to: `client.fire(E, value)`. */
export interface ServerEvent<T> {
  readonly kind: "serverEvent";
  readonly name: string;
  readonly id: number;
  readonly value: Desc<T>;
  readonly unreliable: boolean;
}

/** An event the client listens to: `client.on(E, listener)`. */
export interface ClientEvent<T> {
  readonly kind: "clientEvent";
  readonly name: string;
  readonly id: number;
  readonly value: Desc<T>;
  readonly unreliable: boolean;
}

// Payload types differ from remote to remote; a descriptor both reads and
// writes its type, so only `any` takes them all.
/* eslint-disable @typescript-eslint/no-explicit-any */
export type AnyRemote = ServerFn<any, any> | ClientFn<any, any> | ServerEvent<any> | ClientEvent<any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Every remote of a protocol and its hash: what `connect` needs. */
export interface ProtocolInfo {
  readonly hash: bigint;
  readonly remotes: readonly AnyRemote[];
}

export function serverFn<Req, Resp>(
  name: string,
  id: number,
  request: Desc<Req>,
  response: Desc<Resp>,
  timeoutMs: number | undefined,
): ServerFn<Req, Resp> {
  return { kind: "serverFn", name, id, request, response, timeoutMs };
}

export function clientFn<Req, Resp>(
  name: string,
  id: number,
  request: Desc<Req>,
  response: Desc<Resp>,
  timeoutMs: number | undefined,
): ClientFn<Req, Resp> {
  return { kind: "clientFn", name, id, request, response, timeoutMs };
}

export function serverEvent<T>(name: string, id: number, value: Desc<T>, unreliable: boolean): ServerEvent<T> {
  return { kind: "serverEvent", name, id, value, unreliable };
}

export function clientEvent<T>(name: string, id: number, value: Desc<T>, unreliable: boolean): ClientEvent<T> {
  return { kind: "clientEvent", name, id, value, unreliable };
}

export function protocolOf(hash: bigint, remotes: readonly AnyRemote[]): ProtocolInfo {
  return { hash, remotes };
}
