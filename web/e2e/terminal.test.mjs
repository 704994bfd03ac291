// @ts-check
// The terminal in a real browser (Debian's Chromium) against a real venue process
// (`perpetua demo` with its bots trading): what a trader sees and does, checked against what the
// venue's API says. Screenshots of each page land in e2e/artifacts/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, Venue, axeViolations, contrastFailures, launchBrowser, openPage } from "./venue.mjs";

const SYMBOL = "XBTUSD";
const UI_TIMEOUT_MS = 20_000;

/** @type {Venue} */ let venue;
/** @type {import("playwright-core").Browser} */ let browser;
/** @type {import("playwright-core").Page} */ let page;
/** @type {string[]} */ let errors;

/** Polls `probe` until it returns a truthy value. @template T @param {() => Promise<T>} probe @param {string} what */
async function until(probe, what, timeoutMs = UI_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** @param {string} name */
const shot = (name, target = page) => target.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

/** The instrument row, from the venue's public API. */
async function instrument() {
  const rows = await (await fetch(`${venue.url}/api/v1/instrument?symbol=${SYMBOL}`)).json();
  return rows[0];
}

const text = (/** @type {string} */ selector) => page.locator(selector).innerText();

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret at time step `step`. */
function totpAt(/** @type {string} */ secret, /** @type {number} */ step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

let lastTotpStep = 0;
/**
 * A TOTP code the venue has not accepted yet: it refuses a step at or before the last one it
 * took, and looks one step either side of now; waits for the clock when every step in reach
 * was spent (at most 30 s). The step before now is taken only while more than
 * `TOTP_MARGIN_MS` of the current step is left, so it is still in reach when the venue reads it.
 */
const TOTP_MARGIN_MS = 5_000;
async function freshTotp(/** @type {string} */ secret) {
  for (;;) {
    const ms = Date.now();
    const now = Math.floor(ms / 30_000);
    const lowest = (now + 1) * 30_000 - ms > TOTP_MARGIN_MS ? now - 1 : now;
    const step = Math.max(lastTotpStep + 1, lowest);
    if (step <= now + 1) {
      lastTotpStep = step;
      return totpAt(secret, step);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A JSON-RPC call to the demo's local chain (anvil), whose address the banner prints. */
async function chainCall(/** @type {string} */ method, /** @type {unknown[]} */ params) {
  const url = /chain\s+(http\S+)/.exec(venue.output)?.[1];
  if (!url) throw new Error(`no local chain in the banner:\n${venue.output}`);
  const answer = await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json();
  if (answer.error) throw new Error(`${method}: ${JSON.stringify(answer.error)}`);
  return answer.result;
}
const DEV_FUNDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"; // anvil's first dev account

/** The trader signed up on the Account page, kept for the tests that follow it. */
/** @type {{ context: import("playwright-core").BrowserContext, p: import("playwright-core").Page, errors: string[], email: string, password: string, secret: string, id: number } | null} */
let trader = null;

/** The operator key from the banner. */
const operatorKey = () => /x-operator-key:\s+(\S+)/.exec(venue.output)?.[1] ?? "";

/** The decoded text of every mail to `address` in the venue's Maildir outbox, newest first. */
function mailTexts(/** @type {string} */ address) {
  const outbox = /mail\s+(\S+)/.exec(venue.output)?.[1];
  if (!outbox) throw new Error(`no outbox in the banner:\n${venue.output}`);
  const found = [];
  for (const folder of ["new", "cur"]) {
    let names = [];
    try {
      names = readdirSync(join(outbox, folder));
    } catch {
      continue;
    }
    for (const name of names.sort().reverse()) {
      const raw = readFileSync(join(outbox, folder, name), "utf8");
      if (!raw.includes(address)) continue;
      // a single-part message (as services.mail composes them): its body by its transfer encoding
      const split = raw.search(/\r?\n\r?\n/);
      const head = raw.slice(0, split);
      const body = raw.slice(split).trim();
      const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(head)?.[1]?.toLowerCase();
      if (encoding === "base64") found.push(Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8"));
      else if (encoding === "quoted-printable") {
        found.push(Buffer.from(body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8"));
      } else found.push(body);
    }
  }
  return found;
}

/** The single-use token of the newest mail to `address` in the venue's Maildir outbox. */
function mailedToken(/** @type {string} */ address) {
  const outbox = /mail\s+(\S+)/.exec(venue.output)?.[1];
  if (!outbox) throw new Error(`no outbox in the banner:\n${venue.output}`);
  for (const folder of ["new", "cur"]) {
    let names = [];
    try {
      names = readdirSync(join(outbox, folder));
    } catch {
      continue;
    }
    for (const name of names.sort().reverse()) {
      const raw = readFileSync(join(outbox, folder, name), "utf8");
      if (!raw.includes(address)) continue;
      const plain = /token:/i.test(raw) ? raw : raw.split(/\r?\n\r?\n/).slice(1)
        .map((part) => { try { return Buffer.from(part.replace(/\s+/g, ""), "base64").toString("utf8"); } catch { return ""; } }).join("\n");
      const token = /token:\s*(\S+)/i.exec(plain)?.[1];
      if (token) return token;
    }
  }
  return "";
}

describe("web terminal", () => {
  before(async () => {
    venue = await Venue.start({ host: "localhost" });
    browser = await launchBrowser();
    ({ page, errors } = await openPage(browser, { viewport: { width: 1600, height: 900 } }));
    await page.goto(`${venue.url}/#/trade/${SYMBOL}`);
    await page.waitForSelector("body[data-ready=true]");
  });

  after(async () => {
    await browser?.close();
    const code = await venue?.stop();
    venue?.kill();
    assert.equal(code, 0, `the venue stopped uncleanly:\n${venue?.output}`);
  });

  test("the venue serves the terminal with a strict CSP and long-cached hashed assets", async () => {
    const shell = await fetch(`${venue.url}/`);
    assert.equal(shell.status, 200);
    const csp = shell.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(shell.headers.get("cache-control"), "no-cache");
    const html = await shell.text();
    const asset = /\/assets\/[\w.-]+\.js/.exec(html)?.[0];
    assert.ok(asset, "index.html names a hashed script");
    const script = await fetch(venue.url + asset, { headers: { "accept-encoding": "gzip" } });
    assert.equal(script.status, 200);
    assert.match(script.headers.get("cache-control") ?? "", /max-age=31536000, immutable/);
    assert.equal((await fetch(`${venue.url}/assets/nope.js`)).status, 404);
    assert.equal((await fetch(`${venue.url}/assets/..%2F..%2Fstatic.py`)).status, 404);
  });

  test("the market list shows every market with its 24h change and funding", async () => {
    const active = await (await fetch(`${venue.url}/api/v1/instrument/active`)).json();
    await page.click("#symbol-button");
    const rows = page.locator("#symbol-list tr[data-symbol]");
    await until(async () => (await rows.count()) === active.length, "a row per market");
    const first = await rows.filter({ hasText: SYMBOL }).first().innerText();
    assert.match(first, /[+-]?\d+\.\d{2}%/, "24h change");
    assert.match(first, /\d+\.\d{4}%/, "funding rate");
    await page.fill("#symbol-filter", "ETHUSDT");
    // the filter leaves ETHUSDT first (its quarterly futures, ETHUSDTZ26..., match the text too)
    await until(async () => (await rows.count()) < active.length && (await rows.first().getAttribute("data-symbol")) === "ETHUSDT", "the filter to leave ETHUSDT first")
      .catch(async (error) => { throw new Error(`${error.message}: ${await page.locator("#symbol-list").innerText()}`); });
    await page.keyboard.press("Enter");
    await until(async () => (await text("#symbol-name")) === "ETHUSDT", "ETHUSDT chosen by keyboard");
    assert.match(page.url(), /#\/trade\/ETHUSDT$/);
    await page.goto(`${venue.url}/#/trade/${SYMBOL}`);
    await until(async () => (await text("#symbol-name")) === SYMBOL, "back on XBTUSD");
  });

  test("the order book and recent trades update live from the venue", async () => {
    const book = async () => (await text("#book-bids")) + (await text("#book-asks"));
    const tape = () => text("#trades");
    await until(async () => /\d/.test(await book()), "book levels");
    await until(async () => /\d/.test(await tape()), "recent trades");
    const [book0, tape0] = [await book(), await tape()];
    await until(async () => (await book()) !== book0, "the book to change", 45_000);
    await until(async () => (await tape()) !== tape0, "a new trade", 45_000);
    const top = await page.locator("#book-bids .level .p").first().innerText();
    const venueBook = await (await fetch(`${venue.url}/api/v1/orderBook/L2?symbol=${SYMBOL}&depth=50`)).json();
    const bids = venueBook.filter((/** @type {any} */ r) => r.side === "Buy").map((/** @type {any} */ r) => r.price);
    assert.ok(bids.length > 0);
    assert.ok(Math.abs(Number(top.replace(/,/g, "")) - Math.max(...bids)) <= 500, `best bid ${top} near the venue's ${Math.max(...bids)}`);

    // grouping: every level a multiple of the chosen step; depth bars cumulative away from the spread
    const { tickSize } = await instrument();
    await page.selectOption("#book-group", "10");
    const sides = async () => page.evaluate(() => ["#book-bids", "#book-asks"].map((id) => [...document.querySelectorAll(`${id} .level`)]
      .filter((row) => row.querySelector(".p")?.textContent)
      .map((row) => [Number(row.querySelector(".p")?.textContent?.replace(/,/g, "")), parseFloat(/** @type {HTMLElement} */ (row.querySelector(".bar")).style.width)])));
    await until(async () => (await sides()).every((levels) => levels.length > 0 && levels.every(([p]) => Math.abs(p / (tickSize * 10) - Math.round(p / (tickSize * 10))) < 1e-6)),
      "levels grouped to 10 ticks");
    const [bidLevels, askLevels] = await sides();
    const widths = [bidLevels.map(([, w]) => w), askLevels.map(([, w]) => w).reverse()]; // asks: best at the bottom
    for (const side of widths) {
      assert.ok(side.every((w, n) => w >= 0 && w <= 100 && (n === 0 || w >= side[n - 1])), `cumulative bars ${JSON.stringify(side)}`);
    }
    assert.equal(Math.max(...widths.flat()), 100, "the deeper side's last level fills its bar");
    await page.selectOption("#book-group", "1");
  });

  test("the chart loads candles from /trade/bucketed and goes live", async () => {
    await until(async () => Number(await page.locator("#chart").getAttribute("data-candles")) > 0, "candles");
    assert.ok(await page.locator("#chart canvas").count() > 0, "the chart draws on canvas");
    const live0 = Number(await page.locator("#chart").getAttribute("data-live") ?? 0);
    await until(async () => Number(await page.locator("#chart").getAttribute("data-live") ?? 0) > live0, "a live trade on the chart", 45_000);
    // the mark and index lines: the instrument's mark and its reference index's last price
    const chart = page.locator("#chart");
    await until(async () => {
      const { markPrice, referenceSymbol } = await instrument();
      const [index] = await (await fetch(`${venue.url}/api/v1/instrument?symbol=${encodeURIComponent(referenceSymbol)}`)).json();
      const mark = Number(await chart.getAttribute("data-mark"));
      const shownIndex = Number(await chart.getAttribute("data-index"));
      return mark > 0 && Math.abs(mark / markPrice - 1) < 0.002 && index && shownIndex > 0 && Math.abs(shownIndex / index.lastPrice - 1) < 0.002;
    }, "the mark and index lines at the venue's prices");
    await page.click("#intervals [data-bin='1h']");
    await until(async () => (await page.locator("#intervals [data-bin='1h']").getAttribute("aria-pressed")) === "true", "1h chosen");
    await until(async () => Number(await page.locator("#chart").getAttribute("data-candles")) > 0, "1h candles");
    await page.click("#intervals [data-bin='1m']");
  });

  test("an API key loads, and a limit order is placed, amended and cancelled through the UI", async () => {
    await page.click("#key-button");
    await page.fill("#key-id", venue.key);
    await page.fill("#key-secret", venue.secret);
    await page.click("#key-save");
    await until(async () => (await text("#key-button")).startsWith("Key "), "the key to load");
    await until(async () => (await text("#order-preview")).includes("Available"), "the preview with the balance");
    await until(async () => /[1-9]/.test((await text("#order-preview")).split("Available")[1] ?? ""), "a funded balance");

    const row = await instrument();
    const limitText = (Math.round((row.bidPrice * 0.97) / row.tickSize) * row.tickSize).toFixed(1);
    const limit = Number(limitText);
    await page.selectOption("#order-type", "Limit");
    await page.fill("#order-qty", "1300");
    await page.fill("#order-price", limitText);
    await until(async () => /Cost long/.test(await text("#order-preview")), "a cost preview");
    await page.click("#submit-buy");
    await page.click("#tab-orders");
    const orderRow = page.locator("#tabpanel-orders tr[data-order]").filter({ hasText: "1,300" });
    await until(async () => (await orderRow.count()) === 1, "the order in open orders");
    const orderID = await orderRow.getAttribute("data-order");
    const rest = (await venue.api("GET", `/order?filter=${encodeURIComponent(JSON.stringify({ open: true }))}`))
      .find((/** @type {any} */ o) => o.orderID === orderID);
    assert.equal(rest?.price, limit);
    assert.equal(rest?.orderQty, 1300);
    await shot("trade-order-open");

    await orderRow.locator("[data-action=amend]").click();
    await orderRow.locator("[data-amend=qty]").fill("1500");
    await orderRow.locator("[data-action=save]").click();
    const amended = page.locator(`#tabpanel-orders tr[data-order="${orderID}"]`);
    await until(async () => (await amended.innerText()).includes("1,500"), "the amended quantity in open orders");
    const afterAmend = (await venue.api("GET", "/order?reverse=true&count=20")).find((/** @type {any} */ o) => o.orderID === orderID);
    assert.equal(afterAmend.orderQty, 1500);

    await amended.locator("[data-action=cancel]").click();
    await until(async () => (await amended.count()) === 0, "the order to leave open orders");
    const afterCancel = (await venue.api("GET", "/order?reverse=true&count=20")).find((/** @type {any} */ o) => o.orderID === orderID);
    assert.equal(afterCancel.ordStatus, "Canceled");
  });

  test("dragging an order's line on the chart amends its price", async () => {
    const row = await instrument();
    // 3% under the bid: out of reach of the demo's sweeps and liquidations; "Fit orders" brings
    // it into the chart's view
    const priceText = (Math.round((row.bidPrice * 0.97) / row.tickSize) * row.tickSize).toFixed(1);
    await page.selectOption("#order-type", "Limit");
    await page.fill("#order-qty", "700");
    await page.fill("#order-price", priceText);
    await page.check("#opt-post");
    await page.click("#submit-buy");
    await page.uncheck("#opt-post");
    await page.click("#fit-orders");
    const chart = page.locator("#chart");
    const box = await chart.boundingBox();
    assert.ok(box);
    const line = await until(async () => {
      await page.mouse.move(box.x + box.width / 2, box.y + 5 + Math.random()); // a move refreshes the positions
      const lines = JSON.parse((await chart.getAttribute("data-order-lines")) ?? "[]");
      return lines.find((/** @type {any} */ l) => l.price === Number(priceText) && l.y !== null);
    }, "the order's line on the chart").catch(async (error) => {
      throw new Error(`${error.message}: lines ${await chart.getAttribute("data-order-lines")}, toasts ${await text("#toasts")}, orders ${await text("#tabpanel-orders")}`);
    });
    assert.ok(line.y > 5 && line.y < box.height - 40, `the line is on screen (y ${line.y} of ${box.height})`);
    const x = box.x + box.width / 3;
    await page.evaluate(() => {
      const log = /** @type {string[]} */ ([]);
      Object.assign(window, { dragLog: log });
      for (const type of ["pointerdown", "pointermove", "pointerup"]) {
        document.getElementById("chart")?.addEventListener(type, (e) => log.push(`${type}@${Math.round(/** @type {PointerEvent} */ (e).clientY)}`), true);
      }
    });
    await page.mouse.move(x, box.y + line.y);
    await page.mouse.down();
    await page.mouse.move(x, box.y + line.y + 20, { steps: 5 });
    await page.mouse.move(x, box.y + line.y + 40, { steps: 5 });
    await page.mouse.up();
    const moved = await until(async () => {
      const orders = await venue.api("GET", "/order?reverse=true&count=20");
      const order = orders.find((/** @type {any} */ o) => o.orderID === line.orderID);
      return order && order.price < Number(priceText) && order;
    }, "the venue to move the order down").catch(async (error) => {
      const orders = await venue.api("GET", "/order?reverse=true&count=20");
      const order = orders.find((/** @type {any} */ o) => o.orderID === line.orderID);
      throw new Error(`${error.message}: line ${JSON.stringify(line)} box ${JSON.stringify(box)}, order ${order?.ordStatus} ${order?.price}, ` +
        `toasts ${await text("#toasts")}, events ${await page.evaluate(() => /** @type {any} */ (window).dragLog.slice(0, 8).join(" "))}`);
    });
    await page.click("#fit-orders");
    assert.equal(await page.locator("#fit-orders").getAttribute("aria-pressed"), "false");
    assert.equal(moved.ordStatus, "New");
    assert.equal(moved.orderQty, 700);
    assert.ok(moved.price > Number(priceText) * 0.97, `a 40-px drag moved it a little (to ${moved.price})`);
    await venue.api("DELETE", "/order", { orderID: line.orderID });
  });

  test("leverage and margin mode are set from the order form", async () => {
    await page.click("#mode-isolated");
    await page.fill("#leverage", "25");
    await page.click("#leverage-apply");
    await until(async () => {
      const positions = await venue.api("GET", "/position");
      const p = positions.find((/** @type {any} */ r) => r.symbol === SYMBOL);
      return p && !p.crossMargin && p.leverage === 25;
    }, "isolated 25x at the venue");
    assert.match(await text("#leverage-value"), /25x isolated/);
  });

  test("a market order fills and the position shows the venue's liquidation price", async () => {
    await page.selectOption("#order-type", "Market");
    await page.fill("#order-qty", "2000");
    await page.click("#submit-buy");
    await page.click("#tab-positions");
    const positionRow = page.locator(`#tabpanel-positions tr[data-symbol="${SYMBOL}"]`);
    await until(async () => (await positionRow.count()) === 1, "the position");
    const position = await until(async () => {
      const rows = await venue.api("GET", "/position");
      return rows.find((/** @type {any} */ r) => r.symbol === SYMBOL && r.currentQty === 2000 && r.liquidationPrice);
    }, "the venue's position");
    const shown = await until(async () => {
      const cell = (await positionRow.locator("[data-field=liquidationPrice]").innerText()).replace(/,/g, "");
      return cell !== "-" && cell;
    }, "a liquidation price in the row");
    // The venue's current figure (it moves only if the mark does, so re-read it at the end).
    const latest = (await venue.api("GET", "/position")).find((/** @type {any} */ r) => r.symbol === SYMBOL);
    assert.ok([position.liquidationPrice, latest.liquidationPrice].some((p) => Math.abs(Number(shown) - p) < 0.05),
      `liquidation ${shown} equals the API's ${latest.liquidationPrice}`);
    assert.match(await positionRow.innerText(), /2,000/);

    // The preview of the same order (isolated 25x, fees and funding included) at the position's
    // entry price names the venue's liquidation price, to the tick.
    const now = (await venue.api("GET", "/position")).find((/** @type {any} */ r) => r.symbol === SYMBOL);
    const tick = (await instrument()).tickSize;
    await page.selectOption("#order-type", "Limit");
    await page.fill("#order-qty", String(now.currentQty));
    await page.fill("#order-price", String(now.avgEntryPrice));
    const previewed = await until(async () => {
      const cell = (await page.locator("[data-preview=est-liq-long]").innerText().catch(() => "")).replace(/,/g, "");
      return /\d/.test(cell) && Number(cell);
    }, "the previewed liquidation price");
    const venueLiq = (await venue.api("GET", "/position")).find((/** @type {any} */ r) => r.symbol === SYMBOL).liquidationPrice;
    assert.ok(Math.abs(previewed - venueLiq) <= tick * 1.5,
      `previewed liquidation ${previewed} is the venue's ${venueLiq} (entry ${now.avgEntryPrice}, funding ${(await instrument()).fundingRate})`);
    assert.match(await text("#order-preview"), /Fees/);
    await page.click("#tab-fills");
    await until(async () => (await text("#tabpanel-fills")).includes(SYMBOL), "the fill");
    await page.click("#tab-positions");
    await shot("trade-position");
  });

  test("from a position's row: margin added and removed, TP/SL set and cancelled, a position closed", async () => {
    await page.click("#tab-positions");
    const positionRow = page.locator(`#tabpanel-positions tr[data-symbol="${SYMBOL}"]`);
    await until(async () => (await positionRow.count()) === 1, "the position");
    const venuePosition = async () => (await venue.api("GET", "/position")).find((/** @type {any} */ r) => r.symbol === SYMBOL);
    const start = await venuePosition();
    assert.equal(start.crossMargin, false, "isolated (the leverage test)");
    const marginInput = positionRow.locator('input[aria-label^="Margin to add"]');
    // 0.001 XBT more margin: the venue's liquidation price moves away from the mark, and the row shows it
    await marginInput.fill("0.001");
    await positionRow.locator("[data-action=margin]").click();
    const added = await until(async () => {
      const now = await venuePosition();
      return now.liquidationPrice < start.liquidationPrice ? now : null;
    }, "the liquidation price lower after the margin added");
    await until(async () => Math.abs(Number((await positionRow.locator("[data-field=liquidationPrice]").innerText()).replace(/,/g, "")) - added.liquidationPrice) < 0.05,
      "the row's liquidation price the venue's");
    await marginInput.fill("-0.001");
    await positionRow.locator("[data-action=margin]").click();
    await until(async () => (await venuePosition()).liquidationPrice > added.liquidationPrice, "the margin removed");

    // TP/SL: a take-profit (MarketIfTouched on the last price) and a stop (on the mark), both closing
    const { markPrice, tickSize } = await instrument();
    const at = (/** @type {number} */ f) => (Math.round((markPrice * f) / tickSize) * tickSize).toFixed(1);
    await positionRow.locator('input[aria-label^="Take profit"]').fill(at(1.2));
    await positionRow.locator('input[aria-label^="Stop loss"]').fill(at(0.8));
    await positionRow.locator("[data-action=tpsl]").click();
    const stops = async () => (await venue.api("GET", `/order?filter=${encodeURIComponent(JSON.stringify({ open: true }))}`))
      .filter((/** @type {any} */ o) => o.symbol === SYMBOL && /Close/.test(o.execInst ?? ""));
    const placed = await until(async () => { const found = await stops(); return found.length === 2 ? found : null; }, "the TP and SL at the venue");
    assert.deepEqual(placed.map((/** @type {any} */ o) => [o.ordType, o.side, o.stopPx]).sort(),
      [["MarketIfTouched", "Sell", Number(at(1.2))], ["Stop", "Sell", Number(at(0.8))]]);
    await page.click("#tab-stops");
    const stopRows = page.locator("#tabpanel-stops tr[data-order]");
    await until(async () => (await stopRows.count()) === 2, "both in the stops tab");
    await shot("trade-tpsl");
    for (let n = 0; n < 2; n++) {
      await stopRows.first().locator("[data-action=cancel]").click();
      await until(async () => (await stopRows.count()) === 1 - n, "a stop cancelled");
    }
    assert.deepEqual(await stops(), []);

    // Close: a small ETHUSD position (placed over the API) closed from its row
    await venue.api("POST", "/order", { symbol: "ETHUSD", side: "Buy", orderQty: 10, ordType: "Market" });
    await page.click("#tab-positions");
    const eth = page.locator('#tabpanel-positions tr[data-symbol="ETHUSD"]');
    await until(async () => (await eth.count()) === 1, "the ETHUSD position");
    await eth.locator("[data-action=close]").click();
    await until(async () => (await eth.count()) === 0, "the ETHUSD position closed");
    const closed = (await venue.api("GET", "/position")).find((/** @type {any} */ r) => r.symbol === "ETHUSD");
    assert.equal(closed.currentQty, 0);
    assert.equal(await positionRow.count(), 1, "the XBTUSD position stays");
  });

  test("every order type leaves the form with its time in force and execInst as the venue records them; the funding countdown", async () => {
    const { bidPrice, askPrice, tickSize, fundingTimestamp, fundingRate } = await instrument();
    const at = (/** @type {number} */ base, /** @type {number} */ f) => (Math.round((base * f) / tickSize) * tickSize).toFixed(1);
    const checks = ["#opt-post", "#opt-reduce", "#opt-close", "#opt-hidden"];
    /** @param {{ type: string, side: "buy" | "sell", price?: string, stop?: string, trail?: string, by?: string, tif?: string, checked?: string[] }} form */
    const place = async (form) => {
      await page.selectOption("#order-type", form.type);
      await page.fill("#order-qty", "100");
      if (form.price) await page.fill("#order-price", form.price);
      if (form.stop) await page.fill("#order-stop", form.stop);
      if (form.trail) await page.fill("#order-trail", form.trail);
      if (form.by) await page.selectOption("#order-trigger", form.by);
      if (form.tif) await page.selectOption("#order-tif", form.tif);
      for (const box of checks) await page.setChecked(box, (form.checked ?? []).includes(box));
      // the new order is the one the venue did not have before (not "the newest row": an
      // older order updated meanwhile, e.g. filled or triggered by the demo's bots, sorts first)
      const known = new Set((await venue.api("GET", "/order?reverse=true&count=500")).map((/** @type {any} */ o) => o.orderID));
      await page.click(`#submit-${form.side}`);
      const order = await until(async () => {
        const rows = await venue.api("GET", "/order?reverse=true&count=50");
        return rows.find((/** @type {any} */ o) => !known.has(o.orderID)) ?? null;
      }, `the ${form.type} order at the venue`);
      for (const box of checks) await page.setChecked(box, false);
      return order;
    };
    const execs = (/** @type {any} */ o) => String(o.execInst ?? "").split(",").filter(Boolean).sort();

    const stopLimit = await place({ type: "StopLimit", side: "sell", price: at(bidPrice, 0.9), stop: at(bidPrice, 0.92), by: "MarkPrice", tif: "GoodTillCancel", checked: ["#opt-reduce"] });
    assert.deepEqual([stopLimit.ordType, stopLimit.side, stopLimit.price, stopLimit.stopPx, stopLimit.timeInForce], ["StopLimit", "Sell", Number(at(bidPrice, 0.9)), Number(at(bidPrice, 0.92)), "GoodTillCancel"]);
    assert.deepEqual(execs(stopLimit), ["MarkPrice", "ReduceOnly"]);
    const stop = await place({ type: "Stop", side: "sell", stop: at(bidPrice, 0.9), by: "IndexPrice", checked: ["#opt-close"] });
    assert.deepEqual([stop.ordType, stop.stopPx, stop.price], ["Stop", Number(at(bidPrice, 0.9)), null]);
    assert.deepEqual(execs(stop), ["Close", "IndexPrice"]);
    const lit = await place({ type: "LimitIfTouched", side: "sell", price: at(askPrice, 1.1), stop: at(askPrice, 1.08), by: "LastPrice", tif: "Day" });
    assert.deepEqual([lit.ordType, lit.price, lit.stopPx, lit.timeInForce], ["LimitIfTouched", Number(at(askPrice, 1.1)), Number(at(askPrice, 1.08)), "Day"]);
    assert.deepEqual(execs(lit), ["LastPrice"]);
    const mit = await place({ type: "MarketIfTouched", side: "sell", stop: at(askPrice, 1.1), by: "MarkPrice" });
    assert.deepEqual([mit.ordType, mit.stopPx], ["MarketIfTouched", Number(at(askPrice, 1.1))]);
    const offset = -Number((tickSize * 500).toFixed(1));
    const trailing = await place({ type: "Trailing", side: "sell", trail: String(offset), by: "LastPrice" });
    assert.deepEqual([trailing.ordType, trailing.pegPriceType, trailing.pegOffsetValue], ["Stop", "TrailingStopPeg", offset]);
    const hiddenPost = await place({ type: "Limit", side: "buy", price: at(bidPrice, 0.95), tif: "GoodTillCancel", checked: ["#opt-post", "#opt-hidden"] });
    assert.deepEqual([hiddenPost.ordType, hiddenPost.price, hiddenPost.displayQty, hiddenPost.ordStatus], ["Limit", Number(at(bidPrice, 0.95)), 0, "New"]);
    assert.deepEqual(execs(hiddenPost), ["ParticipateDoNotInitiate"]);
    const ioc = await place({ type: "Limit", side: "buy", price: at(bidPrice, 0.9), tif: "ImmediateOrCancel" });
    assert.deepEqual([ioc.timeInForce, ioc.ordStatus], ["ImmediateOrCancel", "Canceled"]);
    await page.selectOption("#order-tif", "GoodTillCancel"); // the form as the next tests expect it
    await page.click("#tab-stops");
    const openStops = async () => (await venue.api("GET", `/order?filter=${encodeURIComponent(JSON.stringify({ open: true }))}`))
      .filter((/** @type {any} */ o) => o.symbol === SYMBOL && !["Limit", "Market"].includes(o.ordType) && !o.triggered);
    await until(async () => (await page.locator("#tabpanel-stops tr[data-order]").count()) === (await openStops()).length, "the stops listed as the venue has them")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#tabpanel-stops")} / ${JSON.stringify(await openStops())}`); });
    assert.ok((await openStops()).length >= 4, JSON.stringify(await openStops()));
    await shot("trade-stops");
    await venue.api("DELETE", "/order/all", { symbol: SYMBOL });
    await until(async () => (await page.locator("#tabpanel-stops tr[data-order]").count()) === 0, "the stops gone");

    // the funding countdown: the time to the venue's next funding, as hh:mm:ss
    const left = Math.max(0, Math.floor((new Date(fundingTimestamp).getTime() - Date.now()) / 1000));
    const shown = await text("#st-countdown");
    const [h, m, sec] = (/in (\d\d):(\d\d):(\d\d)/.exec(shown) ?? []).slice(1).map(Number);
    assert.ok(Math.abs(h * 3600 + m * 60 + sec - left) <= 3, `countdown ${shown}, ${left} s to ${fundingTimestamp}`);
    assert.match(await text("#st-funding"), new RegExp(`${(fundingRate * 100).toFixed(4).replace(".", "\\.")}%`));
  });

  test("the operator's announcements appear as a banner, live, and go when withdrawn", async () => {
    const operatorKey = /x-operator-key:\s+(\S+)/.exec(venue.output)?.[1] ?? "";
    assert.ok(operatorKey, "the demo prints its operator key");
    /** @param {string} verb @param {object} body */
    const admin = async (verb, body) => {
      const response = await fetch(`${venue.url}/api/v1/admin/announcement`, {
        method: verb, body: JSON.stringify(body), headers: { "content-type": "application/json", "x-operator-key": operatorKey } });
      assert.equal(response.status, 200, await response.clone().text());
      return response.json();
    };
    const urgent = await admin("POST", { title: "XBTUSD maintenance", content: "Trading pauses 10:00-10:05 UTC", link: "/#/markets", urgent: true });
    const plain = await admin("POST", { title: "New market listed", content: "ETHUSDT is live", link: "javascript:alert(1)" });
    const note = (/** @type {number} */ id) => page.locator(`#announcements [data-announcement="${id}"]`);
    await until(async () => (await note(urgent.id).count()) === 1 && (await note(plain.id).count()) === 1, "both announcements in the banner");
    await until(async () => /Urgent: XBTUSD maintenance/.test(await note(urgent.id).innerText()), "the urgent one marked (GET /announcement/urgent)");
    assert.equal(await page.locator("#announcements .note").first().getAttribute("data-announcement"), String(urgent.id), "urgent first");
    assert.equal(await note(plain.id).locator("a").count(), 0, "a javascript: link is not followed");
    assert.equal(await note(urgent.id).locator("a").getAttribute("href"), "/#/markets");
    await shot("announcements");
    await note(plain.id).locator("[data-action=dismiss]").click();
    assert.equal(await note(plain.id).count(), 0, "dismissed");
    await admin("DELETE", { id: urgent.id });
    await until(async () => (await note(urgent.id).count()) === 0, "the withdrawn announcement gone from the banner");
    const listed = await (await fetch(`${venue.url}/api/v1/announcement`)).json();
    assert.deepEqual(listed.map((/** @type {any} */ r) => r.id), [plain.id]);
  });

  test("Proof of Reserves: the published proofs, and the trader's balance checked in the browser", async () => {
    const operatorKey = /x-operator-key:\s+(\S+)/.exec(venue.output)?.[1] ?? "";
    const taken = await fetch(`${venue.url}/api/v1/admin/porl/snapshot`, { method: "POST", body: "{}",
      headers: { "content-type": "application/json", "x-operator-key": operatorKey } });
    assert.equal(taken.status, 200, await taken.text());
    const listing = await (await fetch(`${venue.url}/api/v1/porl/snapshots`)).json();
    assert.ok(listing.length > 0, "a proof is listed");
    await page.click(".nav a[data-page=reserves]");
    const rows = page.locator("#porl-table tr[data-height]");
    await until(async () => (await rows.count()) === listing.length, "a row per published proof");
    const claim = await venue.api("GET", "/porl/nonce?currency=XBt");
    assert.ok(claim.balance > 0, "the demo account owes something in XBt");
    await page.selectOption("#porl-currency", "XBt");
    await page.check("#porl-reveal");
    await page.click("#porl-check");
    await until(async () => (await page.locator("#porl-verdict").count()) === 1 && !/Checking/.test(await text("#porl-result")), "the check")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#porl-result")}`); });
    assert.match(await text("#porl-verdict"), /Verified in this browser/, await text("#porl-result"));
    const included = (await text("[data-porl=included]")).replace(/,/g, "");
    assert.equal(included, `${(claim.balance / 1e8).toFixed(8)} XBT`, "the leaves the nonce opens add up to the venue's figure");
    const row = listing.find((/** @type {any} */ r) => r.currency === "XBt" && r.height === claim.height);
    assert.match(await text("[data-porl=root-digest]"), new RegExp(`^${row.rootDigest} \\(as listed\\)`));
    assert.match(await text("#porl-howto"), new RegExp(`validate_liabilities\\.py --proof ${claim.filename} --account ${claim.account} --nonce ${claim.nonce}`));
    await until(async () => (await page.locator("#porl-solvency-table tr[data-currency]").count()) > 0, "the solvency report");
    await shot("reserves");
  });

  test("the wallet, markets and stats pages show the venue's figures", async () => {
    await page.click(".nav a[data-page=wallet]");
    const balances = page.locator("#balances-table tr[data-currency]");
    await until(async () => (await balances.count()) >= 2, "balances");
    const usdt = await page.locator("#balances-table tr[data-currency=USDt]").innerText();
    assert.match(usdt, /100,000\.0000 USDT/);
    await until(async () => (await page.locator("#deposit-asset option[value=USDt]").count()) === 1, "the wallet assets");
    await page.selectOption("#deposit-asset", "USDt");
    await page.selectOption("#deposit-network", "eth");
    await page.click("#deposit-go");
    await until(async () => (await text("#deposit-out")).length > 0, "the deposit answer");
    const address = await venue.api("GET", "/user/depositAddress?currency=USDt&network=eth");
    assert.equal(await text("#deposit-address"), address, "the venue's deposit address (the demo runs a local chain)");
    assert.ok(await page.locator("#deposit-qr").evaluate((img) => /** @type {HTMLImageElement} */ (img).naturalWidth > 0), "its QR code renders");
    assert.match(await text("#deposit-out"), /Credited after\s+\d+ confirmations/);
    await page.selectOption("#withdraw-asset", "USDt");
    await page.selectOption("#withdraw-network", "eth");
    assert.match(await text("#withdraw-fee"), /Network fee 5\.0000 USDT/);
    await page.fill("#withdraw-address", "0x000000000000000000000000000000000000dEaD");
    await page.fill("#withdraw-amount", "20");
    await page.click("#withdraw-go");
    await until(async () => (await text("#withdraw-out")).length > 0, "the withdrawal answer");
    assert.equal(await page.locator("#withdraw-out").getAttribute("class"), "form-out down", "refused without withdraw permission or 2FA");
    await until(async () => /No saved addresses/.test(await text("#address-book")), "the empty address book");
    await until(async () => (await text("#wallet-history")).length > 0, "the history");
    await shot("wallet");
    await page.click(".nav a[data-page=markets]");
    await until(async () => (await page.locator("#markets-table tbody tr").count()) > 0, "the markets page");
    await shot("markets");
    await page.click(".nav a[data-page=stats]");
    await until(async () => (await text("#contract-spec")).includes("Inverse"), "XBTUSD's specification");
    assert.match(await text("#contract-spec"), /Tick size\s+0\.1\b/);
    await until(async () => /Now: |no history/.test(await text("#insurance-now")), "the insurance fund");
    const insurance = await (await fetch(`${venue.url}/api/v1/insurance?count=500&reverse=true`)).json();
    assert.equal(Number(await page.locator("#insurance-chart").getAttribute("data-points")), insurance.length);
    await until(async () => (await text("#funding-history")).length > 0, "the funding history");
    await until(async () => (await text("#liquidations")).length > 0, "the liquidations feed");
    await shot("stats");
    await page.click(".nav a[data-page=trade]");
  });

  test("the Earn page stakes and unstakes BMEX and converts at a quoted price", async () => {
    await page.click(".nav a[data-page=earn]");
    await until(async () => (await page.locator("#stake-tiers-table tbody tr").count()) > 1, "the staking tiers");
    await page.fill("#stake-amount", "1000");
    await page.click("#stake-go");
    await until(async () => /Staked 1000 BMEX/.test(await text("#stake-out")), "the stake accepted")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#stake-out")}`); });
    await until(async () => /1,000\.0000 BMEX/.test(await text("[data-stake=amount]")), "the stake shown");
    const [stake] = await venue.api("GET", "/user/staking?currency=BMEx");
    assert.equal(stake.amount, 1000 * 1e6);
    await page.fill("#unstake-amount", "400");
    await page.click("#unstake-go");
    const pending = page.locator("#unstake-table tbody tr").filter({ hasText: "Pending" });
    await until(async () => (await pending.count()) === 1, "the pending unstake")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#stake-out")}`); });
    await until(async () => /400\.0000 BMEX/.test(await text("[data-stake=unstaking]")), "400 cooling off");
    await pending.locator("[data-action=cancel-unstake]").click();
    await until(async () => (await page.locator("#unstake-table tbody tr").filter({ hasText: "Canceled" }).count()) === 1, "the unstake cancelled");
    const requests = await venue.api("GET", "/user/unstakingRequests?status=All");
    assert.deepEqual(requests.map((/** @type {any} */ r) => r.status), ["Canceled"]);

    // the convert desk holds XBT (the operator funds it), the spot book prices the quote
    const operatorKey = /x-operator-key:\s+(\S+)/.exec(venue.output)?.[1] ?? "";
    const funded = await fetch(`${venue.url}/api/v1/admin/convertDesk`, { method: "POST",
      body: JSON.stringify({ currency: "XBt", amount: 1e8, transferID: "e2e-desk-1" }),
      headers: { "content-type": "application/json", "x-operator-key": operatorKey } });
    assert.equal(funded.status, 200, await funded.text());
    await until(async () => (await page.locator("#convert-from option").count()) > 1, "the convertible assets");
    await page.selectOption("#convert-from", "USDt");
    await page.selectOption("#convert-to", "XBt");
    await page.fill("#convert-amount", "100");
    // a quote is good for a few seconds: read the wallet first, accept right after quoting
    const before = await venue.api("GET", "/user/wallet?currency=USDt");
    await until(async () => {
      await page.click("#quote-go");
      await page.waitForTimeout(300);
      return (await page.locator("[data-quote=to]").count()) === 1 && (await page.locator("#convert-go").isEnabled());
    }, "a live quote").catch(async (error) => { throw new Error(`${error.message}: ${await text("#convert-out")}`); });
    const promised = await text("[data-quote=to]");
    assert.match(await text("[data-quote=from]"), /100\.0000 USDT/);
    await page.click("#convert-go");
    await until(async () => /Converted/.test(await text("#convert-out")), "the conversion")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#convert-out")}`); });
    assert.ok((await text("#convert-out")).includes(promised), `got exactly the quoted ${promised}`);
    const after = await venue.api("GET", "/user/wallet?currency=USDt");
    assert.equal(before.amount - after.amount, 100 * 1e6, "exactly 100 USDT paid");
    await shot("earn");
  });

  test("the Bots page backtests, starts and stops a futures grid", async () => {
    await page.click(".nav a[data-page=bots]");
    await until(async () => (await page.locator("#bot-symbol option").count()) > 0, "the markets in the form");
    await page.selectOption("#bot-kind", "futuresGrid");
    await page.selectOption("#bot-symbol", "XBTUSDT");
    const row = (await (await fetch(`${venue.url}/api/v1/instrument?symbol=XBTUSDT`)).json())[0];
    const at = (/** @type {number} */ f) => String(Math.round((row.lastPrice * f) / row.tickSize) * row.tickSize);
    await page.fill("#bot-lowerPrice", at(0.98));
    await page.fill("#bot-upperPrice", at(1.02));
    await page.fill("#bot-grids", "6");
    await page.fill("#bot-leverage", "2");
    await page.fill("#bot-investment", "2000");
    assert.ok(await page.locator("[data-field=baseQty]").isHidden(), "DCA fields hidden for a grid");
    const answered = page.waitForResponse((r) => r.url().includes("/api/v1/bot/backtest"), { timeout: 60_000 });
    await page.click("#bot-backtest");
    const backtest = await (await answered).json();
    await until(async () => (await page.locator("#backtest-result").count()) === 1 || /\S/.test(await text("#bot-out")) && !/Backtesting/.test(await text("#bot-out")), "the backtest", 40_000);
    assert.equal(await page.locator("#backtest-result").count(), 1, await text("#bot-out"));
    // the equity curve: one point per second of the venue's answer, drawn on a canvas
    const seconds = new Set(backtest.equity.map((/** @type {any} */ e) => Math.floor(e.timestamp / 1e9)));
    assert.ok(seconds.size >= 2, "a curve, not a point");
    assert.equal(Number(await page.locator("#backtest-equity").getAttribute("data-points")), seconds.size);
    assert.ok(await page.locator("#backtest-equity canvas").count() >= 1, "the plot is drawn");
    await page.locator("#backtest-equity").screenshot({ path: join(ARTIFACTS, "bots-backtest-equity.png") });
    await page.click("#bot-start");
    await until(async () => /started/.test(await text("#bot-out")), "the bot started")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#bot-out")}`); });
    const bots = await venue.api("GET", "/bot");
    assert.equal(bots.length, 1);
    const botRow = page.locator(`#bots-table tr[data-bot="${bots[0].botId}"]`);
    await until(async () => /running/.test(await botRow.locator("[data-field=state]").innerText().catch(() => "")), "the bot running in the list");
    // the bot's status page: its orders, fills, PnL and fees as GET /bot/status gives them
    await botRow.locator("[data-action=detail]").click();
    const status = async () => venue.api("GET", `/bot/status?botId=${bots[0].botId}`);
    await until(async () => (await page.locator(`#bot-detail[data-bot="${bots[0].botId}"]`).count()) === 1, "the bot's status page");
    await until(async () => {
      const now = await status();
      const shown = await page.locator("#bot-orders-table tbody tr").count();
      return now.orders.length > 0 && shown === now.orders.length;
    }, "the bot's open orders listed (one row each)");
    for (const field of ["realisedPnl", "unrealisedPnl", "fees", "pnl", "fillCount"]) {
      assert.ok((await page.locator(`[data-detail=${field}]`).innerText()).length > 0, field);
    }
    const grid = await status();
    const lowest = Math.min(...grid.orders.map((/** @type {any} */ o) => o.price)) * row.tickSize;
    assert.match(await text("#bot-orders-table"), new RegExp(lowest.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 }).replace(/[.,]/g, "\\$&")),
      "the lowest grid order's price (ticks x tick size)");
    await shot("bots");
    await botRow.locator("[data-action=stop]").click();
    await until(async () => /stopped/.test(await botRow.locator("[data-field=state]").innerText().catch(() => "")), "the bot stopped");
    await until(async () => /stopped/.test(await page.locator("[data-detail=state]").innerText().catch(() => "")), "the status page follows");
    assert.equal((await venue.api("GET", "/bot"))[0].state, "stopped");
  });

  test("the Copy trading page makes the trader a leader, lists the track record and shows the venue's refusals", async () => {
    await page.click(".nav a[data-page=copy]");
    await until(async () => /No leaders yet|Leader/.test(await text("#copy-leaders")), "the leaders");
    await page.fill("#leader-name", "e2e leader");
    await page.fill("#leader-symbols", "XBTUSD");
    await page.click("#leader-go");
    await until(async () => /You lead as "e2e leader"/.test(await text("#leader-out")), "the leader profile saved")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#leader-out")}`); });
    const listed = await (await fetch(`${venue.url}/api/v1/copy/leaders`)).json();
    const me = listed.find((/** @type {any} */ r) => r.name === "e2e leader");
    assert.ok(me, "the venue lists the new leader");
    const row = page.locator(`#copy-leaders-table tr[data-leader="${me.account}"]`);
    await until(async () => (await row.count()) === 1, "the leader in the table");
    assert.match(await row.innerText(), /XBTUSD/);
    assert.equal(typeof me.trips, "number", "a track record from the read models");
    assert.match(await row.innerText(), new RegExp(`\\b${me.trips}\\b`));
    await row.locator("[data-action=follow]").click();
    assert.equal(await page.locator("#follow-leader").inputValue(), String(me.account));
    await page.fill("#follow-allocation", "0.01");
    await page.click("#follow-go");
    await until(async () => /cannot copy yourself/.test(await text("#follow-out")), "the venue's refusal to copy oneself")
      .catch(async (error) => { throw new Error(`${error.message}: ${await text("#follow-out")}`); });
    assert.match(await text("#copy-follows"), /You copy no one/);
    await shot("copy");
  });

  test("the Operator page halts and resumes a market and publishes an announcement", async () => {
    const operatorKey = /x-operator-key:\s+(\S+)/.exec(venue.output)?.[1] ?? "";
    await page.click(".nav a[data-page=operator]");
    await until(async () => /Enter the operator key/.test(await text("#operator-markets")), "the page asking for the key");
    await page.fill("#operator-key", operatorKey);
    await page.click("#operator-use");
    const row = page.locator('#operator-markets-table tr[data-symbol="ETHUSD"]');
    await until(async () => (await row.count()) === 1, "the markets");
    assert.equal(await row.locator("[data-field=state]").innerText(), "Open");
    await row.locator("[data-action=halt]").click();
    await until(async () => (await row.locator("[data-field=state]").innerText()) === "Closed", "ETHUSD halted");
    const halted = (await (await fetch(`${venue.url}/api/v1/instrument?symbol=ETHUSD`)).json())[0];
    assert.equal(halted.state, "Closed");
    await row.locator("[data-action=resume]").click();
    await until(async () => (await row.locator("[data-field=state]").innerText()) === "Open", "ETHUSD resumed");
    assert.match(await text("#operator-withdrawals"), /No withdrawals awaiting approval/);
    // a wallet network's withdrawals paused and resumed (GET /wallet/networks follows)
    const eth = page.locator('#operator-networks-table tr[data-network="eth"]');
    await until(async () => (await eth.count()) === 1, "the eth network");
    assert.equal(await eth.locator("[data-field=withdrawals]").innerText(), "on");
    const ethPublic = async () => (await (await fetch(`${venue.url}/api/v1/wallet/networks`)).json()).find((/** @type {any} */ n) => n.network === "eth");
    await eth.locator("[data-action=pause-withdrawals]").click();
    await until(async () => (await eth.locator("[data-field=withdrawals]").innerText()) === "paused", "withdrawals paused");
    const paused = await (await fetch(`${venue.url}/api/v1/admin/wallets`, { headers: { "x-operator-key": operatorKey } })).json();
    assert.equal(paused.find((/** @type {any} */ n) => n.network === "eth").withdrawalsEnabled, false);
    assert.deepEqual([(await ethPublic()).withdrawalEnabled, (await ethPublic()).depositEnabled], [false, true], "the public network status follows");
    await eth.locator("[data-action=resume-withdrawals]").click();
    await until(async () => (await eth.locator("[data-field=withdrawals]").innerText()) === "on", "withdrawals resumed");
    assert.equal((await ethPublic()).withdrawalEnabled, true);
    await page.fill("#announce-title", "Operator test notice");
    await page.click("#announce-go");
    const note = page.locator("#announcements .note").filter({ hasText: "Operator test notice" });
    await until(async () => (await note.count()) === 1, "the published announcement in the banner");
    await shot("operator");
    const [published] = (await (await fetch(`${venue.url}/api/v1/announcement`)).json()).filter((/** @type {any} */ a) => a.title === "Operator test notice");
    await fetch(`${venue.url}/api/v1/admin/announcement`, { method: "DELETE", body: JSON.stringify({ id: published.id }),
      headers: { "content-type": "application/json", "x-operator-key": operatorKey } });
    await until(async () => (await note.count()) === 0, "the announcement withdrawn");
  });

  test("an account signs up, confirms by mail, turns on 2FA, trades as its session (no API key) and signs out", async () => {
    const email = "trader@example.com";
    const password = "copper kettle violin 93 harbour";
    const own = await openPage(browser, { viewport: { width: 1400, height: 900 } });
    const p = own.page;
    await p.goto(`${venue.url}/#/account`);
    await p.waitForSelector("body[data-ready=true]");
    await p.fill("#register-email", email);
    await p.fill("#register-password", password);
    await p.click("#register button[type=submit]");
    await until(async () => /confirm/i.test(await p.locator("#register-out").innerText()), "the sign-up answer");
    const token = await until(async () => mailedToken(email), "the confirmation mail");
    await p.fill("#confirm-token", token);
    await p.click("#confirm button[type=submit]");
    await until(async () => /confirmed/.test(await p.locator("#confirm-out").innerText()), "the confirmation");
    await p.fill("#sign-in-email", email);
    await p.fill("#sign-in-password", password);
    await p.click("#sign-in button[type=submit]");
    await until(async () => (await p.locator("#profile").innerText()).includes(email), "the profile");
    assert.equal(await p.locator("#account-link").innerText(), email);
    await until(async () => /\d/.test(await p.locator("[data-kyc=level]").innerText().catch(() => "")), "the KYC card");
    const kyc = await p.evaluate(async () => (await fetch("/api/v1/user/kyc")).json()); // the page's own session
    assert.equal(await p.locator("[data-kyc=level]").innerText(), String(kyc.level));
    assert.match(await p.locator("[data-kyc=status]").innerText(), new RegExp(`^${kyc.status}`));

    // the KYC application, its documents and the submission, from the page
    await p.fill("#kyc-application-name", "Trader Example");
    await p.fill("#kyc-application-dateOfBirth", "1990-05-17");
    await p.fill("#kyc-application-residence", "DE");
    await p.fill("#kyc-application-citizenship", "DE");
    await p.fill("#kyc-application-address", "Musterstrasse 1, Berlin");
    await p.fill("#kyc-application-occupation", "engineer");
    await p.click("#kyc-application button[type=submit]");
    await until(async () => /saved/.test(await p.locator("#kyc-application-out").innerText()), "the KYC application saved");
    await until(async () => (await p.locator("[data-kyc=missing]").innerText()).includes("selfie"), "the documents still needed");
    // real PNGs (the venue re-encodes images), each different (it refuses the same file twice)
    const png = async (/** @type {string} */ color) => Buffer.from((await p.evaluate((c) => {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 2;
      const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
      context.fillStyle = c;
      context.fillRect(0, 0, 2, 2);
      return canvas.toDataURL("image/png");
    }, color)).split(",")[1], "base64");
    for (const [kind, color] of [["id_front", "#c00"], ["id_back", "#0c0"], ["selfie", "#00c"]]) {
      await p.selectOption("#kyc-doc-kind", kind);
      await p.setInputFiles("#kyc-doc-file", { name: `${kind}.png`, mimeType: "image/png", buffer: await png(color) });
      await p.click("#kyc-doc-upload");
      await until(async () => (await p.locator("#kyc-doc-out").innerText()).startsWith(`Uploaded: ${kind}`), `the ${kind} upload`);
    }
    await until(async () => (await p.locator("[data-kyc=missing]").innerText()) === "nothing", "no document missing");
    await p.click("#kyc-submit");
    await until(async () => /review/.test(await p.locator("#kyc-doc-out").innerText()), "the application sent for review");
    const sent = await p.evaluate(async () => (await fetch("/api/v1/user/kyc")).json());
    assert.equal(sent.status, "pending");
    assert.deepEqual(sent.documents.map((/** @type {any} */ d) => d.kind).sort(), ["id_back", "id_front", "selfie"]);
    await until(async () => (await p.locator("[data-kyc=status]").innerText()).startsWith("pending"), "the pending status shown");
    await shot("account-kyc", p);
    // the reviewer opens the case on the Operator page: the application and the three documents,
    // decrypted by the venue and shown as images (each the colour the applicant sent)
    const review = await openPage(browser, { viewport: { width: 1400, height: 900 } });
    const r = review.page;
    await r.goto(`${venue.url}/#/operator`);
    await r.waitForSelector("body[data-ready=true]");
    await r.fill("#operator-key", operatorKey());
    await r.click("#operator-use");
    await r.fill("#operator-name", "reviewer one");
    const me = await p.evaluate(async () => (await (await fetch("/api/v1/user")).json()).id);
    const caseRow = r.locator(`#operator-kyc-table tr[data-account="${me}"]`);
    await until(async () => (await caseRow.count()) === 1, "the case in the KYC queue");
    const firstCase = await caseRow.getAttribute("data-case");
    await caseRow.locator("[data-action=review]").click();
    const images = r.locator("#operator-case-docs img");
    await until(async () => (await images.count()) === 3 && (await images.evaluateAll((all) => all.every((i) => /** @type {HTMLImageElement} */ (i).naturalWidth > 0))),
      "the three documents shown");
    assert.equal(await r.locator("#operator-case [data-case-field=name]").innerText(), "Trader Example");
    assert.equal(await r.locator("#operator-case [data-case-field=residence]").innerText(), "DE");
    const colours = Object.fromEntries(await r.locator("#operator-case-docs figure").evaluateAll((figures) => figures.map((f) => {
      const img = /** @type {HTMLImageElement} */ (f.querySelector("img"));
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
      context.drawImage(img, 0, 0);
      return [/** @type {HTMLElement} */ (f).dataset.kind, [...context.getImageData(0, 0, 1, 1).data.slice(0, 3)]];
    })));
    const near = (/** @type {number[]} */ got, /** @type {number[]} */ want) => got.every((v, i) => Math.abs(v - want[i]) <= 8);
    assert.ok(near(colours.id_front, [204, 0, 0]) && near(colours.id_back, [0, 204, 0]) && near(colours.selfie, [0, 0, 204]), JSON.stringify(colours));
    await r.screenshot({ path: join(ARTIFACTS, "operator-kyc-case.png"), fullPage: true });
    assert.deepEqual(await axeViolations(r, "operator KYC case"), []);
    // a rejection needs a reason (the venue's refusal shown); with one it is recorded
    await caseRow.locator("[data-action=reject]").click();
    await until(async () => /needs a reason/.test(await r.locator("#operator-out").innerText()), "the venue's refusal without a reason");
    await r.fill("#operator-kyc-reason", "The selfie is too dark");
    await caseRow.locator("[data-action=reject]").click();
    await until(async () => /reject recorded/.test(await r.locator("#operator-out").innerText()), "the rejection recorded");
    await until(async () => (await caseRow.count()) === 0, "the case gone from the queue");
    const trail = await (await fetch(`${venue.url}/api/v1/admin/kyc/decisions?account=${me}`, { headers: { "x-operator-key": operatorKey() } })).json();
    assert.ok(trail.some((/** @type {any} */ d) => String(d.caseId ?? d.case) === firstCase && d.decision === "reject" && d.reason === "The selfie is too dark" && d.reviewer === "reviewer one"),
      JSON.stringify(trail));
    await until(async () => (await p.evaluate(async () => (await fetch("/api/v1/user/kyc")).json())).status === "rejected", "the application rejected");
    // the applicant sends it again; the reviewer approves the new case (a level-1 individual: one reviewer)
    await p.click("#kyc-submit");
    await until(async () => /review/.test(await p.locator("#kyc-doc-out").innerText()), "the application sent again");
    await r.click(".nav a[data-page=markets]");
    await r.click(".nav a[data-page=operator]");
    await until(async () => (await caseRow.count()) === 1 && (await caseRow.getAttribute("data-case")) !== firstCase, "the new case in the queue");
    await caseRow.locator("[data-action=approve]").click();
    await until(async () => /approve recorded/.test(await r.locator("#operator-out").innerText()), "the approval recorded");
    assert.deepEqual(review.errors.filter((e) => !/status of 400 .*\/api\/v1\/admin\/kyc\/decide/.test(e)), []);
    await review.context.close();
    const approved = await until(async () => {
      const now = await p.evaluate(async () => (await fetch("/api/v1/user/kyc")).json());
      return now.status === "approved" ? now : null;
    }, "the application approved");
    assert.equal(approved.level, 1);

    await p.click("#tfa-start");
    const secret = await p.locator("#tfa-secret").innerText();
    assert.ok(await p.locator("#tfa-qr").evaluate((img) => /** @type {HTMLImageElement} */ (img).naturalWidth > 0), "the QR code renders");
    await p.fill("#tfa-code", await freshTotp(secret));
    await p.click("#tfa-confirm");
    await until(async () => (await p.locator("#recovery-codes").count()) === 1, "recovery codes");
    assert.match(await p.locator("#profile").innerText(), /Two-factor\s+On/);
    await own.context.pages()[0].screenshot({ path: join(ARTIFACTS, "account.png"), fullPage: true });

    // the terminal trades as the session itself (cookie and CSRF token over REST, authSession
    // on the WebSocket): no API key is made for it
    assert.match(await p.locator("#trading-as").innerText(), /signed-in session/);
    assert.equal(await p.locator("#make-trading-key").count(), 0);
    const faucet = await fetch(`${venue.url}/api/v1/admin/faucet`, { method: "POST",
      headers: { "content-type": "application/json", "x-operator-key": operatorKey() },
      body: JSON.stringify({ account: me, currency: "XBt", amount: 10_000_000 }) });
    assert.equal(faucet.status, 200, await faucet.text());
    await until(async () => (await p.locator("#sessions-table tbody tr").count()) >= 1, "the session listed");
    await until(async () => (await p.locator("#audit-table tbody tr").count()) >= 2, "security events");
    await p.click(".nav a[data-page=trade]");
    await until(async () => (await p.locator("#tabpanel-positions").innerText()).includes("No open positions"), "the private feed over the session cookie");
    await until(async () => /[1-9]/.test((await p.locator("#order-preview").innerText()).split("Available")[1] ?? ""), "the funded balance in the preview");
    const bid = (await instrument()).bidPrice;
    const tick = (await instrument()).tickSize;
    await p.selectOption("#order-type", "Limit");
    await p.fill("#order-qty", "100");
    await p.fill("#order-price", (Math.round((bid * 0.95) / tick) * tick).toFixed(1));
    await p.click("#submit-buy");
    await p.click("#tab-orders");
    const ownOrder = p.locator("#tabpanel-orders tr[data-order]");
    await until(async () => (await ownOrder.count()) === 1, "the session's order in open orders (private WebSocket)");
    const orderID = await ownOrder.getAttribute("data-order");
    const listed = await p.evaluate(async () => (await fetch("/api/v1/order?reverse=true&count=5")).json()); // the session's REST
    assert.equal(listed[0].orderID, orderID);
    assert.equal(listed[0].orderQty, 100);
    await ownOrder.locator("[data-action=cancel]").click();
    await until(async () => (await ownOrder.count()) === 0, "the order cancelled");
    assert.deepEqual(await p.evaluate(async () => (await fetch("/api/v1/apiKey")).json()), [], "no API key was made");

    await p.click("#account-link");
    await p.click("#sign-out");
    await until(async () => (await p.locator("#sign-in").isVisible()), "the sign-in form again");
    await p.fill("#sign-in-email", email);
    await p.fill("#sign-in-password", password);
    await p.click("#sign-in button[type=submit]");
    await until(async () => (await p.locator("#sign-in-out").innerText()).length > 0, "a refusal without the 2FA code");
    await p.fill("#sign-in-otpToken", await freshTotp(secret));
    await p.click("#sign-in button[type=submit]");
    await until(async () => (await p.locator("#profile").innerText()).includes(email), "signed in with the code");
    trader = { context: own.context, p, errors: own.errors, email, password, secret, id: me };
  });

  test("the Account page saves preferences the terminal applies, and changes the email with the mailed token", async () => {
    assert.ok(trader, "the trader of the sign-up test");
    const p = trader.p;
    await p.click("#account-link");
    await until(async () => (await p.locator("#pref-symbol option[value=ETHUSD]").count()) === 1, "the markets in the preferences");
    await p.selectOption("#pref-symbol", "ETHUSD");
    await p.check("#pref-small");
    await p.click("#pref-save");
    await until(async () => /saved/.test(await p.locator("#pref-out").innerText()), "the preferences saved");
    const user = await p.evaluate(async () => (await fetch("/api/v1/user")).json());
    assert.equal(user.preferences.defaultSymbol, "ETHUSD");
    assert.equal(user.preferences.hideSmallBalances, true);
    await p.goto(`${venue.url}/#/trade`);
    await p.reload(); // a fresh load: the preference picks the market
    await p.waitForSelector("body[data-ready=true]");
    await until(async () => (await p.locator("#symbol-button").innerText()).includes("ETHUSD"), "the terminal opened on the preferred market");
    await p.click(".nav a[data-page=wallet]");
    await until(async () => (await p.locator("#balances-table tr[data-currency=XBt]").count()) === 1, "the funded XBT balance");
    assert.equal(await p.locator("#balances-table tr[data-currency=USDt]").count(), 0, "an empty balance hidden by the preference");

    // an API key made on the page: the secret shown once works over REST; withdraw needs the 2FA
    // code (the venue's refusal shown); deleted on the page, the key stops working
    await p.click("#account-link");
    /** A GET signed with the key and secret, as any BitMEX client signs it. */
    const signedGet = async (/** @type {string} */ key, /** @type {string} */ keySecret, /** @type {string} */ path) => {
      const expires = Math.floor(Date.now() / 1000) + 60;
      const signature = createHmac("sha256", keySecret).update(`GET/api/v1${path}${expires}`).digest("hex");
      return fetch(`${venue.url}/api/v1${path}`, { headers: { "api-key": key, "api-expires": String(expires), "api-signature": signature } });
    };
    await p.fill("#new-key-name", "my bot");
    await p.check("#new-key-perm-withdraw");
    await p.click("#new-key button[type=submit]");
    await until(async () => /\S/.test(await p.locator("#new-key-out").innerText()), "the venue's answer");
    assert.doesNotMatch(await p.locator("#new-key-out").innerText(), /created/, "no withdraw key without the 2FA code");
    await p.uncheck("#new-key-perm-withdraw");
    await p.check("#new-key-perm-order");
    await p.click("#new-key button[type=submit]");
    await until(async () => /created/.test(await p.locator("#new-key-out").innerText()), "the key created")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#new-key-out").innerText()}`); });
    const keyId = await p.locator("#new-key-id").innerText();
    const keySecret = await p.locator("#new-key-value").innerText();
    const asKey = await signedGet(keyId, keySecret, "/user");
    assert.equal(asKey.status, 200);
    assert.equal((await asKey.json()).id, trader.id);
    const keyRow = p.locator(`#api-keys-table tr[data-key="${keyId}"]`);
    await until(async () => (await keyRow.count()) === 1, "the key listed");
    assert.match(await keyRow.innerText(), /my bot\s+order/);
    await keyRow.locator("[data-action=delete-key]").click();
    await until(async () => (await keyRow.count()) === 0, "the key deleted");
    assert.equal((await signedGet(keyId, keySecret, "/user")).status, 401, "the deleted key refused");

    // the anti-phishing phrase: saved on the page, it heads every mail the venue sends after it
    await p.fill("#phrase-antiPhishingPhrase", "blue heron 42");
    await p.click("#phrase button[type=submit]");
    await until(async () => /Saved/.test(await p.locator("#phrase-out").innerText()), "the phrase saved");
    const newEmail = "trader.new@example.com";
    await p.fill("#email-change-email", newEmail);
    await p.fill("#email-change-password", trader.password);
    await p.click("#email-change button[type=submit]");
    await until(async () => /token/i.test(await p.locator("#email-change-out").innerText()), "the email change asked");
    const token = await until(async () => mailedToken(newEmail), "the mail to the new address");
    const changeMail = mailTexts(newEmail).find((t) => t.includes(token)) ?? "";
    assert.match(changeMail, /^Your anti-phishing phrase: blue heron 42/);
    await p.fill("#email-confirm-token", token);
    await p.click("#email-confirm button[type=submit]");
    await until(async () => (await p.locator("#profile").innerText()).includes(newEmail), "the new email on the profile")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#email-confirm-out").innerText()}`); });
    assert.equal(await p.locator("#account-link").innerText(), newEmail);
    assert.equal((await p.evaluate(async () => (await fetch("/api/v1/user")).json())).email, newEmail);
    trader.email = newEmail;
    await p.screenshot({ path: join(ARTIFACTS, "account-preferences.png"), fullPage: true });
  });

  test("the signed-up trader follows the leader on the Copy page and stops copying", async () => {
    assert.ok(trader, "the trader of the sign-up test");
    const p = trader.p;
    const leader = (await (await fetch(`${venue.url}/api/v1/copy/leaders`)).json()).find((/** @type {any} */ r) => r.name === "e2e leader");
    assert.ok(leader, "the leader of the Copy page test");
    await p.click(".nav a[data-page=copy]");
    await until(async () => /You copy no one/.test(await p.locator("#copy-follows").innerText()), "no relationship yet");
    const leaderRow = p.locator(`#copy-leaders-table tr[data-leader="${leader.account}"]`);
    await until(async () => (await leaderRow.count()) === 1, "the leader listed");
    await leaderRow.locator("[data-action=follow]").click();
    assert.equal(await p.locator("#follow-leader").inputValue(), String(leader.account));
    assert.equal(await p.evaluate(() => document.activeElement?.id), "follow-allocation", "the allocation field takes the focus");
    await p.keyboard.type("0.01");
    await p.fill("#follow-leverageCap", "5");
    await p.click("#follow-go");
    await until(async () => /Copying leader/.test(await p.locator("#follow-out").innerText()), "the relationship started")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#follow-out").innerText()}`); });
    const [follow] = await p.evaluate(async () => (await fetch("/api/v1/copy/follow")).json());
    assert.equal(follow.leader, leader.account);
    assert.equal(follow.state, "active");
    const followRow = p.locator(`#copy-follows-table tr[data-follow="${follow.followId}"]`);
    await until(async () => (await followRow.count()) === 1, "the relationship listed");
    assert.match(await followRow.innerText(), /active/);
    assert.match(await followRow.innerText(), /active\t0\.010000 XBT/, "the allocation in XBT");
    await until(async () => /\b1\b/.test(await leaderRow.locator("td").nth(8).innerText()), "the leader's follower count");
    await p.screenshot({ path: join(ARTIFACTS, "copy-following.png"), fullPage: true });
    await followRow.locator("[data-action=stop-copy]").click();
    await until(async () => /stopped/.test(await followRow.innerText()), "the relationship stopped");
    assert.equal(await followRow.locator("[data-action=stop-copy]").count(), 0);
    const [after] = await p.evaluate(async () => (await fetch("/api/v1/copy/follow")).json());
    assert.equal(after.state, "stopped");
  });

  test("a whole withdrawal on the Wallet page: a deposit on the local chain, the address book, the fee, 2FA, the mailed token, the operator's four-eyes approval (one rejected, one approved), then on chain", async () => {
    assert.ok(trader, "the trader of the sign-up test");
    const { p, secret } = trader;
    await p.click(".nav a[data-page=wallet]");
    await until(async () => (await p.locator("#deposit-asset option[value=Gwei]").count()) === 1, "the wallet assets");
    await p.selectOption("#deposit-asset", "Gwei");
    await p.selectOption("#deposit-network", "eth");
    await p.click("#deposit-go");
    await until(async () => (await p.locator("#deposit-address").count()) === 1, "the deposit address");
    const address = await p.locator("#deposit-address").innerText();
    await chainCall("eth_sendTransaction", [{ from: DEV_FUNDER, to: address, value: "0x" + (51n * 10n ** 18n).toString(16) }]); // 51 ETH
    const wallet = async () => (await p.evaluate(async () => (await fetch("/api/v1/user/wallet?currency=Gwei")).json())).amount;
    await until(async () => (await wallet()) === 51e9, "51 ETH credited after its confirmations", 90_000);
    await until(async () => /51\.000000 ETH/.test(await p.locator("#balances-table tr[data-currency=Gwei]").innerText().catch(() => "")), "the balance on the page");

    // the address book: saved with a 2FA code, listed with the time it becomes usable
    const saved = "0x5555555555555555555555555555555555555555";
    await p.selectOption("#address-asset", "Gwei");
    await p.selectOption("#address-network", "eth");
    await p.fill("#address-address", saved);
    await p.fill("#address-name", "my cold wallet");
    await p.fill("#address-otp", await freshTotp(secret));
    await p.click("#address-add");
    await until(async () => /saved/.test(await p.locator("#address-out").innerText()), "the address saved")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#address-out").innerText()}`); });
    await until(async () => (await p.locator("#address-table").innerText()).includes("my cold wallet"), "the address listed");
    await p.selectOption("#withdraw-asset", "Gwei");
    await p.selectOption("#withdraw-network", "eth");
    await until(async () => (await p.locator("#withdraw-saved option").count()) === 2, "the saved address offered");
    await p.selectOption("#withdraw-saved", { index: 1 });
    await p.fill("#withdraw-amount", "0.1");
    await p.fill("#withdraw-otp", "000000");
    await p.click("#withdraw-go");
    await until(async () => /24 hours/.test(await p.locator("#withdraw-out").innerText()), "the saved address refused within its first 24 hours");

    // the fee shown is the venue's; the withdrawal goes to a typed address with a 2FA code
    const assets = await (await fetch(`${venue.url}/api/v1/wallet/assets`)).json();
    const eth = assets.find((/** @type {any} */ a) => a.currency === "Gwei");
    const fee = eth.networks.find((/** @type {any} */ n) => n.asset === "eth").withdrawalFee;
    assert.match(await p.locator("#withdraw-fee").innerText(), new RegExp(`Network fee ${(fee / 1e9).toFixed(6).replace(".", "\\.")} ETH`));
    const to = "0x6666666666666666666666666666666666666666";
    const history = async () => p.evaluate(async () => (await fetch("/api/v1/user/walletHistory?currency=Gwei&reverse=true")).json());
    /** Requests `amount` ETH to `to` with a 2FA code and confirms it with the mailed token; its transactID. */
    const withdraw = async (/** @type {string} */ amount) => {
      await p.selectOption("#withdraw-saved", "");
      await p.fill("#withdraw-address", to);
      await p.fill("#withdraw-amount", amount);
      const before = mailedToken(trader?.email ?? "");
      await p.fill("#withdraw-otp", await freshTotp(secret));
      await p.click("#withdraw-go");
      await until(async () => /Pending/.test(await p.locator("#withdraw-out").innerText()), "the withdrawal requested")
        .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#withdraw-out").innerText()}`); });
      const token = await until(async () => { const t = mailedToken(trader?.email ?? ""); return t && t !== before ? t : ""; }, "the confirmation mail");
      await p.fill("#withdraw-token", token);
      await p.click("#withdraw-confirm");
      await until(async () => /confirmed/.test(await p.locator("#withdraw-out").innerText()), "the withdrawal confirmed")
        .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#withdraw-out").innerText()}`); });
      return String((await history()).find((/** @type {any} */ h) => h.transactType === "Withdrawal").transactID);
    };
    // 50 ETH is at the venue's four-eyes threshold: after the mailed token it waits for an
    // operator, shown so in the trader's history, and nothing leaves before that
    const first = await withdraw("50");
    assert.equal(await wallet(), 51e9 - 50e9 - fee, "the amount and the fee held");
    assert.match(await p.locator("#withdraw-out").innerText(), /awaiting approval/);
    const rowOf = (/** @type {string} */ id) => p.locator(`#history-table tr[data-transact="${id}"]`);
    await until(async () => (await rowOf(first).locator("[data-field=status]").innerText().catch(() => "")) === "Confirmed: awaiting approval",
      "the withdrawal awaiting approval in the history");
    assert.equal((await history()).find((/** @type {any} */ h) => h.transactID === first).state, "Approval");
    await p.screenshot({ path: join(ARTIFACTS, "wallet-awaiting-approval.png"), fullPage: true });
    // the operator rejects it on the Operator page: the hold is released
    const ops = await openPage(browser, { viewport: { width: 1400, height: 900 } });
    await ops.page.goto(`${venue.url}/#/operator`);
    await ops.page.waitForSelector("body[data-ready=true]");
    await ops.page.fill("#operator-key", operatorKey());
    await ops.page.click("#operator-use");
    const pending = (/** @type {string} */ id) => ops.page.locator(`#operator-withdrawals-table tr[data-transact="${id}"]`);
    await until(async () => (await pending(first).count()) === 1, "the withdrawal awaiting approval on the Operator page");
    assert.match(await pending(first).innerText(), /50\.003000 ETH/);
    await ops.page.screenshot({ path: join(ARTIFACTS, "operator-withdrawals.png"), fullPage: true });
    assert.deepEqual(await axeViolations(ops.page, "operator withdrawals"), []);
    await pending(first).locator("[data-action=reject]").click();
    await until(async () => /Withdrawal rejected/.test(await ops.page.locator("#operator-out").innerText()), "the rejection");
    await until(async () => (await pending(first).count()) === 0, "gone from the approval list");
    await until(async () => (await wallet()) === 51e9, "the hold released");
    await until(async () => (await rowOf(first).locator("[data-field=status]").innerText().catch(() => "")) === "Canceled", "Canceled in the trader's history", 30_000);
    // asked again, it is approved by a named operator (the venue refuses an approval without a name)
    const second = await withdraw("50");
    await ops.page.click(".nav a[data-page=markets]");
    await ops.page.click(".nav a[data-page=operator]");
    await until(async () => (await pending(second).count()) === 1, "the second withdrawal awaiting approval");
    await pending(second).locator("[data-action=approve]").click();
    await until(async () => /'operator' is a required arg/.test(await ops.page.locator("#operator-out").innerText()), "the venue's refusal without a name");
    await ops.page.fill("#operator-name", "ops two");
    await pending(second).locator("[data-action=approve]").click();
    await until(async () => /Withdrawal approved/.test(await ops.page.locator("#operator-out").innerText()), "the approval");
    const approved = await (await fetch(`${venue.url}/api/v1/admin/withdrawals`, { headers: { "x-operator-key": operatorKey() } })).json();
    assert.notEqual(approved.find((/** @type {any} */ w) => w.transactID === second)?.state, "Approval");
    assert.deepEqual(ops.errors.filter((e) => !/status of 400 .*\/api\/v1\/admin\/withdrawal\/approve/.test(e)), []);
    await ops.context.close();
    await until(async () => BigInt(await chainCall("eth_getBalance", [to, "latest"])) === 50n * 10n ** 18n, "50 ETH on chain", 90_000);
    const row = rowOf(second);
    // the page follows the status while it is on its way, then Completed
    await until(async () => /Completed/.test(await row.locator("[data-field=status]").innerText().catch(() => "")),
      "the withdrawal Completed in the history", 90_000).catch(async (error) => {
      const rows = await history();
      throw new Error(`${error.message}: page ${await p.locator("#wallet-history").innerText()}; API ${JSON.stringify(rows)}`);
    });
    assert.match(await row.innerText(), /0x[0-9a-f]{12}/, "its transaction");
    await p.screenshot({ path: join(ARTIFACTS, "wallet-withdrawal.png"), fullPage: true });
    // the signed-in pages (forms, tables and history filled) pass axe-core's WCAG A/AA rules too
    const violations = [];
    for (const name of ["wallet", "account", "copy", "earn", "bots", "trade"]) {
      await p.evaluate((n) => { location.hash = `#/${n}`; }, name);
      await p.waitForTimeout(1_000);
      violations.push(...await axeViolations(p, `${name} (signed in)`));
    }
    assert.deepEqual(violations.slice(0, 20), []);
    assert.deepEqual(trader.errors.filter((e) => !/status of 4\d\d .*\/api\/v1\/(user\/login|user\/requestWithdrawal|apiKey)/.test(e)), []); // refusals provoked on purpose
    await trader.context.close();
    trader = null;
  });

  test("a security key (WebAuthn) is added on the Account page and signs in", async () => {
    const email = "keyholder@example.com";
    const password = "amber lantern quiet 47 meadow";
    const own = await openPage(browser, { viewport: { width: 1400, height: 900 } });
    const p = own.page;
    // a virtual authenticator in Chromium (DevTools' WebAuthn domain): a real ceremony, no mocks
    const cdp = await own.context.newCDPSession(p);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", { options: {
      protocol: "ctap2", transport: "usb", hasResidentKey: true, hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true } });
    await p.goto(`${venue.publicUrl}/#/account`); // the relying party is the venue's host name
    await p.waitForSelector("body[data-ready=true]");
    await p.fill("#register-email", email);
    await p.fill("#register-password", password);
    await p.click("#register button[type=submit]");
    const token = await until(async () => mailedToken(email), "the confirmation mail");
    await p.fill("#confirm-token", token);
    await p.click("#confirm button[type=submit]");
    await until(async () => /confirmed/.test(await p.locator("#confirm-out").innerText()), "the confirmation");
    await p.fill("#sign-in-email", email);
    await p.fill("#sign-in-password", password);
    await p.click("#sign-in button[type=submit]");
    await until(async () => (await p.locator("#profile").innerText()).includes(email), "the profile");

    await p.fill("#passkey-name", "test key");
    await p.click("#passkey-add");
    await until(async () => /added/.test(await p.locator("#passkey-out").innerText()), "the key added")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#passkey-out").innerText()}`); });
    assert.equal(await p.locator("#passkey-recovery-codes").count(), 1, "the first second factor comes with recovery codes");
    const recovery = (await p.locator("#passkey-recovery-codes").innerText()).split("\n").map((c) => c.trim()).filter(Boolean);
    assert.match(await p.locator("#profile").innerText(), /Two-factor\s+On \(security key\)/);
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    assert.equal(credentials.length, 1, "the authenticator holds the new credential");
    await p.screenshot({ path: join(ARTIFACTS, "account-security-key.png"), fullPage: true });

    await p.click("#sign-out");
    await until(async () => (await p.locator("#sign-in").isVisible()), "the sign-in form again");
    await p.fill("#sign-in-email", email);
    await p.fill("#sign-in-password", password);
    await p.click("#sign-in button[type=submit]");
    await until(async () => /code|factor|2FA/i.test(await p.locator("#sign-in-out").innerText()), "a refusal without the second factor");
    await p.click("#sign-in-passkey");
    await until(async () => (await p.locator("#profile").innerText()).includes(email), "signed in with the security key")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#sign-in-out").innerText()}`); });
    const { credentials: after } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    assert.ok(after[0].signCount >= 1, "the key signed the sign-in");
    const events = await p.locator("#audit-table").innerText();
    assert.match(events, /tfa_enabled/);
    const listed = p.locator("#passkeys-table tr[data-passkey]");
    await until(async () => (await listed.count()) === 1, "the key listed (GET /user/webauthn)");
    assert.match(await listed.innerText(), /test key/);
    // the list re-renders when the account view refreshes: type and click on the same row
    const removed = async () => (await p.locator("#passkeys-table tr[data-passkey]").count()) === 0;
    for (let attempt = 0; attempt < 3 && !(await removed()); attempt++) {
      const row = p.locator("#passkeys-table tr[data-passkey]").first();
      await row.locator("[data-passkey-code]").fill(recovery[0]);
      await row.locator("[data-action=remove-passkey]").click();
      await until(async () => (await removed()) || /\S/.test(await p.locator("#passkey-out").innerText()), "an answer to the removal", 10_000).catch(() => undefined);
      if (/removed/.test(await p.locator("#passkey-out").innerText())) break;
    }
    await until(removed, "the key removed with a recovery code")
      .catch(async (error) => { throw new Error(`${error.message}: ${await p.locator("#passkey-out").innerText()}, code ${recovery[0]}`); });
    assert.match(await p.locator("#profile").innerText(), /Two-factor\s+Off/);
    assert.deepEqual(own.errors.filter((e) => !/status of 4\d\d .*\/api\/v1\/user\/(login|webauthn)/.test(e)), []);
    await own.context.close();
  });

  test("text contrast passes WCAG AA and axe-core finds no WCAG 2.1 A/AA violation on any page", async () => {
    const failures = [];
    const violations = [];
    for (const name of ["trade", "markets", "wallet", "stats", "earn", "bots", "copy", "reserves", "operator", "account"]) {
      await page.goto(`${venue.url}/#/${name}`);
      await page.waitForTimeout(1_000);
      failures.push(...await contrastFailures(page, name));
      violations.push(...await axeViolations(page, name));
    }
    assert.deepEqual(failures.slice(0, 20), []);
    assert.deepEqual(violations.slice(0, 20), []);
    await page.goto(`${venue.url}/#/trade/${SYMBOL}`);
  });

  test("the keyboard alone picks a market, copies a price from the book, places an order and cancels it", async () => {
    await page.goto(`${venue.url}/#/trade/${SYMBOL}`);
    await page.waitForSelector("body[data-ready=true]");
    await until(async () => /\d/.test(await text("#book-bids")), "the book");
    const focused = () => page.evaluate(() => {
      const a = document.activeElement;
      return a ? a.id || a.getAttribute("data-action") || a.className : "";
    });
    /** Tab until `probe` holds for the focused element (at most `limit` presses). */
    const tabTo = async (/** @type {string} */ what, /** @type {() => Promise<boolean>} */ probe, limit = 300) => {
      for (let n = 0; n < limit; n++) {
        if (await probe()) return n;
        await page.keyboard.press("Tab");
      }
      throw new Error(`Tab never reached ${what} (at ${await focused()})`);
    };
    const isId = (/** @type {string} */ id) => async () => (await page.evaluate(() => document.activeElement?.id ?? "")) === id;
    await page.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
    await tabTo("the market picker", isId("symbol-button"));
    const outline = await page.evaluate(() => getComputedStyle(/** @type {Element} */ (document.activeElement)).outlineStyle);
    assert.notEqual(outline, "none", "a visible focus ring");
    await page.keyboard.press("Enter");
    await until(isId("symbol-filter"), "the filter focused");
    await page.keyboard.type("ETHUSD");
    await page.keyboard.press("Enter");
    await until(async () => (await page.evaluate(() => location.hash)) === "#/trade/ETHUSD", "ETHUSD picked");
    await tabTo("the market picker again", isId("symbol-button"));
    await page.keyboard.press("Enter");
    await page.keyboard.type(SYMBOL);
    await page.keyboard.press("Enter");
    await until(async () => (await page.evaluate(() => location.hash)) === `#/trade/${SYMBOL}`, `${SYMBOL} again`);
    await until(async () => /\d/.test(await text("#book-bids")), "its book");
    // the bids are one Tab stop; arrows move between levels; Enter copies the price
    await tabTo("the bids", isId("book-bids"));
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    const picked = await page.evaluate(() => document.activeElement?.querySelector(".p")?.textContent?.replace(/,/g, "") ?? "");
    assert.match(picked, /^\d/, "a level focused");
    await page.keyboard.press("Enter");
    assert.equal(await page.inputValue("#order-price"), picked);
    assert.equal(await page.inputValue("#order-type"), "Limit");
    await tabTo("the quantity", isId("order-qty"));
    await page.keyboard.press("Control+A");
    await page.keyboard.type("700");
    await tabTo("the time in force", isId("order-tif"));
    await page.keyboard.type("Good");
    assert.equal(await page.inputValue("#order-tif"), "GoodTillCancel");
    await tabTo("Buy", isId("submit-buy"));
    await page.keyboard.press("Enter");
    const open = async () => (await venue.api("GET", `/order?filter=${encodeURIComponent(JSON.stringify({ open: true }))}`))
      .find((/** @type {any} */ o) => o.orderQty === 700 && o.price === Number(picked));
    const placed = await until(open, "the order placed from the keyboard");
    await tabTo("the open orders tab", isId("tab-orders"));
    await page.keyboard.press("Enter");
    const row = page.locator(`#tabpanel-orders tr[data-order="${placed.orderID}"]`);
    await until(async () => (await row.count()) === 1, "the order in open orders");
    await tabTo("its Cancel button", async () => page.evaluate((id) => {
      const a = document.activeElement;
      return a?.getAttribute("data-action") === "cancel" && a.closest("tr")?.getAttribute("data-order") === id;
    }, placed.orderID));
    await page.keyboard.press("Enter");
    await until(async () => (await row.count()) === 0, "the order cancelled from the keyboard");
    assert.equal((await venue.api("GET", "/order?reverse=true&count=20")).find((/** @type {any} */ o) => o.orderID === placed.orderID).ordStatus, "Canceled");
  });

  test("every input is labelled and no console errors happened", async () => {
    const unlabeled = await page.evaluate(() => [...document.querySelectorAll("input, select")]
      .filter((node) => {
        const input = /** @type {HTMLInputElement} */ (node);
        return !input.labels?.length && !input.getAttribute("aria-label") && !input.closest("label");
      })
      .map((node) => node.id || node.outerHTML.slice(0, 60)));
    assert.deepEqual(unlabeled, []);
    // The errors the browser logs are the venue's refusals the tests provoke on purpose (a
    // withdrawal without permission, copying oneself), shown by their pages; anything else is a fault.
    const unexpected = errors.filter((e) => !/status of 4\d\d .*\/api\/v1\/(user\/(depositAddress|requestWithdrawal)|copy\/follow)/.test(e));
    assert.deepEqual(unexpected, []);
  });

  test("a phone-sized screen gets a one-column layout without sideways scrolling", async () => {
    const phone = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await phone.page.goto(`${venue.url}/#/trade/${SYMBOL}`);
    await phone.page.waitForSelector("body[data-ready=true]");
    await until(async () => /\d/.test(await phone.page.locator("#book-bids").innerText()), "the book on the phone");
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `page is ${width}px wide`);
    const chart = await phone.page.locator("#chart").boundingBox();
    const entry = await phone.page.locator("#entry").boundingBox();
    assert.ok(chart && entry && chart.width > 350 && entry.y > chart.y, "chart full width, order entry below it");
    await phone.page.screenshot({ path: join(ARTIFACTS, "phone-trade.png") });
    await phone.page.screenshot({ path: join(ARTIFACTS, "phone-trade-full.png"), fullPage: true });
    const wide = [];
    for (const name of ["markets", "wallet", "stats", "earn", "bots", "copy", "reserves", "operator", "account"]) {
      await phone.page.goto(`${venue.url}/#/${name}`);
      await phone.page.waitForTimeout(400);
      const pageWidth = await phone.page.evaluate(() => document.documentElement.scrollWidth);
      if (pageWidth > 390) wide.push(`${name}: ${pageWidth}px`);
      await phone.page.screenshot({ path: join(ARTIFACTS, `phone-${name}.png`) });
    }
    assert.deepEqual(wide, [], "no page scrolls sideways on a phone (wide tables scroll inside their panel)");
    assert.deepEqual(phone.errors, []);
    await phone.context.close();
  });

  test("the terminal is installable (manifest, service worker) and its shell opens offline", async () => {
    const pwa = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const w = pwa.page;
    await w.goto(`${venue.url}/#/trade/${SYMBOL}`);
    await w.waitForSelector("body[data-ready=true]");
    await until(async () => w.evaluate(async () => Boolean((await navigator.serviceWorker.ready).active && navigator.serviceWorker.controller)), "the service worker in control");
    const manifest = await (await fetch(`${venue.url}/manifest.webmanifest`)).json();
    assert.equal(manifest.display, "standalone");
    assert.ok(manifest.icons.length && manifest.start_url && manifest.name);
    // Chromium's own verdict on installability (DevTools: Page.getInstallabilityErrors)
    const cdp = await pwa.context.newCDPSession(w);
    const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
    // (Playwright's browser contexts are off the record, which Chromium names; nothing else)
    assert.deepEqual(installabilityErrors.filter((/** @type {any} */ e) => e.errorId !== "in-incognito"), []);
    await w.reload(); // through the worker now: the hashed assets are cached
    await w.waitForSelector("body[data-ready=true]");
    const cached = await w.evaluate(async () => (await (await caches.open("perpetua-shell-v1")).keys()).map((r) => new URL(r.url).pathname));
    assert.ok(cached.includes("/") && cached.some((path) => path.startsWith("/assets/") && path.endsWith(".js")), JSON.stringify(cached));
    await pwa.context.setOffline(true);
    await w.reload();
    await w.waitForSelector("body[data-ready=true]");
    assert.equal(await w.locator("#symbol-button").count(), 1, "the shell drawn offline");
    assert.notEqual(await w.locator("#conn").getAttribute("data-state"), "live");
    await w.screenshot({ path: join(ARTIFACTS, "phone-offline.png") });
    await pwa.context.setOffline(false);
    await until(async () => (await w.locator("#conn").getAttribute("data-state")) === "live", "live again when back online", 30_000);
    await pwa.context.close();
  });

  test("the WebSocket drop is shown and the terminal recovers when the venue is back", async () => {
    await until(async () => (await page.locator("#conn").getAttribute("data-state")) === "live", "live");
    assert.equal(await venue.stop(), 0, venue.output);
    await until(async () => (await page.locator("#conn").getAttribute("data-state")) === "reconnecting", "the reconnecting state");
    await shot("reconnecting");
    await venue.launch(); // same data dir and port: the venue resumes where it stopped
    await until(async () => (await page.locator("#conn").getAttribute("data-state")) === "live", "live again", 40_000);
    const tape0 = await text("#trades");
    await until(async () => (await text("#trades")) !== tape0, "trades flowing after the reconnect", 45_000);
    const positionRow = page.locator(`#tabpanel-positions tr[data-symbol="${SYMBOL}"]`);
    await until(async () => (await positionRow.count()) === 1, "the position again, from the private partial");
  });
});
