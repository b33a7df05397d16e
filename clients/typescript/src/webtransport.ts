// A link over WebTransport (HTTP/3): frames on one bidirectional stream the
// client opens, unreliable events as datagrams, one frame each, as over
// volley's QUIC. Browsers have it (Chromium, Firefox); Safari and Node 20 do
// not, which is why `connect` can fall back to WebSocket.

import type { Link, LinkEvents } from "./link.js";

/** A WebTransport constructor: the global one, or one passed in. */
export type WebTransportClass = new (url: string, options?: WebTransportOptions) => WebTransport;

/**
 * How many datagrams may be on their way into the browser's transport (their
 * writes unsettled) before the next is dropped rather than queued: as many as
 * volley's Rust side keeps (256). The stream's own `desiredSize` is no guide:
 * its high-water mark is 1, which would drop all but the first of a burst.
 */
const DATAGRAM_QUEUE = 256;

/**
 * Opens a session at `url` (`https://host:port/path`). `certificateHashes`
 * (SHA-256 of the server's certificate) let a page trust a self-signed
 * certificate, as browsers allow for WebTransport: ECDSA, valid at most 14
 * days. Without them the certificate must chain to a trusted authority.
 */
export function openWebTransport(
  url: string,
  certificateHashes: readonly Uint8Array[],
  Session: WebTransportClass,
  events: LinkEvents,
): Link {
  const options: WebTransportOptions =
    certificateHashes.length > 0
      ? { serverCertificateHashes: certificateHashes.map((value) => ({ algorithm: "sha-256", value: value as BufferSource })) }
      : {};
  const session = new Session(url, options);
  let stream: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let datagrams: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let backlog = 0;
  let datagramsQueued = 0;
  let ended = false;
  const lost = (message: string) => {
    if (ended) return;
    ended = true;
    events.lost(message);
  };
  session.closed.then(
    () => lost("the connection closed"),
    (e: unknown) => lost(`the connection failed: ${String(e)}`),
  );
  const opened = (async () => {
    await session.ready;
    const bidi = await session.createBidirectionalStream();
    stream = bidi.writable.getWriter();
    datagrams = session.datagrams.writable.getWriter();
    void pump(bidi.readable, events.bytes).then(
      () => lost("the connection closed"),
      (e: unknown) => lost(`the connection failed: ${String(e)}`),
    );
    void pump(session.datagrams.readable, events.datagram).catch(() => {});
  })();
  opened.catch((e: unknown) => lost(`the connection failed: ${String(e)}`));
  return {
    kind: "webtransport",
    opened,
    get maxDatagramSize() {
      return session.datagrams.maxDatagramSize;
    },
    send(bytes) {
      if (stream === undefined || ended) return;
      backlog += bytes.length;
      stream.write(bytes).then(
        () => (backlog -= bytes.length),
        (e: unknown) => lost(`the connection failed: ${String(e)}`),
      );
    },
    sendDatagram(bytes) {
      if (datagrams === undefined || ended) return false;
      if (datagramsQueued >= DATAGRAM_QUEUE) return false;
      datagramsQueued++;
      const settled = () => datagramsQueued--;
      datagrams.write(bytes).then(settled, settled);
      return true;
    },
    get backlog() {
      return backlog;
    },
    close() {
      try {
        session.close({ closeCode: 0, reason: "" });
      } catch {
        // already closed
      }
    },
  };
}

/** Hands each chunk `readable` gives to `take`, until it ends. */
async function pump(readable: ReadableStream<Uint8Array>, take: (bytes: Uint8Array) => void): Promise<void> {
  const reader = readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    take(value);
  }
}
