// A bot's status page and a backtest's equity curve (issue 20's "status page of its orders,
// fills, realised and unrealised PnL, fees paid" and "a plot of equity over time").
// Invariants: the figures are the venue's (GET /bot/status, POST /bot/backtest), never computed
// here; prices come in ticks and are shown at the instrument's tick size; money in settlement
// minor units, shown in major units; the equity chart is lightweight-charts (no inline style,
// so the CSP holds) and is removed with its container.
import { LineSeries, ColorType, createChart, type IChartApi, type UTCTimestamp } from "lightweight-charts";
import { currencyInfo, type Instrument } from "./contracts";
import { clock, el, money, price, qty } from "./format";
import type { Row } from "./tables";

export const DETAIL_FILLS_SHOWN_MAX = 50;
const ORD_STATUS: Record<number, string> = { 1: "New", 2: "PartiallyFilled", 3: "Filled", 4: "Canceled", 5: "Rejected", 6: "Expired" };
const sideOf = (side: unknown) => (Number(side) > 0 ? "Buy" : "Sell");
const isoOf = (ns: unknown) => new Date(Number(ns) / 1e6).toISOString();

function grid(id: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

/** The status page of one bot: its figures, exit rules, open orders and recent fills. */
export function botDetail(bot: Row, instrument: Instrument | undefined): HTMLElement {
  const tick = instrument?.tickSize ?? 0.01;
  const currency = instrument?.settlCurrency ?? "";
  const px = (ticks: unknown) => (ticks === null || ticks === undefined ? "-" : price(Number(ticks) * tick, tick));
  const facts: [string, string, string][] = [
    ["State", `${String(bot.state)}${bot.reason ? `: ${String(bot.reason)}` : ""}`, "state"],
    ["Market", `${String(bot.symbol)} (${String(bot.kind)})`, "market"],
    ["Sub-account", String(bot.account), "account"],
    ["Position", qty(Number(bot.position ?? 0)), "position"],
    ["Last price", px(bot.lastPrice), "lastPrice"],
    ["Realised PnL", money(Number(bot.realisedPnl ?? 0), currency), "realisedPnl"],
    ["Unrealised PnL", money(Number(bot.unrealisedPnl ?? 0), currency), "unrealisedPnl"],
    ["Fees paid", money(Number(bot.fees ?? 0), currency), "fees"],
    ["Funding", money(Number(bot.funding ?? 0), currency), "funding"],
    ["PnL (after fees and funding)", money(Number(bot.pnl ?? 0), currency), "pnl"],
    ["Fills", String(bot.fillCount ?? 0), "fillCount"],
  ];
  const exits = (bot.exits ?? {}) as Row;
  const exitText = [
    exits.stop_low_px != null ? `stop at or below ${px(exits.stop_low_px)}` : "",
    exits.stop_high_px != null ? `stop at or above ${px(exits.stop_high_px)}` : "",
    exits.take_profit != null ? `take profit at ${money(Number(exits.take_profit), currency)}` : "",
    exits.end_ns != null ? `end ${isoOf(exits.end_ns).replace("T", " ").slice(0, 19)}` : "",
  ].filter(Boolean).join("; ");
  facts.push(["Exit rules", exitText || "none", "exits"]);
  const orders = ((bot.orders as Row[] | undefined) ?? []).slice().sort((a, b) => Number(b.price ?? 0) - Number(a.price ?? 0));
  const fills = ((bot.fills as Row[] | undefined) ?? []).slice(-DETAIL_FILLS_SHOWN_MAX).reverse();
  return el("section", { class: "card", id: "bot-detail", "aria-labelledby": "h-bot-detail", "data-bot": String(bot.botId) },
    el("h2", { id: "h-bot-detail" }, `Bot ${String(bot.botId)}`),
    el("dl", { class: "spec" }, ...facts.flatMap(([k, v, key]) => [el("dt", {}, k), el("dd", { "data-detail": key }, v)])),
    el("h3", {}, `Open orders (${orders.length})`),
    grid("bot-orders-table", ["Side", "Price", "Quantity", "Filled", "Status", "Order id"], orders.map((o) => el("tr", {},
      el("td", { class: Number(o.side) > 0 ? "up" : "down" }, sideOf(o.side)), el("td", { class: "num" }, px(o.price)),
      el("td", { class: "num" }, qty(Number(o.order_qty))), el("td", { class: "num" }, qty(Number(o.cum_qty))),
      el("td", {}, ORD_STATUS[Number(o.ord_status)] ?? String(o.ord_status)), el("td", { class: "muted" }, String(o.cl_ord_id)))), "No open orders."),
    el("h3", {}, `Recent fills (${fills.length} shown)`),
    grid("bot-fills-table", ["Time", "Side", "Price", "Quantity", "Fee"], fills.map((f) => el("tr", {},
      el("td", {}, clock(isoOf(f.ts_ns))), el("td", { class: Number(f.side) > 0 ? "up" : "down" }, sideOf(f.side)),
      el("td", { class: "num" }, px(f.price)), el("td", { class: "num" }, qty(Number(f.qty))),
      el("td", { class: "num" }, money(Number(f.fee), currency)))), "No fills yet."));
}

/**
 * The backtest's equity over time as a line chart in `container` (equity in settlement minor
 * units, stamped in ns); answers a function that removes the chart. Points in one second are
 * merged (the chart's time resolution), keeping the last.
 */
export function equityChart(container: HTMLElement, points: { timestamp: number; equity: number }[], currency: string): () => void {
  const { scale, major } = currencyInfo(currency);
  const chart: IChartApi = createChart(container, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "#0f141b" }, textColor: "#c5ccd6", attributionLogo: false, fontSize: 11 },
    grid: { vertLines: { color: "#1b2330" }, horzLines: { color: "#1b2330" } },
    rightPriceScale: { borderColor: "#263040" },
    timeScale: { borderColor: "#263040", timeVisible: true, secondsVisible: true },
  });
  const line = chart.addSeries(LineSeries, { color: "#4aa3ff", lineWidth: 2, title: `equity (${major})` });
  const bySecond = new Map<number, number>();
  for (const p of points) bySecond.set(Math.floor(Number(p.timestamp) / 1e9), Number(p.equity) / 10 ** scale);
  line.setData([...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time: time as UTCTimestamp, value })));
  chart.timeScale().fitContent();
  container.dataset.points = String(bySecond.size);
  return () => chart.remove();
}
