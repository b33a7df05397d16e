// `npm run test:browser`: serves the package on localhost, opens the check
// page in Debian's headless Chromium (driven by playwright-core, never a
// downloaded browser) against the real demo server, and checks what the page
// saw. Exits non-zero on any difference.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";

import { chromium } from "playwright-core";

import { startDemoServer, stop } from "../demo_server.js";

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

const server = await startDemoServer();
const browser = await chromium.launch({
  executablePath: process.env["CHROMIUM"] ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let failed = false;
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.log(`page: ${message.text()}`));
  await page.goto(`http://127.0.0.1:${port}/?server=${encodeURIComponent(server.url)}`);
  const read = () => page.evaluate(() => (globalThis as unknown as { volleyResults?: { checks: Record<string, unknown> } }).volleyResults);
  const deadline = Date.now() + 20_000;
  while (!(await read())?.checks["ready"] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await stop(server, "SIGINT");
  await page.waitForFunction(() => (globalThis as unknown as { volleyResults?: { done: boolean } }).volleyResults?.done, null, { timeout: 10_000 });
  const results = (await read()) as unknown as { checks: Record<string, unknown>; error?: string };
  console.log(JSON.stringify(results, null, 2));
  assert.equal(results.error, undefined);
  assert.equal(results.checks["playerId"], true);
  assert.deepEqual(results.checks["data"], { name: "web", level: 7, gold: 25 });
  assert.equal(results.checks["rejected"], "Rejected: not enough gold");
  assert.equal(results.checks["askedBack"], true);
  assert.match(String(results.checks["event"]), /: from a browser$/);
  assert.equal(results.checks["aborted"], "Cancelled");
  assert.deepEqual(results.checks["closed"], { kind: "remote", code: "Kicked", message: "server shutting down" });
  console.log("browser: every check passed in headless Chromium");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  await stop(server);
  http.close();
}
process.exit(failed ? 1 : 0);
