// Opens volley's inspector page in headless Chromium and checks what a
// person would look at: the player is listed, the remotes the demo client
// called show calls, and the chart moves. Saves a screenshot.
//
//   node inspector.mjs http://127.0.0.1:PORT/ OUTPUT.png
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const fail = (why) => { console.error(`inspector check failed: ${why}`); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(url);
  // The player the demo client is.
  await page.waitForSelector("#players tbody tr", { timeout: 15000 }).catch(() => fail("no player listed"));
  const players = await page.$$eval("#players tbody tr", (rows) => rows.length);
  // Calls counted for the remotes the client called.
  await page.waitForFunction(() => {
    const row = document.querySelector('#remotes tr[data-remote="GetPlayerData"] .calls-total');
    return row && Number(row.textContent) > 0;
  }, null, { timeout: 15000 }).catch(() => fail("no calls counted for GetPlayerData"));
  const calls = await page.$eval('#remotes tr[data-remote="GetPlayerData"] .calls-total', (c) => Number(c.textContent));
  // The chart moves: what it shows changes between two looks.
  const chart = () => page.$eval("#chart", (c) => c.toDataURL());
  await page.waitForTimeout(2500);
  const before = await chart();
  await page.waitForTimeout(2500);
  const after = await chart();
  if (before === after) fail("the chart did not move in 2.5 s");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`inspector ok: ${players} player(s) listed, GetPlayerData called ${calls} times, chart moving; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
