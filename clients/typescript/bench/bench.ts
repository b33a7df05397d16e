// The TypeScript client's benchmark: from Node against the Rust server over
// WebSocket on loopback, beside a bare WebSocket echo between the same two
// processes (the floor) and beside the Rust client over WebSocket, all in
// one run. Prints RESULT and RATIO lines like volley-bench.
//
//   cargo build --release -p volley-net-bench     # in the repository's root
//   npm run bench                                 # here; `npm run bench -- 5000` for fewer calls

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

import { clientEvent, clientFn, connect, d, protocolOf, serverFn } from "../src/index.js";

const calls = Number(process.argv[2] ?? 20_000);
const repo = new URL("../../../../", import.meta.url).pathname;
const peer = spawn(process.env["VOLLEY_BENCH"] ?? `${repo}target/release/volley-bench`, ["--ts-peer", String(calls)], {
  stdio: ["pipe", "pipe", "inherit"],
});
const results = new Map<string, number>();
const ids = new Map<string, number>();
let hash = 0n;
const [volleyUrl, echoUrl] = await new Promise<[string, string]>((resolve, reject) => {
  peer.once("exit", (code) => reject(new Error(`volley-bench --ts-peer exited (${code})`)));
  createInterface({ input: peer.stdout! }).on("line", (line) => {
    const [word, ...rest] = line.split(" ");
    if (word === "RESULT") results.set(`${rest[0]} ${rest[1]}`, Number(rest[2]));
    if (word === "HASH") hash = BigInt(`0x${rest[0]}`);
    if (word === "REMOTE") ids.set(rest[0]!, Number(rest[1]));
    if (word === "READY") resolve([rest[0]!, rest[1]!]);
  });
});

const ADD_ONE = serverFn("AddOne", ids.get("AddOne")!, d.u32, d.u32, undefined);
const PROTOCOL = protocolOf(hash, [
  ADD_ONE,
  clientFn("ClientAddOne", ids.get("ClientAddOne")!, d.u32, d.u32, undefined),
  clientEvent("News", ids.get("News")!, d.bytes, false),
]);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const report = (scenario: string, system: string, value: number, unit: string) => {
  results.set(`${scenario} ${system}`, value);
  console.log(`RESULT ${scenario} ${system} ${value.toFixed(3)} ${unit}`);
};

/** Sequential round trips, then `inflight` at a time: the rtts (µs) and the rate (per s). */
async function measure(call: (i: number) => Promise<unknown>, inflight: number): Promise<[number[], number]> {
  for (let i = 0; i < 1_000; i++) await call(i);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await call(i);
    times.push((performance.now() - start) * 1_000);
  }
  times.sort((a, b) => a - b);
  const total = calls * 5;
  let sent = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (sent < total) {
        sent++;
        await call(sent);
      }
    }),
  );
  return [times, total / ((performance.now() - start) / 1_000)];
}

// The floor: 8-byte binary messages echoed, one waiter per message.
const echo = new WebSocket(echoUrl);
echo.binaryType = "arraybuffer";
await new Promise((resolve) => (echo.onopen = resolve));
const waiting: (() => void)[] = [];
echo.onmessage = () => waiting.shift()?.();
const message = new Uint8Array(8);
const [echoTimes, echoRate] = await measure(
  () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      echo.send(message);
    }),
  256,
);
echo.close();

// volley's TypeScript client; its frames counted both ways.
let bytes = 0;
class Counted extends WebSocket {
  constructor(url: string) {
    super(url);
    this.addEventListener("message", (event) => (bytes += (event.data as ArrayBuffer).byteLength));
  }
  override send(data: Uint8Array): void {
    bytes += data.byteLength;
    super.send(data);
  }
}
const client = await connect(volleyUrl, PROTOCOL, { WebSocket: Counted as unknown as new (url: string) => WebSocket });
const before = bytes;
for (let i = 0; i < 1_000; i++) await client.invoke(ADD_ONE, 1_000 + i);
const perCall = (bytes - before) / 1_000;
const [volleyTimes, volleyRate] = await measure((i) => client.invoke(ADD_ONE, i), 256);
client.close();
peer.stdin!.end();

report("ts_rtt_p50", "echo", percentile(echoTimes, 0.5), "us");
report("ts_rtt_p50", "volley", percentile(volleyTimes, 0.5), "us");
report("ts_rtt_p99", "echo", percentile(echoTimes, 0.99), "us");
report("ts_rtt_p99", "volley", percentile(volleyTimes, 0.99), "us");
report("ts_pipelined", "echo", echoRate, "messages/s");
report("ts_pipelined", "volley", volleyRate, "calls/s");
report("ts_bytes_per_call", "volley", perCall, "bytes");
const ratio = (scenario: string, a: string, b: string) =>
  console.log(`RATIO ${scenario} ${a}/${b} ${(results.get(`${scenario} ${a}`)! / results.get(`${scenario} ${b}`)!).toFixed(3)}`);
ratio("ts_rtt_p50", "volley", "echo");
ratio("ts_rtt_p99", "volley", "echo");
ratio("ts_pipelined", "volley", "echo");
ratio("ts_rtt_p50", "volley", "rust");
ratio("ts_pipelined", "volley", "rust");
