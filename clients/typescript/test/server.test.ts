// The TypeScript client against the real demo server (`cargo run --example
// server -- --transport ws`), started here and stopped by its process id.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

import { connect, ConnectError, FunctionError, protocolOf } from "../src/index.js";
import { ANNOUNCE, ASK_ME, BUY, CHAT, GET_PLAYER_DATA, PROMPT_ACTION, PROTOCOL, REMOTES_HASH, SLOW_SEARCH } from "../examples/demo_protocol.js";

let server: ChildProcess;
let url = "";

before(async () => {
  const repo = new URL("../../../../", import.meta.url).pathname;
  const binary = process.env["VOLLEY_DEMO_SERVER"] ?? `${repo}target/debug/examples/server`;
  server = spawn(binary, ["--addr", "127.0.0.1:0", "--transport", "ws"], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: server.stdout! });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo server did not start")), 30_000);
    lines.on("line", (line) => {
      const found = /^volley demo server on ([0-9.:]+) /.exec(line);
      if (found) {
        clearTimeout(timer);
        resolve(`ws://${found[1]}/volley`);
      }
    });
  });
});

after(() => {
  server.kill("SIGKILL");
});

test("calls to the server: answers, a rejection, a timeout", async () => {
  const client = await connect(url, PROTOCOL);
  assert.ok(client.playerId > 0n);
  const data = await client.invoke(GET_PLAYER_DATA, { name: "ada" });
  assert.deepEqual(data, { name: "ada", level: 7, gold: 25 });
  assert.equal(await client.invoke(BUY, { item: "sword", price: 10 }), 15);
  await assert.rejects(client.invoke(BUY, { item: "castle", price: 1000 }), (e: unknown) => {
    return e instanceof FunctionError && e.kind === "Rejected" && e.message === "not enough gold";
  });
  const started = performance.now();
  await assert.rejects(client.invoke(SLOW_SEARCH, "maps"), (e: unknown) => e instanceof FunctionError && e.kind === "Timeout");
  const took = performance.now() - started;
  assert.ok(took >= 450 && took < 1500, `the declared 500 ms timeout took ${took} ms`);
  // A bad request (a name the server's check refuses) is BadRequest.
  await assert.rejects(client.invoke(GET_PLAYER_DATA, { name: "" }), (e: unknown) => e instanceof FunctionError && e.kind === "BadRequest");
  client.close();
  assert.deepEqual(await client.closed, { kind: "local" });
});

test("an aborted call ends Cancelled at once", async () => {
  const client = await connect(url, PROTOCOL);
  const abort = new AbortController();
  const call = client.invoke(SLOW_SEARCH, "anything", { signal: abort.signal, timeoutMs: 5_000 });
  setTimeout(() => abort.abort(), 50);
  await assert.rejects(call, (e: unknown) => e instanceof FunctionError && e.kind === "Cancelled");
  client.close();
});

test("the server calls the client back, and events go both ways", async () => {
  const client = await connect(url, PROTOCOL);
  let asked = "";
  client.onRequest(PROMPT_ACTION, async (prompt) => {
    asked = prompt.question;
    return { confirmed: true };
  });
  assert.equal(await client.invoke(ASK_ME, null), true);
  assert.match(asked, /next round/);
  const heard = new Promise<string>((resolve) => client.on(ANNOUNCE, resolve));
  client.fire(CHAT, "hello from TypeScript");
  assert.equal(await heard, `player#${client.playerId}: hello from TypeScript`);
  client.close();
});

test("a client built from other declarations is refused RemotesMismatch", async () => {
  const other = protocolOf(REMOTES_HASH ^ 1n, PROTOCOL.remotes);
  await assert.rejects(connect(url, other), (e: unknown) => e instanceof ConnectError && e.kind === "RemotesMismatch");
});
