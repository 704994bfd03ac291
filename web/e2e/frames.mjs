// @ts-check
// Frame times of the trading page while the order book updates, for bench/bench_web.py frames
// (JSON on stdout; figures only, never a pass/fail test). A real `perpetua demo` (its bots
// trading, rate limits off) and Chromium at 1600x900 on #/trade/XBTUSD. Two phases of
// PERPETUA_WEB_FRAMES_S seconds each:
//   demo:  the demo's own update rate;
//   burst_batched, burst_single: the same plus PERPETUA_WEB_BURST_RATE (100) extra
//          orderBookL2 row changes a second on XBTUSD, made by this script through the public
//          API: post-only bids placed 2-3% under the bid, then cancelled by clOrdID, so each
//          is a real insert or delete in the venue's book and on the socket; 10 rows per
//          request (/order/bulk, about 10 socket messages a second) or 1 (about 100 a second).
//   synthetic: PERPETUA_WEB_BURST_RATE orderBookL2 update messages a second (one row each, a
//          known level's size changed) dispatched on the page's own socket by a timer in the
//          page: the terminal's rendering alone at exactly that rate, without the venue and the
//          load generator competing for the two cores.
// The terminal's own main-thread work is timed apart from the frame intervals (which also hold
// the browser's and the machine's): each animation-frame callback (render_ms_*) and each socket
// message handled (message_ms_*), by wrapping requestAnimationFrame and the socket's onmessage;
// performance.now() is coarsened to 0.1 ms in a page that is not cross-origin isolated.
// In the page: every requestAnimationFrame timestamp (the intervals are the frame times),
// long tasks (PerformanceObserver, > 50 ms), and the orderBookL2 messages and rows the socket
// delivered (counted by wrapping the page's WebSocket before the terminal loads).
import { Venue, launchBrowser } from "./venue.mjs";

const PHASE_S = Number(process.env.PERPETUA_WEB_FRAMES_S || 10);
const BURST_RATE = Number(process.env.PERPETUA_WEB_BURST_RATE || 100); // rows per second
const IN_FLIGHT_MAX = 16; // outstanding requests of the load generator
const FRAME_BUDGET_MS = 1000 / 60;
const SYMBOL = "XBTUSD";

/** Counts frames and socket traffic in the page; installed before any page script runs. */
function instrument() {
  const w = /** @type {any} */ (window);
  const probe = { frames: /** @type {number[]} */ ([]), longTasks: /** @type {number[]} */ ([]), bookMessages: 0, bookRows: 0, recording: false,
    /** @type {WebSocket[]} */ sockets: [], /** @type {Map<string, any>} */ levels: new Map(),
    /** @type {number[]} */ rafWork: [], /** @type {number[]} */ messageWork: [] };
  // the page's own work: each animation-frame callback and each socket message handled, timed
  const nativeRaf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => nativeRaf((t) => {
    const start = performance.now();
    try {
      callback(t);
    } finally {
      if (probe.recording && callback !== tick) probe.rafWork.push(performance.now() - start);
    }
  });
  w.__frames = probe;
  const Native = window.WebSocket;
  class Counted extends Native {
    /** @param {string | URL} url @param {string | string[]} [protocols] */
    constructor(url, protocols) {
      super(url, protocols);
      probe.sockets.push(this);
      /** @type {((event: MessageEvent) => void) | null} */
      let handler = null;
      Object.defineProperty(this, "onmessage", {
        get: () => handler,
        set: (h) => {
          handler = h && ((/** @type {MessageEvent} */ event) => {
            const start = performance.now();
            try {
              h.call(this, event);
            } finally {
              if (probe.recording) probe.messageWork.push(performance.now() - start);
            }
          });
        },
      });
      this.addEventListener("message", (event) => handler?.(event));
      this.addEventListener("message", (event) => {
        if (typeof event.data !== "string" || !event.data.includes('"table":"orderBookL2"')) return;
        if (event.isTrusted && !probe.recording) { // the venue's, between phases: the levels the synthetic phase changes
          const message = JSON.parse(event.data);
          for (const row of message.data ?? []) {
            const key = `${row.symbol}:${row.id}:${row.side}`;
            if (message.action === "delete") probe.levels.delete(key);
            else if (message.action !== "update") probe.levels.set(key, { symbol: row.symbol, id: row.id, side: row.side, price: row.price });
          }
        }
        if (!probe.recording) return;
        probe.bookMessages += 1;
        probe.bookRows += (event.data.match(/"price":/g) ?? []).length;
      });
    }
  }
  window.WebSocket = Counted;
  function tick(/** @type {number} */ t) {
    if (probe.recording) probe.frames.push(t);
    nativeRaf(tick);
  }
  nativeRaf(tick);
  try {
    new PerformanceObserver((list) => {
      if (probe.recording) for (const entry of list.getEntries()) probe.longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: false });
  } catch {
    // no long-task timing in this browser
  }
}

/** @param {number[]} values @param {number} q */
const quantile = (values, q) => {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const round = (/** @type {number} */ v, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

/** @param {import("playwright-core").Page} page @param {number} seconds @param {() => Promise<void>} [load] */
async function record(page, seconds, load) {
  await page.evaluate(() => {
    const p = /** @type {any} */ (window).__frames;
    Object.assign(p, { frames: [], longTasks: [], bookMessages: 0, bookRows: 0, rafWork: [], messageWork: [], recording: true });
  });
  const started = Date.now();
  const stop = load ? (async () => { while (Date.now() - started < seconds * 1000) await load(); })() : new Promise((r) => setTimeout(r, seconds * 1000));
  await stop;
  const probe = await page.evaluate(() => {
    const p = /** @type {any} */ (window).__frames;
    p.recording = false;
    return { frames: p.frames, longTasks: p.longTasks, bookMessages: p.bookMessages, bookRows: p.bookRows, rafWork: p.rafWork, messageWork: p.messageWork };
  });
  const elapsed = (Date.now() - started) / 1000;
  /** @type {number[]} */
  const intervals = [];
  for (let n = 1; n < probe.frames.length; n++) intervals.push(probe.frames[n] - probe.frames[n - 1]);
  return {
    seconds: round(elapsed, 1),
    book_messages_per_s: round(probe.bookMessages / elapsed, 1),
    book_rows_per_s: round(probe.bookRows / elapsed, 1),
    frames: intervals.length,
    fps: round(intervals.length / elapsed, 1),
    frame_ms_p50: round(quantile(intervals, 0.5)),
    frame_ms_p95: round(quantile(intervals, 0.95)),
    frame_ms_p99: round(quantile(intervals, 0.99)),
    frame_ms_max: round(Math.max(0, ...intervals)),
    // frames the display would have shown and the page missed: an interval of k budgets drops k - 1
    dropped_frames: intervals.reduce((sum, v) => sum + Math.max(0, Math.round(v / FRAME_BUDGET_MS) - 1), 0),
    frames_over_1_5_budget: intervals.filter((v) => v > FRAME_BUDGET_MS * 1.5).length,
    // the terminal's own main-thread work (the rest of a frame is the browser's and the machine's)
    render_callbacks_per_s: round(probe.rafWork.length / elapsed, 1),
    render_ms_p50: round(quantile(probe.rafWork, 0.5), 3),
    render_ms_p99: round(quantile(probe.rafWork, 0.99), 3),
    render_ms_max: round(Math.max(0, ...probe.rafWork), 3),
    messages_handled_per_s: round(probe.messageWork.length / elapsed, 1),
    message_ms_p50: round(quantile(probe.messageWork, 0.5), 3),
    message_ms_p99: round(quantile(probe.messageWork, 0.99), 3),
    script_ms_per_s: round((probe.rafWork.reduce((a, b) => a + b, 0) + probe.messageWork.reduce((a, b) => a + b, 0)) / elapsed, 1),
    long_tasks: probe.longTasks.length,
    long_task_ms_max: round(Math.max(0, ...probe.longTasks)),
  };
}

const venue = await Venue.start({ extraArgs: ["--no-rate-limits"] });
const browser = await launchBrowser();
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await context.newPage();
  await page.addInitScript(instrument);
  await page.goto(`${venue.url}/#/trade/${SYMBOL}`);
  await page.waitForFunction(() => /\d/.test(document.getElementById("book-bids")?.textContent ?? ""), undefined, { timeout: 60_000 });
  await page.waitForTimeout(2_000); // the first candles and partials settle

  const demo = await record(page, PHASE_S);

  const instrumentRow = (await (await fetch(`${venue.url}/api/v1/instrument?symbol=${SYMBOL}`)).json())[0];
  const tick = instrumentRow.tickSize;
  const base = instrumentRow.bidPrice;
  let n = 0;
  /** Alternately places `batch` post-only bids (new rows 2-3% under the bid) and cancels them by
   * clOrdID, BURST_RATE rows a second, at most IN_FLIGHT_MAX requests outstanding. */
  const burstPhase = async (/** @type {number} */ batch) => {
    const interval = (1000 * batch) / BURST_RATE;
    /** @type {string[]} */
    let resting = [];
    let sent = 0;
    let skipped = 0;
    let failed = 0;
    let inFlight = 0;
    let next = Date.now();
    /** @param {string} verb @param {string} path @param {object} body */
    const fire = (verb, path, body) => {
      inFlight += 1;
      venue.api(verb, path, body).catch(() => (failed += 1)).finally(() => (inFlight -= 1));
    };
    const load = async () => {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next += interval;
      if (inFlight >= IN_FLIGHT_MAX) {
        skipped += batch;
        return;
      }
      if (resting.length) {
        fire("DELETE", "/order", { clOrdID: resting });
        resting = [];
      } else {
        const orders = [];
        for (let k = 0; k < batch; k++, n++) {
          const price = Math.round((base * (0.97 + 0.01 * ((n % 500) / 500))) / tick) * tick;
          const clOrdID = `frames-${n}`;
          resting.push(clOrdID);
          orders.push({ symbol: SYMBOL, side: "Buy", orderQty: 100, price: Number(price.toFixed(1)), clOrdID, execInst: "ParticipateDoNotInitiate" });
        }
        if (batch === 1) fire("POST", "/order", orders[0]);
        else fire("POST", "/order/bulk", { orders });
      }
      sent += batch;
    };
    const figures = await record(page, PHASE_S, load);
    while (inFlight) await new Promise((r) => setTimeout(r, 50));
    if (resting.length) await venue.api("DELETE", "/order", { clOrdID: resting }).catch(() => undefined);
    return { ...figures, rows_per_request: batch, rows_sent_per_s: round(sent / figures.seconds, 1), rows_skipped: skipped, requests_failed: failed };
  };
  const burstBatched = await burstPhase(10);
  const burstSingle = await burstPhase(1);

  /** BURST_RATE update messages a second dispatched on the page's live socket, timed in the page. */
  const startSynthetic = () => page.evaluate(({ rate, symbol }) => {
    const p = /** @type {any} */ (window).__frames;
    const socket = p.sockets[p.sockets.length - 1];
    const levels = [...p.levels.values()].filter((l) => l.symbol === symbol);
    if (!socket || !levels.length) throw new Error("no socket or no book levels to update");
    const started = performance.now();
    let sent = 0;
    const pump = () => {
      if (!p.synthetic) return;
      const due = Math.floor(((performance.now() - started) * rate) / 1000);
      for (; sent < due; sent++) {
        const level = levels[sent % levels.length];
        const data = JSON.stringify({ table: "orderBookL2", action: "update", data: [{ ...level, size: 100 + ((sent * 7919) % 50_000) }] });
        socket.dispatchEvent(new MessageEvent("message", { data }));
      }
      setTimeout(pump, 1);
    };
    p.synthetic = true;
    pump();
    return levels.length;
  }, { rate: BURST_RATE, symbol: SYMBOL });
  const syntheticLevels = await startSynthetic();
  const synthetic = await record(page, PHASE_S);
  await page.evaluate(() => { /** @type {any} */ (window).__frames.synthetic = false; });

  const chromium = browser.version();
  process.stdout.write(JSON.stringify({
    page: `#/trade/${SYMBOL}`,
    viewport: "1600x900",
    chromium,
    frame_budget_ms: round(FRAME_BUDGET_MS),
    burst_rows_requested_per_s: BURST_RATE,
    demo,
    burst_batched: burstBatched,
    burst_single: burstSingle,
    synthetic: { ...synthetic, levels_updated: syntheticLevels },
  }) + "\n");
  await context.close();
} finally {
  await browser.close();
  await venue.close();
}
