// The TypeScript client against the real demo server: every kind of call and
// error, events both ways, a refused build, a kick, a reconnect.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { connect, ConnectError, FunctionError, protocolOf } from "../src/index.js";
import { ANNOUNCE, ASK_ME, BUY, CHAT, GET_PLAYER_DATA, MOVE, PROMPT_ACTION, PROTOCOL, REMOTES_HASH, SLOW_SEARCH } from "../examples/demo_protocol.js";
import { answered, figures, startDemoServer, stop, type DemoServer } from "./demo_server.js";
import { relayTo } from "./relay.js";

let server: DemoServer;

before(async () => {
  server = await startDemoServer();
});

after(async () => {
  await stop(server);
});

const failsWith = (kind: string, message?: string) => (e: unknown) =>
  e instanceof FunctionError && e.kind === kind && (message === undefined || e.message.includes(message));

test("calls to the server: answers, a rejection, a bad request", async () => {
  const client = await connect(server.url, PROTOCOL);
  assert.ok(client.playerId > 0n);
  assert.deepEqual(await client.invoke(GET_PLAYER_DATA, { name: "ada" }), { name: "ada", level: 7, gold: 25 });
  assert.equal(await client.invoke(BUY, { item: "sword", price: 10 }), 15);
  await assert.rejects(client.invoke(BUY, { item: "castle", price: 1000 }), failsWith("Rejected", "not enough gold"));
  // The server's check refuses an empty name.
  await assert.rejects(client.invoke(GET_PLAYER_DATA, { name: "" }), failsWith("BadRequest"));
  // A request too large for a frame is refused here, nothing sent.
  await assert.rejects(client.invoke(BUY, { item: "x".repeat(2 << 20), price: 1 }), failsWith("TooLarge"));
  assert.equal(await client.invoke(BUY, { item: "shield", price: 5 }), 20, "the connection is still fine");
  client.close();
  assert.deepEqual(await client.closed, { kind: "local" });
});

test("a timeout and an abort each send Cancel, which the server sees", async () => {
  const client = await connect(server.url, PROTOCOL);
  const before = (await answered(server, "SlowSearch"))["cancelled"] ?? 0;
  const started = performance.now();
  await assert.rejects(client.invoke(SLOW_SEARCH, "maps"), failsWith("Timeout"));
  const took = performance.now() - started;
  assert.ok(took >= 450 && took < 1_500, `the declared 500 ms timeout took ${took} ms`);
  const abort = new AbortController();
  const call = client.invoke(SLOW_SEARCH, "anything", { signal: abort.signal, timeoutMs: 5_000 });
  setTimeout(() => abort.abort(), 50);
  await assert.rejects(call, failsWith("Cancelled"));
  let cancelled = before;
  for (let i = 0; i < 100 && cancelled < before + 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    cancelled = (await answered(server, "SlowSearch"))["cancelled"] ?? 0;
  }
  assert.equal(cancelled, before + 2, "the server cancelled both handlers");
  client.close();
});

test("the server calls the client back; a missing handler answers Unprocessed", async () => {
  const client = await connect(server.url, PROTOCOL);
  // No handler yet: the server's call to us ends Unprocessed, and it says so.
  await assert.rejects(client.invoke(ASK_ME, null), failsWith("Rejected", "could not be processed"));
  let asked = "";
  client.onRequest(PROMPT_ACTION, async (prompt) => {
    asked = prompt.question;
    return { confirmed: true };
  });
  assert.equal(await client.invoke(ASK_ME, null), true);
  assert.match(asked, /next round/);
  client.close();
});

test("events both ways, 10,000 in order", async () => {
  const client = await connect(server.url, PROTOCOL);
  const heard: string[] = [];
  const all = new Promise<void>((resolve) =>
    client.on(ANNOUNCE, (line) => {
      if (line.startsWith(`player#${client.playerId}:`)) heard.push(line);
      if (heard.length === 10_000) resolve();
    }),
  );
  for (let i = 0; i < 10_000; i++) client.fire(CHAT, `line ${i}`);
  await all;
  assert.deepEqual(heard, Array.from({ length: 10_000 }, (_, i) => `player#${client.playerId}: line ${i}`));
  client.close();
});

test("a client built from other declarations is refused RemotesMismatch", async () => {
  const other = protocolOf(REMOTES_HASH ^ 1n, PROTOCOL.remotes);
  await assert.rejects(connect(server.url, other), (e: unknown) => e instanceof ConnectError && e.kind === "RemotesMismatch");
});

test("a token the server's authenticator refuses is refused Unauthorized", async () => {
  await assert.rejects(connect(server.url, PROTOCOL, { token: "banned" }), (e: unknown) => {
    return e instanceof ConnectError && e.kind === "Unauthorized" && e.message === "this token is banned";
  });
  const welcome = await connect(server.url, PROTOCOL, { token: "welcome" });
  welcome.close();
});

test("a kick ends the client for good, with the server's reason", async () => {
  const own = await startDemoServer();
  const client = await connect(own.url, PROTOCOL, { reconnect: { initialDelayMs: 50 } });
  // The demo server kicks every player when it stops (SIGINT).
  await stop(own, "SIGINT");
  assert.deepEqual(await client.closed, { kind: "remote", code: "Kicked", message: "server shutting down" });
  assert.equal(client.state, "closed");
});

test("a lost connection is redialed; calls meanwhile fail Disconnected at once", async () => {
  const first = await startDemoServer();
  const client = await connect(first.url, PROTOCOL, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  const states: string[] = [];
  client.onStateChange((state) => states.push(state));
  let resumed = false;
  client.onResumed(() => (resumed = true));
  await stop(first); // SIGKILL: no goodbye
  while ((client.state as string) !== "reconnecting") await new Promise((resolve) => setTimeout(resolve, 10));
  await assert.rejects(client.invoke(BUY, { item: "x", price: 1 }), failsWith("Disconnected"));
  const second = await startDemoServer(first.addr);
  try {
    while ((client.state as string) !== "connected") await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await client.invoke(BUY, { item: "x", price: 1 }), 24);
    assert.deepEqual(states, ["reconnecting", "connected"]);
    assert.equal(resumed, false, "a new server: joined anew, not resumed");
    client.close();
  } finally {
    await stop(second);
  }
});

test("over WebSocket, unreliable events are dropped rather than queued when the connection is backed up", async () => {
  const client = await connect(server.url, PROTOCOL);
  const movesIn = async () => (await figures(server)).remotes.find((r) => r.name === "Move")?.events_in ?? 0;
  const before = await movesIn();
  let sent = 0;
  for (let i = 0; i < 20_000; i++) if (client.fire(MOVE, { x: i, y: -i })) sent++;
  assert.ok(sent > 0 && sent < 20_000, `${sent} of 20,000 sent in one burst`);
  assert.equal(client.unreliableDropped, 20_000 - sent);
  // What was sent is on the reliable stream: all of it arrives.
  assert.deepEqual(await client.invoke(GET_PLAYER_DATA, { name: "after" }), { name: "after", level: 7, gold: 25 });
  let arrived = 0;
  for (let i = 0; i < 100 && arrived < sent; i++) {
    arrived = (await movesIn()) - before;
    if (arrived < sent) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(arrived, sent);
  assert.throws(() => client.fire(CHAT, "x".repeat(2 << 20)), failsWith("TooLarge"));
  client.close();
});

test("given both URLs where there is no WebTransport (Node), connect falls back to WebSocket", async () => {
  await assert.rejects(connect(server.webtransport, PROTOCOL), (e: unknown) => e instanceof ConnectError && e.kind === "Transport");
  const client = await connect({ webtransport: server.webtransport, websocket: server.url }, PROTOCOL);
  assert.equal(client.transport, "websocket");
  assert.equal(await client.invoke(BUY, { item: "sword", price: 10 }), 15);
  client.close();
});

test("a connection cut mid-call and mid-burst resumes: the same player, calls answered, every event once, in order", async () => {
  const relay = await relayTo(server.addr);
  const client = await connect(`ws://${relay.addr}/volley`, PROTOCOL, {
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
  });
  const id = client.playerId;
  const mine = `player#${id}: `;
  const heard: string[] = [];
  client.on(ANNOUNCE, (line) => line.startsWith(mine) && heard.push(line.slice(mine.length)));
  client.onRequest(PROMPT_ACTION, async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { confirmed: true };
  });
  const states: string[] = [];
  client.onStateChange((state) => states.push(state));
  let resumed = 0;
  client.onResumed(() => resumed++);
  for (let round = 0; round < 3; round++) {
    // A call each way in flight, and events both ways, when the cut comes.
    const asked = client.invoke(ASK_ME, null);
    const data = client.invoke(GET_PLAYER_DATA, { name: `cut${round}` });
    for (let i = 0; i < 200; i++) client.fire(CHAT, `${round}.${i}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    relay.cut();
    for (let i = 200; i < 300; i++) client.fire(CHAT, `${round}.${i}`);
    assert.equal(await asked, true, `round ${round}: the server's call back was answered`);
    assert.deepEqual(await data, { name: `cut${round}`, level: 7, gold: 25 });
  }
  const expected = [0, 1, 2].flatMap((round) => Array.from({ length: 300 }, (_, i) => `${round}.${i}`));
  for (let i = 0; i < 200 && heard.length < expected.length; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(heard, expected, "every event once, in order, both ways");
  assert.equal(client.playerId, id, "the same player");
  assert.ok(relay.connections() >= 4, `${relay.connections()} connections: it did reconnect`);
  assert.deepEqual(states.filter((s) => s === "reconnecting").length, 3);
  assert.equal(resumed, 3, "each cut told as a resume");
  client.close();
  await relay.close();
});
