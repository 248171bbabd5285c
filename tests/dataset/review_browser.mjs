// Drives the review page in headless Chromium with playwright-core, by keyboard only, and prints one JSON line.
//   node review_browser.mjs '{"url": ..., "chromium": ..., "keys": ["a", "r", ...], "opens": 2,
//                             "screenshot": "page.png", "grid": "grid.png"}'
// The page is opened `opens` times, each in a fresh browser context (empty cache); then the `selects` are set
// ({"f-rel": "left_of"}: the filters) and the keys are pressed in the last one. After each key the script waits
// until the page has drawn again (the new pair with its images decoded, or the grid) before the next key.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");
const cfg = JSON.parse(process.argv[2]);

const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: ["--no-sandbox"] });
try {
  const opens = [];
  let page;
  const consoleErrors = [];
  for (let k = 0; k < (cfg.opens || 1); k++) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 820 } });
    page = await context.newPage();
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    const t0 = Date.now();
    await page.goto(cfg.url);
    await page.waitForFunction(() => window.__review && window.__review.openMs !== null, null, { timeout: 30000 });
    // openMs: from the navigation start to the first pair on screen with both images decoded (browser clock)
    opens.push({ openMs: await page.evaluate(() => window.__review.openMs), wallMs: Date.now() - t0 });
    if (k < (cfg.opens || 1) - 1) await context.close();
  }
  const first = await page.evaluate(() => ({ id: window.__review.shown,
    position: document.getElementById("position").textContent,
    progress: document.getElementById("progress-text").textContent,
    missingText: [...document.querySelectorAll(".frame.is-missing .missing")].map((e) => e.textContent) }));
  for (const [id, value] of Object.entries(cfg.selects || {})) {
    const renders = await page.evaluate(() => window.__review.renders);
    await page.selectOption(`#${id}`, value);
    await page.waitForFunction((n) => window.__review.renders > n, renders, { timeout: 10000 });
  }
  const shownIds = [await page.evaluate(() => window.__review.shown)];
  for (const key of cfg.keys || []) {
    const renders = await page.evaluate(() => window.__review.renders);
    await page.keyboard.press(key);
    await page.waitForFunction((n) => window.__review.renders > n, renders, { timeout: 10000 });
    shownIds.push(await page.evaluate(() => window.__review.shown));
  }
  await page.waitForFunction(() => !document.getElementById("progress-text").textContent.includes("saving"));
  const result = await page.evaluate(() => ({
    navMs: window.__review.navMs, saved: window.__review.saved, errors: window.__review.errors,
    progress: document.getElementById("progress-text").textContent,
  }));
  if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot });
  if (cfg.grid) {
    await page.keyboard.press("g");
    await page.waitForSelector("#grid .cell.focus");
    await page.waitForFunction(() => [...document.querySelectorAll("#grid img")].every((i) => i.complete));
    await page.screenshot({ path: cfg.grid });
  }
  console.log(JSON.stringify({ opens, first, shownIds, consoleErrors, ...result }));
} finally {
  await browser.close();
}
