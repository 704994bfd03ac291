// The public Stats page: insurance fund balance over time (chart per currency), funding
// history, live liquidations, and the contract specification of a market. Public data only.
import { ColorType, LineSeries, createChart, type IChartApi, type UTCTimestamp } from "lightweight-charts";
import { ApiError, get } from "./api";
import type { App } from "./app";
import { currencyInfo, isPerpetual, isSpot, maxLeverage } from "./contracts";
import { clock, el, money, percent, price, qty } from "./format";
import type { Row } from "./tables";

export const INSURANCE_POINTS_MAX = 500;
export const FUNDING_ROWS_MAX = 100;
export const LIQUIDATIONS_SHOWN_MAX = 50;

const unsigned = (value: number, digits = 2) => `${(value * 100).toFixed(digits)}%`;
const COLORS = ["#f0b90b", "#2ebd85", "#5eb1ff", "#f48fb1"];

export function mountStats(app: App): { show(): void } {
  const root = document.getElementById("stats-body")!;
  const insuranceBox = el("div", { class: "mini-chart", id: "insurance-chart", role: "img", "aria-label": "Insurance fund balance over time" });
  const insuranceNow = el("p", { class: "muted", id: "insurance-now" });
  const fundingSymbol = el("select", { id: "funding-symbol" });
  const fundingBox = el("div", { id: "funding-history" });
  const liquidationsBox = el("div", { id: "liquidations" });
  const specSymbol = el("select", { id: "spec-symbol" });
  const specBox = el("dl", { class: "spec", id: "contract-spec" });
  const field = (text: string, input: HTMLElement) => el("label", { class: "inline", for: input.id }, text, input);
  root.append(
    el("div", { class: "columns" },
      el("section", { class: "card", "aria-labelledby": "h-insurance" }, el("h2", { id: "h-insurance" }, "Insurance fund"), insuranceNow, insuranceBox),
      el("section", { class: "card", "aria-labelledby": "h-spec" },
        el("div", { class: "panel-head" }, el("h2", { id: "h-spec" }, "Contract specification"), field("Market", specSymbol)), specBox)),
    el("div", { class: "columns" },
      el("section", { class: "card", "aria-labelledby": "h-funding" },
        el("div", { class: "panel-head" }, el("h2", { id: "h-funding" }, "Funding history"), field("Market", fundingSymbol)), fundingBox),
      el("section", { class: "card", "aria-labelledby": "h-liquidations" }, el("h2", { id: "h-liquidations" }, "Liquidations (live)"), liquidationsBox)),
  );

  let chart: IChartApi | null = null;

  async function loadInsurance(): Promise<void> {
    let rows: Row[] = [];
    try {
      rows = await get<Row[]>("/insurance", { count: INSURANCE_POINTS_MAX, reverse: true }, false);
    } catch (error) {
      insuranceNow.textContent = error instanceof ApiError ? error.message : String(error);
      return;
    }
    if (!chart) {
      chart = createChart(insuranceBox, {
        autoSize: true,
        layout: { background: { type: ColorType.Solid, color: "#151c25" }, textColor: "#c5ccd6", attributionLogo: false, fontSize: 11 },
        grid: { vertLines: { color: "#1f2833" }, horzLines: { color: "#1f2833" } },
        timeScale: { timeVisible: true, borderColor: "#263040" },
        rightPriceScale: { borderColor: "#263040" },
      });
    }
    const byCurrency = new Map<string, { time: UTCTimestamp; value: number }[]>();
    for (const r of rows) {
      const c = String(r.currency);
      const points = byCurrency.get(c) ?? [];
      points.push({ time: Math.floor(new Date(String(r.timestamp)).getTime() / 1000) as UTCTimestamp, value: Number(r.walletBalance) / 10 ** currencyInfo(c).scale });
      byCurrency.set(c, points);
    }
    const latest: string[] = [];
    let n = 0;
    for (const [c, points] of byCurrency) {
      // each currency on its own scale (XBT and USDT balances differ by orders of magnitude)
      const series = chart.addSeries(LineSeries, { color: COLORS[n % COLORS.length], lineWidth: 2, title: currencyInfo(c).major, priceScaleId: n === 0 ? "right" : "left" });
      if (n === 1) chart.applyOptions({ leftPriceScale: { visible: true, borderColor: "#263040" } });
      n += 1;
      const sorted = points.sort((a, b) => a.time - b.time).filter((p, i, all) => i === 0 || p.time !== all[i - 1].time);
      series.setData(sorted);
      latest.push(`${sorted[sorted.length - 1].value.toLocaleString("en-US", { maximumFractionDigits: 4 })} ${currencyInfo(c).major}`);
    }
    insuranceBox.dataset.points = String(rows.length);
    insuranceNow.textContent = latest.length ? `Now: ${latest.join(" · ")}` : "The insurance fund has no history yet.";
    chart.timeScale().fitContent();
  }

  async function loadFunding(): Promise<void> {
    try {
      const rows = await get<Row[]>("/funding", { symbol: fundingSymbol.value, count: FUNDING_ROWS_MAX, reverse: true }, false);
      fundingBox.replaceChildren(rows.length ? el("table", { class: "grid" },
        el("thead", {}, el("tr", {}, ...["Time", "Symbol", "Interval", "Rate", "Daily rate"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows.map((r) => el("tr", {},
          el("td", {}, String(r.timestamp).replace("T", " ").slice(0, 16)),
          el("td", {}, String(r.symbol)),
          el("td", {}, String(r.fundingInterval ?? "").slice(11, 16)),
          el("td", { class: `num ${Number(r.fundingRate) >= 0 ? "up" : "down"}` }, percent(Number(r.fundingRate), 4)),
          el("td", { class: "num" }, percent(Number(r.fundingRateDaily), 4)))))) : el("p", { class: "empty" }, "No funding has been exchanged yet."));
    } catch (error) {
      fundingBox.replaceChildren(el("p", { class: "empty" }, error instanceof ApiError ? error.message : String(error)));
    }
  }

  function renderLiquidations(): void {
    const rows = app.rt.table("liquidation").rows.slice(-LIQUIDATIONS_SHOWN_MAX).reverse();
    liquidationsBox.replaceChildren(rows.length ? el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ...["Symbol", "Side", "Price", "Remaining"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {},
        el("td", {}, String(r.symbol)),
        el("td", { class: r.side === "Buy" ? "up" : "down" }, String(r.side)),
        el("td", { class: "num" }, price(Number(r.price), app.instruments.get(String(r.symbol))?.tickSize ?? 0.01)),
        el("td", { class: "num" }, qty(Number(r.leavesQty))))))) : el("p", { class: "empty" }, "No liquidation in progress."));
  }

  function renderSpec(): void {
    const i = app.instruments.get(specSymbol.value);
    if (!i) return;
    const settle = currencyInfo(i.settlCurrency).major || i.settlCurrency || "";
    const facts: [string, string][] = [
      ["Type", isSpot(i) ? "Spot" : isPerpetual(i) ? "Perpetual swap" : "Future"],
      ["Contract", i.isInverse ? "Inverse" : i.isQuanto ? "Quanto" : "Linear"],
      ["Underlying / quote", `${i.underlying ?? i.rootSymbol ?? ""} / ${i.quoteCurrency ?? ""}`],
      ["Settled in", settle],
      ["Index", i.referenceSymbol ?? "-"],
      ["Tick size", String(i.tickSize)],
      ["Lot size", qty(i.lotSize)],
      ["Multiplier", String(i.multiplier)],
      ["Max order quantity", qty(i.maxOrderQty)],
      ["Initial margin", unsigned(i.initMargin)],
      ["Maintenance margin", unsigned(i.maintMargin)],
      ["Max leverage", isSpot(i) ? "1x" : `${maxLeverage(i)}x`],
      ["Maker / taker fee", `${unsigned(i.makerFee ?? 0, 3)} / ${unsigned(i.takerFee ?? 0, 3)}`],
      ["Funding", isPerpetual(i) ? `${percent(i.fundingRate, 4)}, next ${clock(i.fundingTimestamp ?? undefined)} UTC` : "-"],
      ["Expiry", i.expiry ? String(i.expiry).replace("T", " ").slice(0, 16) : "-"],
      ["Open interest", qty(i.openInterest)],
      ["24h turnover", money(i.turnover24h, i.settlCurrency)],
    ];
    specBox.replaceChildren(...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  fundingSymbol.addEventListener("change", () => void loadFunding());
  specSymbol.addEventListener("change", renderSpec);
  app.rt.on("liquidation", () => {
    if (!document.getElementById("page-stats")!.hidden) renderLiquidations();
  });
  app.rt.subscribe(["liquidation"]);

  return {
    show() {
      const markets = app.markets();
      if (!specSymbol.options.length) {
        specSymbol.replaceChildren(...markets.map((i) => el("option", { value: i.symbol }, i.symbol)));
        fundingSymbol.replaceChildren(...markets.filter(isPerpetual).map((i) => el("option", { value: i.symbol }, i.symbol)));
        specSymbol.value = fundingSymbol.value = app.symbol || markets[0]?.symbol || "";
      }
      renderSpec();
      renderLiquidations();
      void loadInsurance();
      void loadFunding();
    },
  };
}
