// Starts the real demo server (`cargo run --example server`, built) over
// WebSocket, and ends it by its process id.

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface DemoServer {
  process: ChildProcess;
  /** `ws://127.0.0.1:PORT/volley` */
  url: string;
  /** `127.0.0.1:PORT` */
  addr: string;
  /** The inspector's snapshot URL. */
  snapshot: string;
}

const repo = new URL("../../../../", import.meta.url).pathname;

export async function startDemoServer(addr = "127.0.0.1:0"): Promise<DemoServer> {
  const binary = process.env["VOLLEY_DEMO_SERVER"] ?? `${repo}target/debug/examples/server`;
  const child = spawn(binary, ["--addr", addr, "--transport", "ws", "--inspector", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const lines = createInterface({ input: child.stdout! });
  let url = "";
  let snapshot = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo server did not start in 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`the demo server exited (${code})`)));
    lines.on("line", (line) => {
      const listening = /^volley demo server on ([0-9.:]+) /.exec(line);
      if (listening) url = `ws://${listening[1]}/volley`;
      const inspector = /^inspector on (http:\/\/[0-9.:]+\/)/.exec(line);
      if (inspector) snapshot = `${inspector[1]}snapshot`;
      if (url && snapshot) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { process: child, url, addr: url.slice("ws://".length, -"/volley".length), snapshot };
}

/** Ends the server; resolves once it has exited. */
export async function stop(server: DemoServer, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return;
  const exited = new Promise((resolve) => server.process.once("exit", resolve));
  server.process.kill(signal);
  await exited;
}

/** How the server's handler of `remote` answered its calls so far. */
export async function answered(server: DemoServer, remote: string): Promise<Record<string, number>> {
  const snapshot = (await (await fetch(server.snapshot)).json()) as {
    figures: { remotes: { name: string; answered: Record<string, number> }[] };
  };
  return snapshot.figures.remotes.find((r) => r.name === remote)?.answered ?? {};
}
