// `npm run test:browser`: serves the package on localhost, opens the check
// page in Debian's headless Chromium (driven by playwright-core, never a
// downloaded browser) against the real demo server, and checks what the page
// saw: over WebTransport (the server's self-signed certificate trusted by its
// hash), then falling back to WebSocket twice: with WebTransport removed from
// the page, and with a session the server refuses. Exits non-zero on any
// difference.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";

import { chromium } from "playwright-core";

import { figures, startDemoServer, stop } from "../demo_server.js";

const root = new URL("../../../", import.meta.url).pathname; // the package's directory
const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };

const http = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname));
  const file = path === "/" ? "test/browser/page.html" : path.slice(1);
  if (!file.startsWith("dist/") && file !== "test/browser/page.html") {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(join(root, file));
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
const port = (http.address() as { port: number }).port;

const browser = await chromium.launch({
  executablePath: process.env["CHROMIUM"] ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
type Mode = "webtransport" | "no WebTransport in the page" | "a WebTransport session refused";

/** Runs the check page against a demo server of its own; throws on any difference. */
async function check(mode: Mode): Promise<void> {
  const transport = mode === "webtransport" ? "webtransport" : "websocket";
  const server = await startDemoServer();
  try {
    const page = await browser.newPage();
    page.on("console", (message) => console.log(`page: ${message.text()}`));
    const token = `browser-${transport}`;
    // Another path: the server refuses the session (HTTP 404).
    const webtransport = mode === "a WebTransport session refused" ? server.webtransport.replace(/\/volley$/, "/elsewhere") : server.webtransport;
    const query = new URLSearchParams({ websocket: server.url, webtransport, hash: server.certificateHash, token });
    if (mode === "no WebTransport in the page") query.set("webtransport-off", "");
    await page.goto(`http://127.0.0.1:${port}/?${query}`);
    const read = () => page.evaluate(() => (globalThis as unknown as { volleyResults?: { checks: Record<string, unknown> } }).volleyResults);
    const deadline = Date.now() + 20_000;
    while (!(await read())?.checks["ready"] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const seen = (await figures(server)).connections.find((c) => c.identity === token);
    await stop(server, "SIGINT");
    await page.waitForFunction(() => (globalThis as unknown as { volleyResults?: { done: boolean } }).volleyResults?.done, null, { timeout: 10_000 });
    const results = (await read()) as unknown as { checks: Record<string, unknown>; error?: string };
    console.log(JSON.stringify({ mode, results, server: seen }, null, 2));
    assert.equal(results.error, undefined);
    assert.equal(results.checks["transport"], transport);
    assert.equal(results.checks["playerId"], true);
    assert.deepEqual(results.checks["data"], { name: "web", level: 7, gold: 25 });
    assert.equal(results.checks["rejected"], "Rejected: not enough gold");
    assert.equal(results.checks["askedBack"], true);
    assert.match(String(results.checks["event"]), /: from a browser$/);
    assert.equal(results.checks["aborted"], "Cancelled");
    assert.equal(results.checks["afterMoves"], 20);
    assert.deepEqual(results.checks["closed"], { kind: "remote", code: "Kicked", message: "server shutting down" });
    const sent = results.checks["movesSent"] as number;
    assert.ok(seen !== undefined, "the server saw the page's connection");
    if (transport === "webtransport") {
      // The browser drops some when its datagram queue is full (fire returns false);
      // loopback loses little of the rest, and all of it comes as datagrams.
      assert.ok(sent >= 500, `the page sent ${sent} of 1,000 moves`);
      assert.ok(seen.datagrams_in >= sent * 0.9 && seen.datagrams_in <= sent, `${seen.datagrams_in} datagrams of ${sent}`);
    } else {
      assert.equal(sent, 1_000);
      assert.equal(seen.datagrams_in, 0);
    }
    console.log(`browser, ${mode}: every check passed over ${transport}; ${seen.datagrams_in} of ${sent} moves arrived as datagrams`);
  } finally {
    await stop(server);
  }
}

let failed = false;
try {
  await check("webtransport");
  await check("no WebTransport in the page");
  await check("a WebTransport session refused");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  http.close();
}
process.exit(failed ? 1 : 0);
