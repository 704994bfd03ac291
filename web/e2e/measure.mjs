// @ts-check
// Figures for bench/bench_web.py (JSON on stdout): the trading page's bundle size, gzipped as
// served, and its first load in Chromium against a real venue (`perpetua demo`), cold (new
// browser context, empty cache) and warm (same context, cached immutable assets): time to
// DOMContentLoaded, to the load event, and to the first market data drawn (book levels shown).
import { gzipSync } from "node:zlib";
import { Venue, launchBrowser } from "./venue.mjs";

const LOADS = Number(process.env.PERPETUA_WEB_LOADS || 5);

const venue = await Venue.start();
const browser = await launchBrowser();
try {
  const html = await (await fetch(`${venue.url}/`)).text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  let raw = Buffer.byteLength(html);
  let gzipped = gzipSync(html, { level: 9 }).length;
  for (const asset of assets) {
    const body = Buffer.from(await (await fetch(venue.url + asset)).arrayBuffer());
    raw += body.length;
    gzipped += gzipSync(body, { level: 9 }).length;
  }
  /** @param {import("playwright-core").Page} page @param {boolean} again */
  const load = async (page, again) => {
    const started = Date.now();
    if (again) await page.reload();
    else await page.goto(`${venue.url}/#/trade/XBTUSD`);
    await page.waitForFunction(() => /\d/.test(document.getElementById("book-bids")?.textContent ?? ""), undefined, { timeout: 30_000 });
    const dataMs = Date.now() - started;
    const timing = await page.evaluate(() => {
      const nav = /** @type {PerformanceNavigationTiming} */ (performance.getEntriesByType("navigation")[0]);
      return { dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd };
    });
    return { dom_content_loaded_ms: timing.dcl, load_ms: timing.load, first_book_ms: dataMs };
  };
  const cold = [];
  const warm = [];
  for (let n = 0; n < LOADS; n++) {
    const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
    const page = await context.newPage();
    cold.push(await load(page, false));
    warm.push(await load(page, true));
    await context.close();
  }
  /** @param {Record<string, number>[]} runs @param {string} key */
  const median = (runs, key) => {
    const values = runs.map((r) => r[key]).sort((a, b) => a - b);
    return Math.round(values[Math.floor(values.length / 2)]);
  };
  const figures = {
    bundle_files: assets.length + 1,
    bundle_bytes: raw,
    bundle_gzip_bytes: gzipped,
    bundle_gzip_budget_bytes: 300 * 1024,
    loads: LOADS,
  };
  for (const [name, runs] of [["cold", cold], ["warm", warm]]) {
    for (const key of ["dom_content_loaded_ms", "load_ms", "first_book_ms"]) {
      Object.assign(figures, { [`${name}_${key}_median`]: median(/** @type {any} */ (runs), key) });
    }
  }
  process.stdout.write(JSON.stringify(figures) + "\n");
} finally {
  await browser.close();
  await venue.close();
}
