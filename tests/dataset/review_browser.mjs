// Drives the review page in headless Chromium with playwright-core, by keyboard only, and prints one JSON line.
//   node review_browser.mjs <page url> <chromium path> <keys, comma-separated> [screenshot.png] [grid.png]
// Keys are Playwright key names ("a", "r", "s", "Space", "u", "ArrowRight", ...). After each key the script waits
// until the page shows a pair again (body[data-shown] changes, or the verdict is saved for keys that stay).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

const [pageUrl, executablePath, keyList, screenshot, gridShot] = process.argv.slice(2);
const keys = keyList ? keyList.split(",") : [];

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  const t0 = Date.now();
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.__review?.openMs !== null && window.__review?.openMs !== undefined);
  const openWallMs = Date.now() - t0;
  const first = await page.evaluate(() => ({ id: window.__review.shown, openMs: window.__review.openMs,
    position: document.getElementById("position").textContent }));
  const shownIds = [first.id];
  for (const key of keys) {
    const before = await page.evaluate(() => ({ shown: window.__review.shown, nav: window.__review.navMs.length }));
    await page.keyboard.press(key);
    // every key here moves to a pair (verdicts advance, undo goes back): wait for the move to be drawn
    await page.waitForFunction((n) => window.__review.navMs.length > n, before.nav, { timeout: 5000 });
    shownIds.push(await page.evaluate(() => window.__review.shown));
  }
  await page.waitForFunction(() => !document.getElementById("progress-text").textContent.includes("saving"));
  const result = await page.evaluate(() => ({
    navMs: window.__review.navMs, saved: window.__review.saved, errors: window.__review.errors,
    progress: document.getElementById("progress-text").textContent,
    position: document.getElementById("position").textContent,
    missingText: [...document.querySelectorAll(".frame.is-missing .missing")].map((e) => e.textContent),
    highlighted: [...document.querySelectorAll("#perturbed .chg")].map((e) => e.textContent),
  }));
  if (screenshot) await page.screenshot({ path: screenshot });
  if (gridShot) {
    await page.keyboard.press("g");
    await page.waitForSelector("#grid .cell.focus");
    await page.waitForFunction(() => [...document.querySelectorAll("#grid img")].every((i) => i.complete));
    await page.screenshot({ path: gridShot });
  }
  console.log(JSON.stringify({ openWallMs, first, shownIds, consoleErrors, ...result }));
} finally {
  await browser.close();
}
