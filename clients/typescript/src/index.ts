// volley's TypeScript client: typed calls both ways with a volley server, over
// WebTransport (browsers) or WebSocket (browsers and Node 20+). The types and remotes come from a
// module volley-net-ts generates from the game's Rust declarations.

export { d, decode, encode, DecodeError, Reader, Writer } from "./codec.js";
export type { Desc } from "./codec.js";
export { clientEvent, clientFn, protocolOf, serverEvent, serverFn } from "./remotes.js";
export type { AnyRemote, ClientEvent, ClientFn, ProtocolInfo, ServerEvent, ServerFn } from "./remotes.js";
export { Client, connect, ConnectError, FunctionError, PROTOCOL_VERSION, Reject } from "./client.js";
export type { CloseReason, ConnectionState, ConnectOptions, FunctionErrorKind, ReconnectPolicy, Targets } from "./client.js";
export type { TransportKind } from "./link.js";
export type { WebSocketClass } from "./websocket.js";
export type { WebTransportClass } from "./webtransport.js";
export { decodeBody, encodeBody, encodeFrame } from "./frames.js";
export type { Message } from "./frames.js";
