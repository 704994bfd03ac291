// The order book (orderBookL2 for the chosen symbol) grouped to a multiple of the tick, with
// cumulative depth bars, and recent trades. Rendering is decoupled from updates: messages only
// mark the view dirty, and one animation frame redraws a fixed set of rows in place (no nodes
// created per update), so 100 updates/s cost one repaint per frame.
import type { App } from "./app";
import { clock, decimalsOf, el, price, qty } from "./format";
import type { Row } from "./tables";

export const BOOK_LEVELS_SHOWN = 12;
export const TRADES_SHOWN = 40;
export const GROUP_STEPS = [1, 2, 5, 10, 50, 100, 500, 1000];

interface LevelNodes {
  row: HTMLDivElement;
  price: HTMLSpanElement;
  size: HTMLSpanElement;
  total: HTMLSpanElement;
  bar: HTMLDivElement;
}

function makeLevels(container: HTMLElement, side: "Buy" | "Sell", onPick: (price: string) => void): LevelNodes[] {
  const nodes: LevelNodes[] = [];
  for (let n = 0; n < BOOK_LEVELS_SHOWN; n++) {
    const bar = el("div", { class: "bar" });
    const p = el("span", { class: "p" });
    const s = el("span", { class: "s" });
    const t = el("span", { class: "t" });
    const row = el("div", { class: `level ${side === "Buy" ? "bid" : "ask"}`, tabindex: "-1" }, bar, p, s, t);
    row.addEventListener("click", () => p.textContent && onPick(p.textContent.replace(/,/g, "")));
    nodes.push({ row, price: p, size: s, total: t, bar });
  }
  container.replaceChildren(...nodes.map((n) => n.row));
  // Keyboard: the side is one Tab stop; arrows move between its levels, Enter or Space copies
  // the focused level's price into the order form (as a click does).
  container.tabIndex = 0;
  container.setAttribute("role", "group");
  container.setAttribute("aria-label", `${side === "Buy" ? "Bids" : "Asks"}: arrow keys move, Enter copies the price`);
  container.addEventListener("keydown", (event) => {
    const shown = nodes.filter((n) => n.price.textContent);
    const at = shown.findIndex((n) => n.row === document.activeElement);
    let next = -1;
    if (event.key === "ArrowDown") next = Math.min(shown.length - 1, at + 1);
    else if (event.key === "ArrowUp") next = at <= 0 ? 0 : at - 1;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = shown.length - 1;
    else if ((event.key === "Enter" || event.key === " ") && at >= 0) {
      event.preventDefault();
      onPick((shown[at].price.textContent ?? "").replace(/,/g, ""));
      return;
    } else return;
    event.preventDefault();
    shown[next]?.row.focus();
  });
  return nodes;
}

// Only what changed is written: an unchanged text or width costs the browser nothing.
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}
function setWidth(node: HTMLElement, width: string): void {
  if (node.style.width !== width) node.style.width = width;
}

/** Levels of one side grouped to `step`: bids round down, asks round up (never better). */
export function group(rows: Row[], side: "Buy" | "Sell", step: number, levels: number): [number, number][] {
  const sums = new Map<number, number>();
  for (const row of rows) {
    if (row.side !== side) continue;
    const p = Number(row.price);
    const bucket = side === "Buy" ? Math.floor(p / step + 1e-9) * step : Math.ceil(p / step - 1e-9) * step;
    sums.set(bucket, (sums.get(bucket) ?? 0) + Number(row.size));
  }
  const sorted = [...sums.entries()].sort((a, b) => (side === "Buy" ? b[0] - a[0] : a[0] - b[0]));
  return sorted.slice(0, levels);
}

export function mountBook(app: App, onPickPrice: (price: string) => void): void {
  const groupSelect = document.getElementById("book-group") as HTMLSelectElement;
  const asks = makeLevels(document.getElementById("book-asks")!, "Sell", onPickPrice);
  const bids = makeLevels(document.getElementById("book-bids")!, "Buy", onPickPrice);
  const spread = document.getElementById("book-spread")!;
  const tradesBox = document.getElementById("trades")!;
  const tradeRows: { row: HTMLDivElement; p: HTMLSpanElement; s: HTMLSpanElement; t: HTMLSpanElement }[] = [];
  for (let n = 0; n < TRADES_SHOWN; n++) {
    const p = el("span", { class: "p" });
    const s = el("span", { class: "s" });
    const t = el("span", { class: "t" });
    tradeRows.push({ row: el("div", { class: "trade" }, p, s, t), p, s, t });
  }
  tradesBox.replaceChildren(...tradeRows.map((r) => r.row));

  let bookDirty = false;
  let tradesDirty = false;
  let subscribed = "";
  let step = 0;
  let framePending = false;

  const schedule = () => {
    if (framePending) return;
    framePending = true;
    requestAnimationFrame(() => {
      framePending = false;
      if (bookDirty) renderBook();
      if (tradesDirty) renderTrades();
    });
  };

  function fillSide(nodes: LevelNodes[], levels: [number, number][], tick: number, depthMax: number, reverse: boolean): void {
    let total = 0;
    const totals = levels.map(([, size]) => (total += size));
    for (let n = 0; n < nodes.length; n++) {
      const at = reverse ? nodes.length - 1 - n : n; // asks: best at the bottom, next to the spread
      const node = nodes[at];
      const level = levels[n];
      if (!level) {
        setText(node.price, "");
        setText(node.size, "");
        setText(node.total, "");
        setWidth(node.bar, "0%");
        continue;
      }
      setText(node.price, price(level[0], tick));
      setText(node.size, qty(level[1]));
      setText(node.total, qty(totals[n]));
      setWidth(node.bar, `${depthMax ? Math.min(100, (totals[n] / depthMax) * 100).toFixed(1) : 0}%`);
    }
  }

  function renderBook(): void {
    bookDirty = false;
    const i = app.instrument;
    if (!i) return;
    const rows = app.rt.table("orderBookL2").rows.filter((r) => r.symbol === i.symbol);
    const tick = i.tickSize * (step || 1);
    const bidLevels = group(rows, "Buy", tick, BOOK_LEVELS_SHOWN);
    const askLevels = group(rows, "Sell", tick, BOOK_LEVELS_SHOWN);
    const depth = Math.max(
      bidLevels.reduce((a, [, s]) => a + s, 0),
      askLevels.reduce((a, [, s]) => a + s, 0),
    );
    fillSide(bids, bidLevels, tick, depth, false);
    fillSide(asks, askLevels, tick, depth, true);
    const bestBid = bidLevels[0]?.[0];
    const bestAsk = askLevels[0]?.[0];
    spread.textContent = bestBid !== undefined && bestAsk !== undefined
      ? `Spread ${price(bestAsk - bestBid, i.tickSize)}  ·  Mark ${price(i.markPrice, i.tickSize)}`
      : `Mark ${price(i.markPrice, i.tickSize)}`;
  }

  function renderTrades(): void {
    tradesDirty = false;
    const i = app.instrument;
    if (!i) return;
    const rows = app.rt.table("trade").rows.filter((r) => r.symbol === i.symbol && Number(r.size) > 0);
    for (let n = 0; n < tradeRows.length; n++) {
      const r = rows[rows.length - 1 - n];
      const node = tradeRows[n];
      setText(node.p, r ? price(Number(r.price), i.tickSize) : "");
      setText(node.s, r ? qty(Number(r.size)) : "");
      setText(node.t, r ? clock(String(r.timestamp)) : "");
      const className = r ? `trade ${r.side === "Buy" ? "up" : "down"}` : "trade";
      if (node.row.className !== className) node.row.className = className;
    }
  }

  function fillGroups(): void {
    const i = app.instrument;
    if (!i) return;
    const digits = decimalsOf(i.tickSize);
    groupSelect.replaceChildren(...GROUP_STEPS.map((n) => el("option", { value: String(n) }, (i.tickSize * n).toFixed(Math.max(0, digits - Math.floor(Math.log10(n)))))));
    step = 1;
    groupSelect.value = "1";
  }
  groupSelect.addEventListener("change", () => {
    step = Number(groupSelect.value) || 1;
    bookDirty = true;
    schedule();
  });

  app.onSymbol((symbol) => {
    if (subscribed) app.rt.unsubscribe([`orderBookL2:${subscribed}`, `trade:${subscribed}`]);
    app.rt.table("orderBookL2").clear();
    app.rt.table("trade").clear();
    subscribed = symbol;
    app.rt.subscribe([`orderBookL2:${symbol}`, `trade:${symbol}`]);
    fillGroups();
    bookDirty = tradesDirty = true;
    schedule();
  });
  app.rt.on("orderBookL2", () => {
    bookDirty = true;
    schedule();
  });
  app.rt.on("trade", () => {
    tradesDirty = true;
    schedule();
  });
  app.onInstruments(() => {
    bookDirty = true;
    schedule();
  });
}
