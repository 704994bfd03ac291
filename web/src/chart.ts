// The candlestick chart: history from /trade/bucketed (1m, 5m, 1h, 1d), kept live from
// tradeBin{bin} and every trade; volume below; mark and index price lines; the chosen market's
// position (entry, liquidation) and open orders as lines, and an order line can be dragged to
// a new price, which amends the order (PUT /order) when released.
// Bucketed rows are stamped with their bin's end (BitMEX); candles are drawn at their start.
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineStyle,
  createChart,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import { ApiError, get, put } from "./api";
import type { App } from "./app";
import type { Row } from "./tables";

export const CANDLES_LOADED_MAX = 750;
export const BIN_SECONDS: Record<string, number> = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
export const DRAG_PICK_PX = 6; // how close to an order line a press must be to grab it

const UP = "#26a69a";
const DOWN = "#ef5350";

interface Candle {
  time: UTCTimestamp;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

interface OrderLine {
  line: IPriceLine;
  orderID: string;
  price: number; // the order's price at the venue (the price scale keeps it in view)
  target: number; // where a drag has moved the line (sent as the amend on release)
}

export function mountChart(app: App): void {
  const container = document.getElementById("chart")!;
  const chart: IChartApi = createChart(container, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "#0f141b" }, textColor: "#c5ccd6", attributionLogo: false, fontSize: 11 },
    grid: { vertLines: { color: "#1b2330" }, horzLines: { color: "#1b2330" } },
    crosshair: { mode: CrosshairMode.Normal },
    rightPriceScale: { borderColor: "#263040" },
    timeScale: { borderColor: "#263040", timeVisible: true, secondsVisible: false },
  });
  let orderLines: OrderLine[] = [];
  let fitOrders = false;
  const candles: ISeriesApi<"Candlestick"> = chart.addSeries(CandlestickSeries, {
    upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    // "Fit orders" on: the price scale also spans the trader's open orders (to see and drag them)
    autoscaleInfoProvider: (original: () => { priceRange: { minValue: number; maxValue: number } } | null) => {
      const result = original();
      if (!result || !fitOrders || !orderLines.length) return result;
      const prices = orderLines.map((o) => o.price);
      const { minValue, maxValue } = result.priceRange;
      return { ...result, priceRange: { minValue: Math.min(minValue, ...prices), maxValue: Math.max(maxValue, ...prices) } };
    },
  });
  const volume: ISeriesApi<"Histogram"> = chart.addSeries(HistogramSeries, {
    priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false,
  });
  chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });

  const markLine = candles.createPriceLine({ price: 0, color: "#f0b90b", lineWidth: 1, lineStyle: LineStyle.Dotted, title: "Mark", axisLabelVisible: true, lineVisible: false });
  const indexLine = candles.createPriceLine({ price: 0, color: "#8a94a6", lineWidth: 1, lineStyle: LineStyle.Dotted, title: "Index", axisLabelVisible: true, lineVisible: false });
  let entryLine: IPriceLine | null = null;
  let liqLine: IPriceLine | null = null;

  let bin = "1m";
  let symbol = "";
  let last: Candle | null = null;
  let loadToken = 0;
  let subscribedBin = "";

  const startOf = (ms: number) => (Math.floor(ms / 1000 / BIN_SECONDS[bin]) * BIN_SECONDS[bin]) as UTCTimestamp;

  function draw(candle: Candle): void {
    if (last && candle.time < last.time) return; // late bin for an older candle: history is fixed
    last = candle;
    candles.update(candle);
    volume.update({ time: candle.time, value: candle.volume, color: candle.close >= candle.open ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)" });
  }

  async function load(): Promise<void> {
    const token = ++loadToken;
    const i = app.instrument;
    if (!i) return;
    last = null;
    let rows: Row[] = [];
    try {
      rows = await get<Row[]>("/trade/bucketed", { binSize: bin, symbol: i.symbol, count: CANDLES_LOADED_MAX, reverse: true, partial: true });
    } catch (error) {
      if (error instanceof ApiError) app.toast(`Chart: ${error.message}`);
    }
    if (token !== loadToken) return;
    const seconds = BIN_SECONDS[bin];
    const data: Candle[] = rows
      .filter((r) => r.open !== null && r.open !== undefined)
      .map((r) => ({
        time: (Math.floor(new Date(String(r.timestamp)).getTime() / 1000) - seconds) as UTCTimestamp,
        open: Number(r.open), high: Number(r.high), low: Number(r.low), close: Number(r.close), volume: Number(r.volume),
      }))
      .sort((a, b) => a.time - b.time)
      .filter((c, n, all) => n === 0 || c.time !== all[n - 1].time);
    candles.setData(data);
    volume.setData(data.map((c) => ({ time: c.time, value: c.volume, color: c.close >= c.open ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)" })));
    last = data.length ? data[data.length - 1] : null;
    candles.applyOptions({ priceFormat: { type: "price", precision: Math.max(0, Math.round(-Math.log10(i.tickSize))), minMove: i.tickSize } });
    container.dataset.candles = String(data.length);
    chart.timeScale().scrollToRealTime();
  }

  function resubscribe(): void {
    if (subscribedBin) app.rt.unsubscribe([subscribedBin]);
    subscribedBin = `tradeBin${bin}:${symbol}`;
    app.rt.subscribe([subscribedBin]);
  }

  app.rt.on(`trade`, (_table, message) => {
    if (message.action === "partial") return;
    for (const r of message.data) {
      if (r.symbol !== symbol || !(Number(r.size) > 0)) continue;
      const p = Number(r.price);
      const time = startOf(new Date(String(r.timestamp)).getTime());
      if (last && time === last.time) {
        draw({ ...last, high: Math.max(last.high, p), low: Math.min(last.low, p), close: p, volume: last.volume + Number(r.size) });
      } else if (!last || time > last.time) {
        draw({ time, open: p, high: p, low: p, close: p, volume: Number(r.size) });
      }
    }
    container.dataset.live = String(Number(container.dataset.live ?? 0) + 1);
  });
  for (const size of Object.keys(BIN_SECONDS)) {
    app.rt.on(`tradeBin${size}`, (_table, message) => {
      if (size !== bin || message.action === "partial") return;
      for (const r of message.data) {
        if (r.symbol !== symbol || r.open === null || r.open === undefined) continue;
        const time = (Math.floor(new Date(String(r.timestamp)).getTime() / 1000) - BIN_SECONDS[bin]) as UTCTimestamp;
        draw({ time, open: Number(r.open), high: Number(r.high), low: Number(r.low), close: Number(r.close), volume: Number(r.volume) });
      }
    });
  }

  function renderLines(): void {
    const i = app.instrument;
    if (!i) return;
    const index = i.referenceSymbol ? app.instruments.get(i.referenceSymbol) : undefined;
    markLine.applyOptions({ price: i.markPrice ?? 0, axisLabelVisible: !!i.markPrice });
    indexLine.applyOptions({ price: index?.lastPrice ?? 0, axisLabelVisible: !!index?.lastPrice });
    container.dataset.mark = String(i.markPrice ?? ""); // what the lines show, for tests and tools
    container.dataset.index = String(index?.lastPrice ?? "");
  }

  function renderPosition(): void {
    const position = app.rt.table("position").rows.find((r) => r.symbol === symbol && Number(r.currentQty) !== 0);
    if (entryLine) candles.removePriceLine(entryLine);
    if (liqLine) candles.removePriceLine(liqLine);
    entryLine = liqLine = null;
    if (!position) return;
    const qtyNow = Number(position.currentQty);
    entryLine = candles.createPriceLine({ price: Number(position.avgEntryPrice), color: qtyNow > 0 ? UP : DOWN, lineWidth: 1, lineStyle: LineStyle.Solid, title: `Entry ${qtyNow}` });
    if (position.liquidationPrice) {
      liqLine = candles.createPriceLine({ price: Number(position.liquidationPrice), color: "#ff9800", lineWidth: 1, lineStyle: LineStyle.LargeDashed, title: "Liq." });
    }
  }

  /** Where each order line is (pixels from the chart's top), for keyboardless automation. */
  function publishOrderLines(): void {
    container.dataset.orderLines = JSON.stringify(orderLines.map((o) => ({ orderID: o.orderID, price: o.price, y: candles.priceToCoordinate(o.price) })));
  }

  function renderOrders(): void {
    if (dragging) return;
    for (const o of orderLines) candles.removePriceLine(o.line);
    orderLines = app.rt.table("order").rows
      .filter((r) => r.symbol === symbol && r.price !== null && r.price !== undefined && Number(r.leavesQty) > 0)
      .map((r) => ({
        orderID: String(r.orderID),
        price: Number(r.price),
        target: Number(r.price),
        line: candles.createPriceLine({ price: Number(r.price), color: r.side === "Buy" ? "#4fc3f7" : "#f48fb1", lineWidth: 1, lineStyle: LineStyle.Dashed, title: `${r.side} ${r.leavesQty}` }),
      }));
    requestAnimationFrame(publishOrderLines);
  }

  // Drag an order line to amend its price.
  let dragging: OrderLine | null = null;
  const yOf = (event: PointerEvent) => event.clientY - container.getBoundingClientRect().top;
  container.addEventListener("pointermove", () => {
    if (!dragging) publishOrderLines();
  });
  container.addEventListener("pointerdown", (event) => {
    const y = yOf(event);
    const hit = orderLines.find((o) => {
      const at = candles.priceToCoordinate(o.price);
      return at !== null && Math.abs(at - y) <= DRAG_PICK_PX;
    });
    if (!hit) return;
    dragging = hit;
    chart.applyOptions({ handleScroll: false, handleScale: false });
    container.setPointerCapture(event.pointerId);
    event.preventDefault();
    event.stopPropagation();
  }, { capture: true });
  container.addEventListener("pointermove", (event) => {
    if (!dragging) return;
    const p = candles.coordinateToPrice(yOf(event));
    const i = app.instrument;
    if (p === null || !i) return;
    dragging.target = Math.round(Number(p) / i.tickSize) * i.tickSize;
    dragging.line.applyOptions({ price: dragging.target });
  });
  const release = async () => {
    const drop = dragging;
    if (!drop) return;
    dragging = null;
    chart.applyOptions({ handleScroll: true, handleScale: true });
    const i = app.instrument;
    const digits = i ? Math.max(0, Math.round(-Math.log10(i.tickSize))) : 8;
    try {
      if (drop.target !== drop.price) {
        await put("/order", { orderID: drop.orderID, price: Number(drop.target.toFixed(digits)) });
        app.toast(`Order moved to ${drop.target.toFixed(digits)}`, "info");
      }
    } catch (error) {
      app.toast(error instanceof Error ? error.message : String(error));
    }
    renderOrders();
  };
  container.addEventListener("pointerup", () => void release());
  container.addEventListener("pointercancel", () => void release());

  const fit = document.getElementById("fit-orders") as HTMLButtonElement;
  fit.addEventListener("click", () => {
    fitOrders = !fitOrders;
    fit.setAttribute("aria-pressed", String(fitOrders));
    candles.priceScale().applyOptions({ autoScale: true });
    requestAnimationFrame(publishOrderLines);
  });

  const buttons = document.querySelectorAll<HTMLButtonElement>("#intervals button");
  buttons.forEach((button) => button.addEventListener("click", () => {
    bin = button.dataset.bin ?? "1m";
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    resubscribe();
    void load();
  }));

  app.onSymbol((next) => {
    symbol = next;
    resubscribe();
    void load();
    renderLines();
    renderPosition();
    renderOrders();
  });
  app.onInstruments(renderLines);
  app.rt.on("position", renderPosition);
  app.rt.on("order", renderOrders);
  app.rt.onState((state) => {
    if (state === "live" && symbol) void load(); // candles missed while the socket was down
  });
}
