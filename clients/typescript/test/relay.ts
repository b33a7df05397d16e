// A TCP relay the tests can cut: every connection through it ends at once,
// with a reset, as a connection lost mid-flight.

import { createConnection, createServer, type Socket } from "node:net";

export interface Relay {
  /** `127.0.0.1:PORT` */
  addr: string;
  /** Connections made through it so far. */
  connections(): number;
  /** Ends every connection through it now. */
  cut(): void;
  close(): Promise<void>;
}

export async function relayTo(target: string): Promise<Relay> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const live = new Set<Socket>();
  let made = 0;
  const server = createServer((front) => {
    made++;
    const back = createConnection({ host, port });
    for (const [a, b] of [[front, back], [back, front]] as const) {
      live.add(a);
      a.on("close", () => live.delete(a));
      a.on("error", () => b.destroy());
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: own } = server.address() as { port: number };
  return {
    addr: `127.0.0.1:${own}`,
    connections: () => made,
    cut: () => {
      for (const socket of live) socket.resetAndDestroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
