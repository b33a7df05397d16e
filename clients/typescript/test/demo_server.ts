// Starts the real demo server (`cargo run --example server`, built) over
// WebSocket and WebTransport on one port number, and ends it by its process id.

import { spawn, type ChildProcess } from "node:child_process";
import { rm } from "node:fs/promises";
import { createInterface } from "node:readline";

export interface DemoServer {
  process: ChildProcess;
  /** `ws://127.0.0.1:PORT/volley` */
  url: string;
  /** `https://127.0.0.1:PORT/volley`, the same server over WebTransport. */
  webtransport: string;
  /** The SHA-256 of its self-signed certificate, in hex, for `serverCertificateHashes`. */
  certificateHash: string;
  /** `127.0.0.1:PORT` */
  addr: string;
  /** The inspector's snapshot URL. */
  snapshot: string;
  /** The certificate files it wrote, removed by `stop` (a killed server cannot). */
  certificates: string[];
}

const repo = new URL("../../../../", import.meta.url).pathname;

export async function startDemoServer(addr = "127.0.0.1:0"): Promise<DemoServer> {
  const binary = process.env["VOLLEY_DEMO_SERVER"] ?? `${repo}target/debug/examples/server`;
  const child = spawn(binary, ["--addr", addr, "--transport", "ws,webtransport", "--inspector", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const lines = createInterface({ input: child.stdout! });
  let url = "";
  let snapshot = "";
  let webtransport = "";
  let certificateHash = "";
  const certificates: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo server did not start in 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`the demo server exited (${code})`)));
    lines.on("line", (line) => {
      const written = /^certificate for the demo client written to (\S+)$/.exec(line);
      if (written) certificates.push(written[1]!);
      const listening = /^volley demo server on ([0-9.:]+) \(WebSocket\)/.exec(line);
      if (listening) url = `ws://${listening[1]}/volley`;
      const page = /^browser pages: (https:\S+) with serverCertificateHashes sha-256 ([0-9a-f]{64})$/.exec(line);
      if (page) [webtransport, certificateHash] = [page[1]!, page[2]!];
      const inspector = /^inspector on (http:\/\/[0-9.:]+\/)/.exec(line);
      if (inspector) snapshot = `${inspector[1]}snapshot`;
      if (url && snapshot && webtransport) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { process: child, url, webtransport, certificateHash, addr: url.slice("ws://".length, -"/volley".length), snapshot, certificates };
}

/** Ends the server; resolves once it has exited and its certificate files are gone. */
export async function stop(server: DemoServer, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (server.process.exitCode === null && server.process.signalCode === null) {
    const exited = new Promise((resolve) => server.process.once("exit", resolve));
    server.process.kill(signal);
    await exited;
  }
  await Promise.all(server.certificates.map((path) => rm(path, { force: true })));
}

/** The parts of the server's figures (its inspector's snapshot) the tests read. */
export interface Figures {
  remotes: { name: string; answered: Record<string, number>; events_in: number }[];
  connections: { identity: string | null; datagrams_in: number; events_in: number }[];
}

export async function figures(server: DemoServer): Promise<Figures> {
  return ((await (await fetch(server.snapshot)).json()) as { figures: Figures }).figures;
}

/** How the server's handler of `remote` answered its calls so far. */
export async function answered(server: DemoServer, remote: string): Promise<Record<string, number>> {
  return (await figures(server)).remotes.find((r) => r.name === remote)?.answered ?? {};
}
