// A page on another port of 127.0.0.1 tries to record a verdict on the review server, in headless Chromium with
// playwright-core, the ways a web page can without the server's consent; prints one JSON line.
//   node review_cross_origin.mjs '{"target": "http://127.0.0.1:P/", "id": <pair id>, "chromium": ...}'
// The attacker page is served here, by Node, on a free port of 127.0.0.1. It tries, one after the other:
//   - fetch, mode no-cors, Content-Type text/plain (no preflight: a "simple" request);
//   - the same with "text/plain; charset=application/json" (still simple, and it names JSON);
//   - fetch, mode cors, Content-Type application/json (needs a preflight, which the server never grants);
//   - a sandboxed iframe's no-cors fetch (its Origin is "null");
//   - an auto-submitted form, enctype text/plain, whose body is the JSON verdict;
//   - an auto-submitted urlencoded form.
// Every POST whose answer Chromium reports to playwright is recorded with its status, Content-Type and answer (the
// sandboxed iframe's is reported on some runs only; that its fetch resolved at all shows the server answered it).
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");
const cfg = JSON.parse(process.argv[2]);
const action = new URL("api/verdict", cfg.target).href;
const verdict = JSON.stringify({ id: cfg.id, verdict: "swap" });
const js = (v) => JSON.stringify(v).replace(/</g, "\\u003c"); // a JS literal that cannot end a <script> early
const attr = (s) => s.replace(/&/g, "&amp;").replace(/'/g, "&#39;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
// a text/plain form sends name=value: the name opens the JSON, the value closes it -> {"id":..,"pad":"="}
const formName = verdict.slice(0, -1) + ',"pad":"';
const sandboxed = `<script>fetch(${JSON.stringify(action)}, {method: "POST", mode: "no-cors",
  headers: {"Content-Type": "text/plain"}, body: ${JSON.stringify(verdict)}})
  .then(() => parent.postMessage("sandbox: sent", "*"), (e) => parent.postMessage("sandbox: failed: " + e, "*"));
</script>`;
const attackPage = `<!doctype html><html><head><meta charset="utf-8"><title>not the review page</title></head><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="f1" method="POST" action="${attr(action)}" enctype="text/plain" target="sink1">
  <input type="hidden" name='${attr(formName)}' value='"}'></form>
<form id="f2" method="POST" action="${attr(action)}" target="sink2">
  <input type="hidden" name="id" value="${attr(cfg.id)}"><input type="hidden" name="verdict" value="swap"></form>
<script>
const action = ${js(action)}, body = ${js(verdict)};
window.__attack = { results: {}, done: false };
async function attempt(name, init) {
  try { const r = await fetch(action, { method: "POST", body, ...init }); window.__attack.results[name] = "sent (" + r.type + ")"; }
  catch (e) { window.__attack.results[name] = "failed: " + e; }
}
function loaded(name) {
  return new Promise((resolve) => document.querySelector("iframe[name=" + name + "]").addEventListener("load", resolve, { once: true }));
}
(async () => {
  await attempt("no-cors text/plain", { mode: "no-cors", headers: { "Content-Type": "text/plain" } });
  await attempt("no-cors text/plain naming json", { mode: "no-cors",
    headers: { "Content-Type": "text/plain; charset=application/json" } });
  await attempt("cors application/json", { headers: { "Content-Type": "application/json" } });
  const fromSandbox = new Promise((resolve) => window.addEventListener("message", (e) => resolve(e.data), { once: true }));
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.srcdoc = ${js(sandboxed)};
  document.body.appendChild(frame);
  window.__attack.results["sandboxed iframe no-cors"] = await fromSandbox;
  for (const [form, sink] of [["f1", "sink1"], ["f2", "sink2"]]) {
    const done = loaded(sink);
    document.getElementById(form).submit();
    await done;
    window.__attack.results["form " + document.getElementById(form).enctype] = "submitted";
  }
  window.__attack.done = true;
})();
</script></body></html>`;

const attacker = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(attackPage);
});
await new Promise((resolve) => attacker.listen(0, "127.0.0.1", resolve));
const attackUrl = `http://127.0.0.1:${attacker.address().port}/attack.html`;

const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const posts = [];
  const pending = [];
  context.on("response", (response) => {
    const request = response.request();
    if (request.method() !== "POST" || request.url() !== action) return;
    // the answer's text is kept where Chromium keeps it (form navigations; a no-cors fetch's body is dropped)
    pending.push((async () => posts.push({ status: response.status(), answer: await response.text().catch(() => null),
      contentType: (await request.allHeaders())["content-type"] ?? null }))());
  });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(attackUrl);
  try {
    await page.waitForFunction(() => window.__attack && window.__attack.done, null, { timeout: 30000 });
  } catch (e) { // say how far the attack got
    throw new Error(`${e.message}; results so far: ${JSON.stringify(await page.evaluate(() => window.__attack))}; `
      + `page errors: ${JSON.stringify(consoleErrors)}`);
  }
  await page.waitForTimeout(300); // the last form's response event may trail its frame's load event
  await Promise.all(pending);
  const results = await page.evaluate(() => window.__attack.results);
  console.log(JSON.stringify({ attackUrl, action, results, posts, consoleErrors }));
} finally {
  await browser.close();
  attacker.close();
}
