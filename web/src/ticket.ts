// Order entry: every BitMEX order type, time in force and execInst; the margin mode (cross or
// isolated) and leverage of the chosen market; a preview of value, cost and estimated
// liquidation price before anything is sent. The venue's answer (or its error message) is shown.
import { ApiError, post } from "./api";
import type { App } from "./app";
import { isSpot, maxLeverage, preview } from "./contracts";
import { decimalsOf, el, money, price } from "./format";

export const ORDER_TYPES: [string, string][] = [
  ["Limit", "Limit"],
  ["Market", "Market"],
  ["StopLimit", "Stop limit"],
  ["Stop", "Stop market"],
  ["LimitIfTouched", "Take profit limit"],
  ["MarketIfTouched", "Take profit market"],
  ["Trailing", "Trailing stop"],
];
export const TIME_IN_FORCE: [string, string][] = [
  ["GoodTillCancel", "Good till cancel"],
  ["ImmediateOrCancel", "Immediate or cancel"],
  ["FillOrKill", "Fill or kill"],
  ["Day", "Day"],
];
export const TRIGGERS: [string, string][] = [["LastPrice", "Last price"], ["MarkPrice", "Mark price"], ["IndexPrice", "Index price"]];

const withPrice = new Set(["Limit", "StopLimit", "LimitIfTouched"]);
const withTrigger = new Set(["StopLimit", "Stop", "LimitIfTouched", "MarketIfTouched"]);

function field(label: string, input: HTMLElement, id: string, hint = ""): HTMLElement {
  input.id = id;
  const wrap = el("div", { class: "field", "data-for": id }, el("label", { for: id }, label), input);
  if (hint) wrap.append(el("span", { class: "hint" }, hint));
  return wrap;
}

function select(options: [string, string][]): HTMLSelectElement {
  const node = el("select");
  for (const [value, label] of options) node.append(el("option", { value }, label));
  return node;
}

export function mountTicket(app: App): { setPrice(value: string): void } {
  const root = document.getElementById("entry")!;
  const modeCross = el("button", { type: "button", "aria-pressed": "true", id: "mode-cross" }, "Cross");
  const modeIsolated = el("button", { type: "button", "aria-pressed": "false", id: "mode-isolated" }, "Isolated");
  const leverage = el("input", { type: "range", min: "1", max: "100", step: "1", value: "10" });
  const leverageOut = el("output", { id: "leverage-value", for: "leverage" }, "Cross");
  const leverageApply = el("button", { type: "button", class: "btn small", id: "leverage-apply" }, "Set");
  const type = select(ORDER_TYPES);
  const quantity = el("input", { type: "number", inputmode: "decimal", min: "0", autocomplete: "off" });
  const limit = el("input", { type: "number", inputmode: "decimal", min: "0", autocomplete: "off" });
  const trigger = el("input", { type: "number", inputmode: "decimal", min: "0", autocomplete: "off" });
  const trail = el("input", { type: "number", inputmode: "decimal", autocomplete: "off" });
  const triggerBy = select(TRIGGERS);
  const tif = select(TIME_IN_FORCE);
  const postOnly = el("input", { type: "checkbox", id: "opt-post" });
  const reduceOnly = el("input", { type: "checkbox", id: "opt-reduce" });
  const closeOnTrigger = el("input", { type: "checkbox", id: "opt-close" });
  const hidden = el("input", { type: "checkbox", id: "opt-hidden" });
  const buy = el("button", { type: "button", class: "btn buy", id: "submit-buy" }, "Buy / Long");
  const sell = el("button", { type: "button", class: "btn sell", id: "submit-sell" }, "Sell / Short");
  const summary = el("dl", { class: "preview", id: "order-preview", "aria-live": "polite" });

  root.append(
    el("div", { class: "panel-head" }, el("h2", {}, "Place order")),
    el("div", { class: "seg full", role: "group", "aria-label": "Margin mode" }, modeCross, modeIsolated),
    el("div", { class: "field leverage" },
      el("label", { for: "leverage" }, "Leverage ", leverageOut),
      el("div", { class: "row" }, leverage, leverageApply)),
    field("Order type", type, "order-type"),
    field("Quantity", quantity, "order-qty"),
    field("Limit price", limit, "order-price"),
    field("Trigger price", trigger, "order-stop"),
    field("Trail offset", trail, "order-trail", "negative for a sell stop below, positive for a buy stop above"),
    field("Trigger by", triggerBy, "order-trigger"),
    field("Time in force", tif, "order-tif"),
    el("div", { class: "checks" },
      el("label", {}, postOnly, " Post-only"),
      el("label", {}, reduceOnly, " Reduce-only"),
      el("label", {}, closeOnTrigger, " Close on trigger"),
      el("label", {}, hidden, " Hidden")),
    summary,
    el("div", { class: "row submit" }, buy, sell),
  );
  leverage.id = "leverage";

  let cross = true;
  const show = (id: string, on: boolean) => {
    (root.querySelector(`[data-for="${id}"]`) as HTMLElement).hidden = !on;
  };

  function position() {
    return app.rt.table("position").rows.find((r) => r.symbol === app.symbol);
  }

  function available(): number {
    const i = app.instrument;
    const margin = app.rt.table("margin").rows.find((r) => r.currency === i?.settlCurrency);
    return Number(margin?.availableMargin ?? 0);
  }

  function layout(): void {
    const t = type.value;
    show("order-price", withPrice.has(t));
    show("order-stop", withTrigger.has(t));
    show("order-trail", t === "Trailing");
    show("order-trigger", withTrigger.has(t) || t === "Trailing");
    show("order-tif", t !== "Market");
    postOnly.disabled = !withPrice.has(t);
    renderPreview();
  }

  function leverageValue(): number {
    return cross ? 0 : Number(leverage.value);
  }

  function renderLeverage(): void {
    modeCross.setAttribute("aria-pressed", String(cross));
    modeIsolated.setAttribute("aria-pressed", String(!cross));
    leverage.disabled = cross;
    leverageOut.textContent = cross ? `Cross (max ${leverage.max}x)` : `${leverage.value}x isolated`;
  }

  let seen = "";
  function syncFromPosition(): void {
    const i = app.instrument;
    if (!i) return;
    leverage.max = String(maxLeverage(i));
    const p = position();
    const now = p ? `${i.symbol}/${p.crossMargin}/${p.leverage}` : i.symbol;
    if (now === seen) return; // only a change of mode or leverage moves the slider
    seen = now;
    if (p) {
      cross = Boolean(p.crossMargin);
      if (!cross && Number(p.leverage) > 0) leverage.value = String(Math.round(Number(p.leverage)));
    }
    renderLeverage();
  }

  function referencePrice(side: "Buy" | "Sell"): number {
    const i = app.instrument;
    if (!i) return 0;
    if (withPrice.has(type.value) && Number(limit.value) > 0) return Number(limit.value);
    if (withTrigger.has(type.value) && Number(trigger.value) > 0) return Number(trigger.value);
    return Number((side === "Buy" ? i.askPrice : i.bidPrice) ?? i.lastPrice ?? 0);
  }

  function renderPreview(): void {
    const i = app.instrument;
    summary.replaceChildren();
    if (!i) return;
    const q = Number(quantity.value);
    const rows: [string, string][] = [];
    for (const side of ["Buy", "Sell"] as const) {
      const p = referencePrice(side);
      const maker = postOnly.checked && withPrice.has(type.value);
      const view = preview(i, side === "Buy" ? q : -q, p, leverageValue(), available(), maker);
      if (!view) continue;
      if (side === "Buy") {
        rows.push(["Order value", money(view.value, i.settlCurrency)]);
        rows.push([maker ? "Fees (maker open, taker close)" : "Fees (open, close)", `${money(view.fee, i.settlCurrency)}, ${money(view.closingFee, i.settlCurrency)}`]);
      }
      if (view.funding) rows.push([`Next funding ${side === "Buy" ? "long" : "short"} pays`, money(view.funding, i.settlCurrency)]);
      rows.push([`Cost ${side === "Buy" ? "long" : "short"}`, money(view.cost, i.settlCurrency)]);
      if (!isSpot(i)) rows.push([`Est. liq. ${side === "Buy" ? "long" : "short"}`, view.liquidation ? price(view.liquidation, i.tickSize) : "none"]);
    }
    rows.push(["Available", money(available(), i.settlCurrency)]);
    for (const [name, value] of rows) summary.append(el("dt", {}, name), el("dd", { "data-preview": name.split(" (")[0].replace(/[^A-Za-z]+/g, "-").toLowerCase() }, value));
  }

  async function submit(side: "Buy" | "Sell"): Promise<void> {
    const i = app.instrument;
    if (!i) return;
    const t = type.value;
    const body: Record<string, unknown> = { symbol: i.symbol, side, orderQty: Number(quantity.value) };
    const execInst: string[] = [];
    if (t === "Trailing") {
      Object.assign(body, { ordType: "Stop", pegPriceType: "TrailingStopPeg", pegOffsetValue: Number(trail.value) });
    } else {
      body.ordType = t;
    }
    if (withPrice.has(t)) body.price = Number(limit.value);
    if (withTrigger.has(t)) body.stopPx = Number(trigger.value);
    if (t !== "Market") body.timeInForce = tif.value;
    if (withTrigger.has(t) || t === "Trailing") execInst.push(triggerBy.value);
    if (postOnly.checked && withPrice.has(t)) execInst.push("ParticipateDoNotInitiate");
    if (reduceOnly.checked) execInst.push("ReduceOnly");
    if (closeOnTrigger.checked) execInst.push("Close");
    if (execInst.length) body.execInst = execInst.join(",");
    if (hidden.checked && withPrice.has(t)) body.displayQty = 0;
    for (const button of [buy, sell]) button.disabled = true;
    try {
      const order = await post<Record<string, unknown>>("/order", body);
      const status = String(order.ordStatus);
      const text = `${side} ${order.orderQty} ${i.symbol} ${String(order.ordType)}${order.price ? ` @ ${order.price}` : ""}: ${status}`;
      app.toast(status === "Rejected" || status === "Canceled" ? `${text}${order.text ? ` (${order.text})` : ""}` : text, status === "Rejected" ? "error" : "info");
    } catch (error) {
      app.toast(error instanceof ApiError ? error.message : String(error));
    } finally {
      for (const button of [buy, sell]) button.disabled = false;
    }
  }

  async function applyLeverage(): Promise<void> {
    const i = app.instrument;
    if (!i) return;
    try {
      const p = await post<Record<string, unknown>>("/position/leverage", { symbol: i.symbol, leverage: leverageValue() });
      app.toast(`${i.symbol}: ${p.crossMargin ? "cross margin" : `${p.leverage}x isolated`}`, "info");
    } catch (error) {
      app.toast(error instanceof ApiError ? error.message : String(error));
    }
  }

  modeCross.addEventListener("click", () => { cross = true; renderLeverage(); renderPreview(); void applyLeverage(); });
  modeIsolated.addEventListener("click", () => { cross = false; renderLeverage(); renderPreview(); void applyLeverage(); });
  leverage.addEventListener("input", () => { renderLeverage(); renderPreview(); });
  leverage.addEventListener("change", () => void applyLeverage());
  leverageApply.addEventListener("click", () => void applyLeverage());
  type.addEventListener("change", layout);
  for (const input of [quantity, limit, trigger, trail]) input.addEventListener("input", renderPreview);
  postOnly.addEventListener("change", renderPreview);
  buy.addEventListener("click", () => void submit("Buy"));
  sell.addEventListener("click", () => void submit("Sell"));

  app.onSymbol(() => {
    const i = app.instrument!;
    quantity.step = String(i.lotSize);
    quantity.value = String(i.lotSize);
    limit.step = trigger.step = trail.step = String(i.tickSize);
    limit.value = i.lastPrice ? i.lastPrice.toFixed(decimalsOf(i.tickSize)) : "";
    trigger.value = "";
    syncFromPosition();
    layout();
  });
  app.rt.on("position", syncFromPosition);
  app.rt.on("margin", renderPreview);
  layout();
  renderLeverage();
  return {
    setPrice(value: string) {
      limit.value = value;
      renderPreview();
    },
  };
}
