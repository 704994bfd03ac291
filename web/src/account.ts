// The trader's own rows, live from the private tables: positions (size, value, entry, mark,
// liquidation and bankruptcy prices, margin, unrealised PnL and ROE, ADL lights, and actions:
// close, add or remove margin, take profit and stop loss), open orders and stops (amend in
// place, cancel) and fills.
import { ApiError, del, get, post, put } from "./api";
import type { App } from "./app";
import { currencyInfo } from "./contracts";
import { clock, el, money, percent, price, qty } from "./format";
import type { Row } from "./tables";

export const FILLS_SHOWN_MAX = 50;
const STOP_TYPES = new Set(["Stop", "StopLimit", "MarketIfTouched", "LimitIfTouched"]);

function table(head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
}

const td = (text: string, cls = "") => el("td", cls ? { class: cls } : {}, text);

/** Five ADL lights from deleveragePercentile (0..1): how near the front of the ADL queue. */
function adlLights(percentile: unknown): HTMLElement {
  const lit = percentile === null || percentile === undefined ? 0 : Math.max(1, Math.ceil(Number(percentile) * 5));
  const box = el("span", { class: "adl", role: "img", title: `ADL rank ${lit} of 5`, "aria-label": `ADL rank ${lit} of 5` });
  for (let n = 1; n <= 5; n++) box.append(el("i", { class: n <= lit ? "on" : "" }));
  return box;
}

export function mountAccount(app: App): void {
  const panels: Record<string, HTMLElement> = {
    positions: document.getElementById("tabpanel-positions")!,
    orders: document.getElementById("tabpanel-orders")!,
    stops: document.getElementById("tabpanel-stops")!,
    fills: document.getElementById("tabpanel-fills")!,
  };
  const tabs = document.querySelectorAll<HTMLButtonElement>("#account-tabs [role=tab]");
  tabs.forEach((tab) => tab.addEventListener("click", () => {
    tabs.forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== tab.dataset.tab;
  }));

  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      app.toast(done, "info");
    } catch (error) {
      app.toast(error instanceof ApiError ? error.message : String(error));
    }
  };

  const tickOf = (symbol: unknown) => app.instruments.get(String(symbol))?.tickSize ?? 0.01;
  let editing = false; // an amend form is open: do not redraw under the trader's hands

  function positionRow(p: Row): HTMLTableRowElement {
    const tick = tickOf(p.symbol);
    const q = Number(p.currentQty);
    const currency = String(p.currency);
    const upnl = Number(p.unrealisedPnl ?? 0);
    const roe = Number(p.unrealisedRoePcnt ?? 0);
    const close = el("button", { type: "button", class: "btn small", "data-action": "close" }, "Close");
    close.addEventListener("click", () => void act(() => post("/order/closePosition", { symbol: p.symbol }), `Closing ${p.symbol}`));
    const marginInput = el("input", { type: "number", class: "tiny", "aria-label": `Margin to add or remove for ${p.symbol} (${currencyInfo(currency).major})`, step: "any", placeholder: "+/- " + currencyInfo(currency).major });
    const marginGo = el("button", { type: "button", class: "btn small", "data-action": "margin" }, "Margin");
    marginGo.addEventListener("click", () => {
      const amount = Math.round(Number(marginInput.value) * 10 ** currencyInfo(currency).scale);
      if (!amount) return;
      void act(() => post("/position/transferMargin", { symbol: p.symbol, amount }), `Margin ${amount > 0 ? "added to" : "removed from"} ${p.symbol}`);
    });
    const tp = el("input", { type: "number", class: "tiny", step: String(tick), "aria-label": `Take profit price for ${p.symbol}`, placeholder: "TP" });
    const sl = el("input", { type: "number", class: "tiny", step: String(tick), "aria-label": `Stop loss price for ${p.symbol}`, placeholder: "SL" });
    const tpsl = el("button", { type: "button", class: "btn small", "data-action": "tpsl" }, "TP/SL");
    tpsl.addEventListener("click", () => {
      const side = q > 0 ? "Sell" : "Buy";
      const orders: Record<string, unknown>[] = [];
      if (Number(tp.value)) orders.push({ symbol: p.symbol, side, ordType: "MarketIfTouched", stopPx: Number(tp.value), execInst: "Close,LastPrice" });
      if (Number(sl.value)) orders.push({ symbol: p.symbol, side, ordType: "Stop", stopPx: Number(sl.value), execInst: "Close,MarkPrice" });
      if (!orders.length) return;
      void act(() => post("/order/bulk", { orders }), `TP/SL set on ${p.symbol}`);
    });
    for (const input of [marginInput, tp, sl]) {
      input.addEventListener("focus", () => (editing = true));
      input.addEventListener("blur", () => (editing = false));
    }
    return el("tr", { "data-symbol": String(p.symbol) },
      td(String(p.symbol)),
      td(qty(q), `num ${q > 0 ? "up" : "down"}`),
      td(money(Math.abs(Number(p.markValue ?? 0)), currency), "num"),
      td(price(Number(p.avgEntryPrice), tick), "num"),
      td(price(Number(p.markPrice), tick), "num"),
      el("td", { class: "num liq", "data-field": "liquidationPrice" }, price(p.liquidationPrice as number, tick)),
      td(price(p.bankruptPrice as number, tick), "num"),
      td(money(Number(p.posMargin ?? p.maintMargin ?? 0), currency), "num"),
      td(p.crossMargin ? "Cross" : `${Number(p.leverage)}x`, "num"),
      td(`${money(upnl, currency)} (${percent(roe)})`, `num ${upnl >= 0 ? "up" : "down"}`),
      el("td", {}, adlLights(p.deleveragePercentile)),
      el("td", { class: "actions" }, close, marginInput, marginGo, tp, sl, tpsl));
  }

  function orderRow(o: Row): HTMLTableRowElement {
    const tick = tickOf(o.symbol);
    const row = el("tr", { "data-order": String(o.orderID) });
    const cancel = el("button", { type: "button", class: "btn small", "data-action": "cancel" }, "Cancel");
    cancel.addEventListener("click", () => void act(() => del("/order", { orderID: o.orderID }), "Order canceled"));
    const amend = el("button", { type: "button", class: "btn small", "data-action": "amend" }, "Amend");
    amend.addEventListener("click", () => {
      editing = true;
      const qtyInput = el("input", { type: "number", class: "tiny", value: String(o.orderQty), "aria-label": "New quantity", "data-amend": "qty" });
      const priceInput = el("input", { type: "number", class: "tiny", step: String(tick), value: String(o.price ?? o.stopPx ?? ""), "aria-label": STOP_TYPES.has(String(o.ordType)) && o.price === null ? "New trigger price" : "New price", "data-amend": "price" });
      const save = el("button", { type: "button", class: "btn small primary", "data-action": "save" }, "Save");
      const cancelEdit = el("button", { type: "button", class: "btn small" }, "Back");
      save.addEventListener("click", () => {
        const body: Record<string, unknown> = { orderID: o.orderID, orderQty: Number(qtyInput.value) };
        if (o.price !== null && o.price !== undefined) body.price = Number(priceInput.value);
        else body.stopPx = Number(priceInput.value);
        editing = false;
        void act(() => put("/order", body), "Order amended");
      });
      cancelEdit.addEventListener("click", () => {
        editing = false;
        render();
      });
      row.lastElementChild!.replaceChildren(qtyInput, priceInput, save, cancelEdit);
      priceInput.focus();
    });
    row.append(
      td(String(o.symbol)),
      td(String(o.side), o.side === "Buy" ? "up" : "down"),
      td(String(o.ordType)),
      td(qty(Number(o.orderQty)), "num"),
      td(o.price !== null && o.price !== undefined ? price(Number(o.price), tick) : "Market", "num"),
      td(o.stopPx ? price(Number(o.stopPx), tick) : "-", "num"),
      td(qty(Number(o.cumQty ?? 0)), "num"),
      td(qty(Number(o.leavesQty ?? 0)), "num"),
      td(String(o.timeInForce ?? "")),
      td(String(o.execInst ?? "")),
      td(String(o.ordStatus)),
      td(clock(String(o.timestamp))),
      el("td", { class: "actions" }, amend, cancel));
    return row;
  }

  function render(): void {
    if (editing) return;
    const positions = app.rt.table("position").rows.filter((p) => Number(p.currentQty) !== 0);
    panels.positions.replaceChildren(table(
      ["Symbol", "Size", "Value", "Entry", "Mark", "Liq. price", "Bankrupt", "Margin", "Leverage", "Unrealised PnL (ROE)", "ADL", ""],
      positions.map(positionRow), app.rt.authenticated ? "No open positions." : "Sign in or load an API key to see your positions."));
    const orders = app.rt.table("order").rows.filter((o) => Number(o.leavesQty) > 0);
    const resting = orders.filter((o) => !STOP_TYPES.has(String(o.ordType)) || o.triggered);
    const stops = orders.filter((o) => STOP_TYPES.has(String(o.ordType)) && !o.triggered);
    const head = ["Symbol", "Side", "Type", "Qty", "Price", "Trigger", "Filled", "Remaining", "TIF", "Exec", "Status", "Time", ""];
    panels.orders.replaceChildren(table(head, resting.map(orderRow), "No open orders."));
    panels.stops.replaceChildren(table(head, stops.map(orderRow), "No stop orders."));
    document.getElementById("n-positions")!.textContent = String(positions.length);
    document.getElementById("n-orders")!.textContent = String(resting.length);
    document.getElementById("n-stops")!.textContent = String(stops.length);
    const fills = app.rt.table("execution").rows.filter((e) => e.execType === "Trade").slice(-FILLS_SHOWN_MAX).reverse();
    panels.fills.replaceChildren(table(["Symbol", "Side", "Qty", "Price", "Fee", "Liquidity", "Order type", "Time"],
      fills.map((f) => el("tr", {},
        td(String(f.symbol)), td(String(f.side), f.side === "Buy" ? "up" : "down"),
        td(qty(Number(f.lastQty)), "num"), td(price(Number(f.lastPx), tickOf(f.symbol)), "num"),
        td(money(Number(f.execComm ?? 0), String(f.settlCurrency ?? f.currency ?? "")), "num"),
        td(f.lastLiquidityInd === "AddedLiquidity" ? "Maker" : "Taker"),
        td(String(f.ordType)), td(clock(String(f.transactTime ?? f.timestamp))))), "No fills yet."));
  }

  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  };
  for (const name of ["position", "order", "execution"]) app.rt.on(name, schedule);
  app.rt.onState(schedule);
  // Fills made before this page opened: the execution partial holds only the latest.
  app.rt.on("execution", (_t, message) => {
    if (message.action !== "partial" || message.data.length) return;
    void get<Row[]>("/execution/tradeHistory", { count: FILLS_SHOWN_MAX, reverse: true }, true)
      .then((rows) => {
        const tableRows = app.rt.table("execution");
        tableRows.apply({ table: "execution", action: "insert", data: rows.reverse() });
        schedule();
      })
      .catch(() => undefined);
  });
  render();
}
