// In the real ComfyUI frontend (headless Chromium, playwright-core): the "Dataset review" sidebar tab opens the
// review page of a folder over the canvas, served by ComfyUI itself; one key gives a verdict. Prints one JSON line.
//   node review_comfyui_browser.mjs '{"url": "http://127.0.0.1:PORT", "chromium": ..., "folder": ..., "key": "a"}'
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");
const cfg = JSON.parse(process.argv[2]);
const LONG = { timeout: 300000 }; // a busy shared machine serves ComfyUI's frontend slowly

const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const origin = new URL(cfg.url).origin;
  await page.route("**/*", (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
  const errors = [];
  page.on("pageerror", (e) => /spatialscore/i.test(String(e.stack ?? e)) && errors.push(String(e)));
  await page.goto(cfg.url, { waitUntil: "domcontentloaded", ...LONG });
  await page.waitForFunction(() => window.comfyAPI?.app?.app?.extensions?.some((e) => e.name === "SpatialScore.DatasetReview"),
    null, LONG);
  const menu = await page.evaluate(() => {
    const ext = window.comfyAPI.app.app.extensions.find((e) => e.name === "SpatialScore.DatasetReview");
    return { commands: ext.commands.map((c) => c.id), menu: ext.menuCommands.map((m) => m.path.join(" > ")) };
  });
  await page.keyboard.press("Escape"); // any welcome dialog
  // the frontend names a tab's button after its id; a DOM click works whatever overlay a busy page still shows
  const tab = page.locator(".spatialscore-review-tab-button").first();
  await tab.waitFor({ state: "attached", ...LONG });
  const tabLabel = await tab.getAttribute("aria-label");
  await tab.evaluate((el) => el.click());
  const input = page.locator('input[placeholder^="/path/to/dataset"]');
  await input.waitFor(LONG);
  await input.fill(cfg.folder);
  await page.getByRole("button", { name: "Open review" }).evaluate((el) => el.click()); // see the tab's click
  const frame = page.frameLocator("#spatialscore-review-overlay iframe");
  await frame.locator("body[data-shown]").waitFor(LONG);
  const handle = await page.locator("#spatialscore-review-overlay iframe").elementHandle();
  const inner = await handle.contentFrame();
  const first = await inner.evaluate(() => ({ shown: window.__review.shown, src: location.pathname + location.search }));
  await inner.locator("body").press(cfg.key);
  await inner.waitForFunction(() => window.__review.saved > 0, null, LONG);
  await page.screenshot({ path: cfg.screenshot || "/dev/null" }).catch(() => {});
  console.log(JSON.stringify({ menu, tabLabel, first, errors, reviewErrors: await inner.evaluate(() => window.__review.errors) }));
} finally {
  await browser.close();
}
