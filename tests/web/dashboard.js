// Drives the master's /ui in headless Chromium over the DevTools protocol
// (puppeteer-core with Debian's chromium), step by step as the Python test
// (tests/integration/test_dashboard.py) tells it on stdin, answering on stdout
// one JSON line per step:
//   node dashboard.js URL OUTDIR SERVER...       -> {"step":"loaded",...} once every server shows
//   stdin "status SERVER STATUS"                 -> {"step":"status",...} once the row says STATUS
//   stdin "explain APP CLIENT LOCATION"          -> {"step":"explain",...} with the verdict rows
//   stdin "finish"                               -> {"step":"finish","navigations":N,...}, screenshots
"use strict";
const puppeteer = require("puppeteer-core");
const readline = require("readline");
const path = require("path");
const fs = require("fs");
const os = require("os");

const [url, outdir, ...servers] = process.argv.slice(2);
const say = o => process.stdout.write(JSON.stringify(o) + "\n");

(async () => {
  // the test names the profile so it can find and kill a browser this script left
  const profile = process.env.LBCP_CHROMIUM_PROFILE ||
    fs.mkdtempSync(path.join(os.tmpdir(), "lbcp-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           `--user-data-dir=${profile}`],
  });
  const errors = [];
  let navigations = 0;
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 900 });
    page.on("framenavigated", f => { if (f === page.mainFrame()) navigations++; });
    page.on("pageerror", e => errors.push(String(e)));
    page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url, { waitUntil: "load", timeout: 20000 });
    await page.evaluate(() => { window.__lbcpMarker = "still-here"; });
    await page.waitForFunction(ids => ids.every(id =>
      document.querySelector(`#servers tr[data-server="${id}"] .status`)), { timeout: 20000 },
      servers);
    say({ step: "loaded", navigations,
          rows: await page.$$eval("#servers tr[data-server]", rs => rs.map(r => r.dataset.server)) });

    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      const [cmd, ...a] = line.trim().split(/\s+/);
      if (cmd === "status") {
        const [id, want] = a;
        await page.waitForFunction((id, want) => {
          const s = document.querySelector(`#servers tr[data-server="${id}"] .status`);
          return s && s.textContent === want;
        }, { timeout: 15000 }, id, want);
        const ev = await page.$$eval("#events tr", rs => rs.map(r =>
          [...r.cells].slice(1).map(c => c.textContent).join(" ")));
        say({ step: "status", server: id, status: want, events: ev });
      } else if (cmd === "explain") {
        const [app, client, loc] = a;
        for (const [sel, v] of [["#x-app", app], ["#x-client", client], ["#x-loc", loc]]) {
          await page.$eval(sel, (e, v) => { e.value = v; }, v);
        }
        await page.click('#explain button[type="submit"]');
        await page.waitForFunction(() => !document.getElementById("verdicts").hidden &&
          document.querySelectorAll("#verdicts tbody tr").length > 0, { timeout: 10000 });
        say({ step: "explain",
              summary: await page.$eval("#explain-summary", e => e.textContent),
              verdicts: await page.$$eval("#verdicts tbody tr", rs => rs.map(r =>
                ({ server: r.dataset.server, verdict: r.cells[4].textContent }))) });
      } else if (cmd === "finish") {
        await page.screenshot({ path: path.join(outdir, "dashboard.png"), fullPage: true });
        await page.setViewport({ width: 360, height: 800 });
        await new Promise(r => setTimeout(r, 300));
        const narrow = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
        await page.screenshot({ path: path.join(outdir, "dashboard-narrow.png"), fullPage: true });
        say({ step: "finish", navigations, narrow, errors,
              marker: await page.evaluate(() => window.__lbcpMarker || null),
              navEntries: await page.evaluate(() =>
                performance.getEntriesByType("navigation").length) });
        break;
      }
    }
  } catch (e) {
    say({ step: "error", error: String(e && e.stack || e), navigations, errors });
    process.exitCode = 1;
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(process.exitCode || 0); // stdin would keep the loop alive
})();
