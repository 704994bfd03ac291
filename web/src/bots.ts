// The Bots page (docs/bots-and-copy-trading.md): start a spot grid, futures grid or DCA bot
// (each runs in a sub-account of its own, funded by the investment), try the same parameters
// on the venue's recorded trades first (POST /bot/backtest), and watch and stop the bots
// (GET /bot, live from the private `bot` table; DELETE /bot, optionally closing the position);
// a bot's status page (GET /bot/status: orders, fills, PnL, fees) and the backtest's equity
// curve (botview.ts).
// Invariants: the venue validates every parameter (a 400 with the rule, nothing changed), so
// the form sends what the trader typed, prices and amounts as decimal text in major units;
// only the fields of the chosen kind are sent.
import { ApiError, del, get, post } from "./api";
import type { App } from "./app";
import { botDetail, equityChart } from "./botview";
import { el, money, qty } from "./format";
import type { Row } from "./tables";

export const BACKTEST_WINDOW_MS = 60 * 60 * 1000; // the venue's own trades of the last hour

type Field = [name: string, label: string, kinds: string, value: string, options?: [string, string][]];
// kinds: g = both grids, s = spot grid only, f = futures grid only, d = DCA, a = all
const FIELDS: Field[] = [
  ["lowerPrice", "Lower price", "g", ""],
  ["upperPrice", "Upper price", "g", ""],
  ["grids", "Grids (intervals, 2-200)", "g", "10"],
  ["spacing", "Spacing", "g", "arithmetic", [["arithmetic", "Arithmetic (equal steps)"], ["geometric", "Geometric (equal ratios)"]]],
  ["direction", "Direction", "f", "neutral", [["neutral", "Neutral"], ["long", "Long"], ["short", "Short"]]],
  ["leverage", "Leverage", "fd", "2"],
  ["side", "Side", "d", "Buy", [["Buy", "Buy"], ["Sell", "Sell"]]],
  ["trigger", "Trigger", "d", "price", [["price", "Price deviation"], ["interval", "Time interval"]]],
  ["baseQty", "Base order quantity", "d", ""],
  ["safetyQty", "Safety order quantity", "d", ""],
  ["maxSafetyOrders", "Safety orders (max)", "d", "3"],
  ["priceStep", "Price step (%)", "d", "1"],
  ["stepScale", "Step scale (%)", "d", "100"],
  ["volumeScale", "Volume scale (%)", "d", "100"],
  ["takeProfit", "Take profit (%)", "d", "1"],
  ["interval", "Interval (s, time trigger)", "d", "3600"],
  ["investment", "Investment (settlement currency)", "a", ""],
  ["stopLowPrice", "Stop if last price at or below (optional)", "a", ""],
  ["stopHighPrice", "Stop if last price at or above (optional)", "a", ""],
  ["takeProfitPnl", "Stop at total PnL (optional)", "a", ""],
];
const KIND_CODE: Record<string, string> = { spotGrid: "s", futuresGrid: "f", dca: "d" };

const message = (error: unknown) => (error instanceof ApiError || error instanceof Error ? error.message : String(error));

export function mountBots(app: App): { show(): void } {
  const root = document.getElementById("bots-body")!;
  const kind = el("select", { id: "bot-kind" });
  for (const [value, label] of [["futuresGrid", "Futures grid"], ["spotGrid", "Spot grid"], ["dca", "DCA"]]) kind.append(el("option", { value }, label));
  const symbol = el("select", { id: "bot-symbol" });
  const inputs: Record<string, HTMLInputElement | HTMLSelectElement> = {};
  const fields = el("div", { class: "bot-fields" });
  for (const [name, label, , value, options] of FIELDS) {
    const id = `bot-${name}`;
    let input: HTMLInputElement | HTMLSelectElement;
    if (options) {
      input = el("select", { id });
      for (const [v, l] of options) input.append(el("option", { value: v }, l));
    } else {
      input = el("input", { id, inputmode: "decimal", autocomplete: "off" });
    }
    input.value = value;
    inputs[name] = input;
    fields.append(el("div", { class: "field", "data-field": name }, el("label", { for: id }, label), input));
  }
  const backtest = el("button", { type: "button", class: "btn", id: "bot-backtest" }, "Backtest (last hour)");
  const start = el("button", { type: "button", class: "btn primary", id: "bot-start" }, "Start bot");
  const out = el("div", { id: "bot-out", "aria-live": "polite" });
  const list = el("div", { id: "bots-list" });
  const detail = el("div", { id: "bot-detail-box" });
  let shownBot: number | null = null;
  let removeEquity: (() => void) | null = null;
  root.append(
    el("section", { class: "card", "aria-labelledby": "h-new-bot" },
      el("h2", { id: "h-new-bot" }, "New bot"),
      el("p", { class: "muted" }, "A bot trades in a sub-account of its own, funded with its investment from your available balance; every venue rule applies to its orders. Grids place resting limit orders between the two prices; DCA buys (or sells) in steps and takes profit over the average entry."),
      el("div", { class: "bot-fields" },
        el("div", { class: "field" }, el("label", { for: "bot-kind" }, "Kind"), kind),
        el("div", { class: "field" }, el("label", { for: "bot-symbol" }, "Market"), symbol)),
      fields, el("div", { class: "row" }, backtest, start), out),
    el("h2", {}, "Your bots"), list, detail);

  function settlement(s: string): string {
    return app.instruments.get(s)?.settlCurrency ?? "";
  }

  function layout(): void {
    const code = KIND_CODE[kind.value];
    for (const [name, , kinds] of FIELDS) {
      const on = kinds.includes("a") || kinds.includes(code) || (kinds.includes("g") && code !== "d");
      (fields.querySelector(`[data-field="${name}"]`) as HTMLElement).hidden = !on;
    }
    const spot = kind.value === "spotGrid";
    const markets = app.markets().filter((i) => (kind.value === "dca" ? true : spot === i.typ.startsWith("I")));
    const chosen = symbol.value;
    symbol.replaceChildren(...markets.map((i) => el("option", { value: i.symbol }, i.symbol)));
    if (markets.some((i) => i.symbol === chosen)) symbol.value = chosen;
  }

  function params(): Record<string, string> {
    const code = KIND_CODE[kind.value];
    const body: Record<string, string> = { kind: kind.value, symbol: symbol.value };
    for (const [name, , kinds] of FIELDS) {
      const on = kinds.includes("a") || kinds.includes(code) || (kinds.includes("g") && code !== "d");
      const value = inputs[name].value.trim();
      if (on && value !== "") body[name] = value;
    }
    return body;
  }

  start.addEventListener("click", async () => {
    out.replaceChildren();
    try {
      const bot = await post<Row>("/bot", params());
      out.replaceChildren(el("p", { class: "up" }, `Bot ${String(bot.botId)} started on ${String(bot.symbol)} (${String(bot.state)}).`));
      await load();
    } catch (error) {
      out.replaceChildren(el("p", { class: "down" }, message(error)));
    }
  });
  backtest.addEventListener("click", async () => {
    out.replaceChildren(el("p", { class: "muted" }, "Backtesting…"));
    try {
      const now = Date.now();
      const result = await post<Row>("/bot/backtest", { ...params(), startTime: new Date(now - BACKTEST_WINDOW_MS).toISOString(), endTime: new Date(now).toISOString() });
      const status = (result.status ?? result) as Row;
      const currency = settlement(symbol.value);
      const fills = (result.fills as unknown[] | undefined)?.length ?? Number(status.fillCount ?? 0);
      const plot = el("div", { class: "equity-chart", id: "backtest-equity", role: "img", "aria-label": "Equity over the backtest" });
      removeEquity?.();
      out.replaceChildren(el("dl", { class: "spec", id: "backtest-result" },
        el("dt", {}, "Trades replayed"), el("dd", {}, String(result.trades ?? "")),
        el("dt", {}, "Fills"), el("dd", {}, String(fills)),
        el("dt", {}, "Position"), el("dd", {}, qty(Number(status.position ?? 0))),
        el("dt", {}, "Realised / unrealised"), el("dd", {}, `${money(Number(status.realisedPnl ?? 0), currency)} / ${money(Number(status.unrealisedPnl ?? 0), currency)}`),
        el("dt", {}, "PnL (after fees and funding)"), el("dd", { "data-backtest": "pnl" }, money(Number(status.pnl ?? 0), currency)),
        el("dt", {}, "Fees"), el("dd", {}, money(Number(status.fees ?? 0), currency)),
        el("dt", {}, "Final equity"), el("dd", { "data-backtest": "equity" }, money(Number(status.equity ?? 0), currency))),
        el("h3", {}, "Equity over time"), plot);
      removeEquity = equityChart(plot, (result.equity as { timestamp: number; equity: number }[] | undefined) ?? [], currency);
    } catch (error) {
      out.replaceChildren(el("p", { class: "down" }, message(error)));
    }
  });
  kind.addEventListener("change", layout);
  app.onInstruments(() => {
    if (!symbol.options.length) layout();
  });

  function render(rows: Row[]): void {
    list.replaceChildren(rows.length ? el("table", { class: "grid", id: "bots-table" },
      el("thead", {}, el("tr", {}, ...["Bot", "Kind", "Market", "State", "Position", "Realised", "Unrealised", "Fees", "Funding", "PnL", "Fills", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.sort((a, b) => Number(b.botId) - Number(a.botId)).map((b) => {
        const currency = settlement(String(b.symbol));
        const actions = el("td", { class: "actions" });
        const open = el("button", { type: "button", class: "btn small", "data-action": "detail" }, "Details");
        open.addEventListener("click", () => {
          shownBot = Number(b.botId);
          void loadDetail();
        });
        actions.append(open);
        if (b.state !== "stopped") {
          for (const [label, close] of [["Stop", false], ["Stop and close", true]] as const) {
            const button = el("button", { type: "button", class: "btn small", "data-action": close ? "stop-close" : "stop" }, label);
            button.addEventListener("click", async () => {
              try {
                await del("/bot", { botId: b.botId, close });
              } catch (error) {
                app.toast(message(error));
              }
              await load();
            });
            actions.append(button);
          }
        }
        const state = `${String(b.state)}${b.reason ? `: ${String(b.reason)}` : ""}`;
        return el("tr", { "data-bot": String(b.botId) },
          el("td", { class: "num" }, String(b.botId)), el("td", {}, String(b.kind)), el("td", {}, String(b.symbol)),
          el("td", { "data-field": "state" }, state), el("td", { class: "num" }, qty(Number(b.position ?? 0))),
          ...[b.realisedPnl, b.unrealisedPnl, b.fees, b.funding, b.pnl].map((v) => el("td", { class: "num" }, money(Number(v ?? 0), currency))),
          el("td", { class: "num" }, String(b.fillCount ?? 0)), actions);
      }))) : el("p", { class: "empty" }, "No bots yet."));
  }

  async function load(): Promise<void> {
    try {
      render(await get<Row[]>("/bot", undefined, true));
    } catch (error) {
      list.replaceChildren(el("p", { class: "empty" }, message(error)));
    }
    if (shownBot !== null) await loadDetail();
  }

  async function loadDetail(): Promise<void> {
    if (shownBot === null) return;
    try {
      const bot = await get<Row>("/bot/status", { botId: shownBot }, true);
      detail.replaceChildren(botDetail(bot, app.instruments.get(String(bot.symbol))));
    } catch (error) {
      detail.replaceChildren(el("p", { class: "down" }, message(error)));
    }
  }

  let reloading = false;
  app.rt.on("bot", () => {
    if (document.getElementById("page-bots")!.hidden || reloading) return;
    reloading = true; // one reload for a burst of updates
    window.setTimeout(() => {
      reloading = false;
      void load();
    }, 250);
  });
  return {
    show() {
      layout();
      void load();
    },
  };
}
