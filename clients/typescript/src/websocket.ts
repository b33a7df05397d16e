// A link over WebSocket: frames in binary messages, no datagrams (unreliable
// events travel on the stream, dropped when it is backed up).

import type { Link, LinkEvents } from "./link.js";

/** A WebSocket constructor: the global one, or one passed in (Node 20 without `--experimental-websocket`). */
export type WebSocketClass = new (url: string) => WebSocket;

export function openWebSocket(url: string, Socket: WebSocketClass, events: LinkEvents): Link {
  const socket = new Socket(url);
  socket.binaryType = "arraybuffer";
  // Said once: a socket that fails fires both `error` and `close`, and some
  // fire them from inside `close()`, which the client calls when told.
  let ended = false;
  const lost = (message: string) => {
    if (ended) return;
    ended = true;
    events.lost(message);
  };
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data === "string") return events.violation("text message");
      events.bytes(new Uint8Array(event.data as ArrayBuffer));
    };
    socket.onclose = () => {
      reject(new Error("the connection closed"));
      lost("the connection closed");
    };
    socket.onerror = () => {
      reject(new Error("the connection failed"));
      lost("the connection failed");
    };
  });
  opened.catch(() => {}); // the client learns of a failure through `lost` too
  return {
    kind: "websocket",
    opened,
    maxDatagramSize: 0,
    send(bytes) {
      if (socket.readyState === 1) socket.send(bytes);
    },
    sendDatagram: () => false,
    get backlog() {
      return socket.bufferedAmount;
    },
    close() {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}
