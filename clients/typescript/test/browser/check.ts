// Runs in the browser page: the TypeScript client against the demo server
// whose URLs the page was given (`?websocket=ws://…&webtransport=https://…&hash=…`),
// WebTransport first and WebSocket as the fallback; `&webtransport-off`
// removes WebTransport from the page first, as in a browser without it. What
// it saw goes to `window.volleyResults`, read by the test driver.

import { connect, FunctionError } from "../../src/index.js";
import { ANNOUNCE, ASK_ME, BUY, CHAT, GET_PLAYER_DATA, MOVE, PROMPT_ACTION, PROTOCOL, SLOW_SEARCH } from "../../examples/demo_protocol.js";

interface Results {
  done: boolean;
  checks: Record<string, unknown>;
  error?: string;
}

const results: Results = { done: false, checks: {} };
(globalThis as unknown as { volleyResults: Results }).volleyResults = results;

async function run(): Promise<void> {
  const params = new URLSearchParams(location.search);
  if (params.has("webtransport-off")) delete (globalThis as { WebTransport?: unknown }).WebTransport;
  const targets = { webtransport: params.get("webtransport")!, websocket: params.get("websocket")! };
  const client = await connect(targets, PROTOCOL, {
    token: params.get("token")!,
    serverCertificateHashes: [params.get("hash")!],
  });
  results.checks["transport"] = client.transport;
  results.checks["playerId"] = client.playerId > 0n;
  results.checks["data"] = await client.invoke(GET_PLAYER_DATA, { name: "web" });
  try {
    await client.invoke(BUY, { item: "castle", price: 1000 });
  } catch (e) {
    results.checks["rejected"] = e instanceof FunctionError ? `${e.kind}: ${e.message}` : String(e);
  }
  client.onRequest(PROMPT_ACTION, async (prompt) => ({ confirmed: prompt.question.length > 0 }));
  results.checks["askedBack"] = await client.invoke(ASK_ME, null);
  const heard = new Promise<string>((resolve) => client.on(ANNOUNCE, resolve));
  client.fire(CHAT, "from a browser");
  results.checks["event"] = await heard;
  const abort = new AbortController();
  const call = client.invoke(SLOW_SEARCH, "q", { signal: abort.signal, timeoutMs: 5_000 });
  setTimeout(() => abort.abort(), 30);
  try {
    await call;
  } catch (e) {
    results.checks["aborted"] = e instanceof FunctionError ? e.kind : String(e);
  }
  // Positions, unreliable: datagrams over WebTransport. Twenty every 10 ms,
  // as a game sends its entities' every frame, not all at once.
  let moves = 0;
  const started = performance.now();
  for (let i = 0; i < 1_000; i++) {
    if (client.fire(MOVE, { x: i, y: 0.5 })) moves++;
    if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  results.checks["movesMs"] = Math.round(performance.now() - started);
  results.checks["movesSent"] = moves;
  results.checks["afterMoves"] = await client.invoke(BUY, { item: "map", price: 5 });
  results.checks["ready"] = true;
  // The driver stops the server now (SIGINT): the demo server kicks everyone.
  results.checks["closed"] = await client.closed;
}

run()
  .catch((e: unknown) => (results.error = String(e)))
  .finally(() => {
    results.done = true;
    document.getElementById("log")!.textContent = JSON.stringify(results, (_, v) => (typeof v === "bigint" ? String(v) : v), 2);
  });
