// The quickstart, from TypeScript: against the demo server, calls both ways,
// events, a rejection and a timeout. Exits 0 when every outcome was as
// expected.
//
//   cargo run --example server -- --transport ws --addr 127.0.0.1:7777   # in the repository's root
//   npm run quickstart                                                  # here; or: npm run quickstart -- ws://HOST:PORT/volley

import { connect, FunctionError } from "../src/index.js";
import { ANNOUNCE, ASK_ME, BUY, CHAT, GET_PLAYER_DATA, PROMPT_ACTION, PROTOCOL, SLOW_SEARCH } from "./demo_protocol.js";

const url = process.argv[2] ?? "ws://127.0.0.1:7777/volley";
const failures: string[] = [];
const expect = (what: string, ok: boolean) => {
  console.log(`  ${ok ? "ok:" : "FAILED:"} ${what}`);
  if (!ok) failures.push(what);
};

const client = await connect(url, PROTOCOL, { token: "ts-quickstart" });
console.log(`connected to ${url} as player ${client.playerId}`);

// The server asks us things (a server → client call): answer them.
client.onRequest(PROMPT_ACTION, async (prompt) => {
  console.log(`  the server asks: ${prompt.question}`);
  return { confirmed: true };
});
const announced = new Promise<string>((resolve) => client.on(ANNOUNCE, resolve));

console.log("1. a call and its typed answer");
const me = await client.invoke(GET_PLAYER_DATA, { name: "ts" });
console.log(`  ${JSON.stringify(me)}`);
expect("level 7 with 25 gold", me.level === 7 && me.gold === 25);

console.log("2. a refusal the handler chose");
try {
  await client.invoke(BUY, { item: "castle", price: 1_000 });
  expect("the castle is refused", false);
} catch (e) {
  expect(`refused: ${String(e)}`, e instanceof FunctionError && e.kind === "Rejected");
}

console.log("3. the server calls back while answering");
expect("the server heard our yes", (await client.invoke(ASK_ME, null)) === true);

console.log("4. an event out, one back");
client.fire(CHAT, "hello from TypeScript");
expect(`announced: ${await announced}`, true);

console.log("5. a call that outlives its 500 ms timeout (cancelled at the server too)");
try {
  await client.invoke(SLOW_SEARCH, "maps");
  expect("timed out", false);
} catch (e) {
  expect(`ended ${String(e)}`, e instanceof FunctionError && e.kind === "Timeout");
}

client.close();
await client.closed;
if (failures.length > 0) {
  console.error(`unexpected: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("every outcome as expected");
