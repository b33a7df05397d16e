// Runs in the browser page: the TypeScript client against the demo server
// whose WebSocket URL the page was given (`?server=ws://…`). What it saw goes
// to `window.volleyResults`, read by the test driver.

import { connect, FunctionError } from "../../src/index.js";
import { ANNOUNCE, ASK_ME, BUY, CHAT, GET_PLAYER_DATA, PROMPT_ACTION, PROTOCOL, SLOW_SEARCH } from "../../examples/demo_protocol.js";

interface Results {
  done: boolean;
  checks: Record<string, unknown>;
  error?: string;
}

const results: Results = { done: false, checks: {} };
(globalThis as unknown as { volleyResults: Results }).volleyResults = results;

async function run(): Promise<void> {
  const url = new URLSearchParams(location.search).get("server")!;
  const client = await connect(url, PROTOCOL, { token: "browser" });
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
