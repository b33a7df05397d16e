// A connection's way to the server, whatever carries it: a reliable, ordered
// byte stream for frames, and datagrams where the transport has them. The
// client speaks PROTOCOL.md over a link and never knows which one it has.

/** Which transport a client's connection runs over. */
export type TransportKind = "webtransport" | "websocket";

/** What a link tells its client. Each is called only for the link that is current. */
export interface LinkEvents {
  /** Bytes from the stream, in order. */
  bytes(bytes: Uint8Array): void;
  /** One datagram (one frame). */
  datagram(bytes: Uint8Array): void;
  /** The server broke the transport's rules (a text message over WebSocket). */
  violation(reason: string): void;
  /** The link ended or failed; said once. */
  lost(message: string): void;
}

export interface Link {
  readonly kind: TransportKind;
  /** Resolves once frames can be sent; rejects if the link never opened. */
  readonly opened: Promise<void>;
  /** Sends bytes on the stream, after everything sent before. Dropped once closed. */
  send(bytes: Uint8Array): void;
  /** The largest datagram the link sends, or 0 when it has no datagrams. */
  readonly maxDatagramSize: number;
  /** Sends one datagram now; false when it was dropped because datagrams are backed up. */
  sendDatagram(bytes: Uint8Array): boolean;
  /** Bytes sent on the stream and not yet handed to the network. */
  readonly backlog: number;
  close(): void;
}
