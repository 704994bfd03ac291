// The Copy trading page (docs/bots-and-copy-trading.md): leaders with their track records
// (GET /copy/leaders, public; BitMEX's /leaderboard), following one (POST /copy/follow: the
// allocation moves into a sub-account made for the relationship; size by ratio or fixed
// quantity, caps, take profit and stop loss on the allocation, slippage), your relationships
// (GET /copy/follow, stop with DELETE, closing the positions), and becoming a leader
// (POST /copy/leader). Invariants: the venue validates every parameter and its refusal is
// shown as it says it; amounts are typed in major units as the venue takes them.
import { ApiError, del, get, post } from "./api";
import type { App } from "./app";
import { hasIdentity } from "./credentials";
import { el, money } from "./format";
import type { Row } from "./tables";

const message = (error: unknown) => (error instanceof ApiError || error instanceof Error ? error.message : String(error));
const ppm = (value: unknown) => (value === null || value === undefined ? "-" : `${(Number(value) / 10_000).toFixed(2)}%`);

function grid(id: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

export function mountCopy(app: App): { show(): void } {
  const root = document.getElementById("copy-body")!;
  const leaders = el("div", { id: "copy-leaders" });
  const follows = el("div", { id: "copy-follows" });
  const labelled = (text: string, input: HTMLElement) => el("div", { class: "field" }, el("label", { for: input.id }, text), input);
  const input = (id: string, value = "") => el("input", { id, autocomplete: "off", inputmode: "decimal", value });
  const f = {
    leader: input("follow-leader"), allocation: input("follow-allocation"), ratio: input("follow-ratio", "1"),
    fixedQty: input("follow-fixedQty"), maxTradeQty: input("follow-maxTradeQty"), leverageCap: input("follow-leverageCap"),
    takeProfit: input("follow-takeProfit"), stopLoss: input("follow-stopLoss"), slippage: input("follow-slippage", "0.5"),
  };
  const mode = el("select", { id: "follow-mode" }, el("option", { value: "ratio" }, "Ratio of the leader's size"), el("option", { value: "fixed" }, "Fixed quantity per trade"));
  const followGo = el("button", { type: "button", class: "btn primary", id: "follow-go" }, "Start copying");
  const followOut = el("p", { class: "form-out", id: "follow-out", "aria-live": "polite" });
  const l = { name: el("input", { id: "leader-name", autocomplete: "off" }), symbols: el("input", { id: "leader-symbols", autocomplete: "off", placeholder: "XBTUSDT,ETHUSDT" }),
    leverageCap: input("leader-leverageCap", "10"), profitShare: input("leader-profitShare", "10") };
  const leadGo = el("button", { type: "button", class: "btn", id: "leader-go" }, "Save my leader profile");
  const leadOut = el("p", { class: "form-out", id: "leader-out", "aria-live": "polite" });
  root.append(
    el("p", { class: "muted" }, "Copy a leader's trades into a sub-account funded with your allocation: each of their fills is mirrored at their price within your slippage; you can stop at any time."),
    el("h2", {}, "Leaders"), leaders,
    el("div", { class: "columns" },
      el("section", { class: "card", "aria-labelledby": "h-follow" }, el("h2", { id: "h-follow" }, "Follow a leader"),
        el("div", { class: "bot-fields" }, labelled("Leader (account)", f.leader), labelled("Allocation (settlement currency)", f.allocation), labelled("Size", mode),
          labelled("Ratio", f.ratio), labelled("Fixed quantity", f.fixedQty), labelled("Largest trade (0: none)", f.maxTradeQty),
          labelled("Leverage cap", f.leverageCap), labelled("Take profit (% of allocation)", f.takeProfit), labelled("Stop loss (% of allocation)", f.stopLoss),
          labelled("Slippage (%)", f.slippage)),
        followGo, followOut),
      el("section", { class: "card", "aria-labelledby": "h-lead" }, el("h2", { id: "h-lead" }, "Lead"),
        el("p", { class: "muted" }, "Let others copy your trades in the markets you name (one settlement currency); you receive your profit share of their gains above their high-water mark."),
        el("div", { class: "bot-fields" }, labelled("Name", l.name), labelled("Markets", l.symbols), labelled("Leverage cap", l.leverageCap), labelled("Profit share (%)", l.profitShare)),
        leadGo, leadOut)),
    el("h2", {}, "Your copy relationships"), follows);

  const say = (out: HTMLElement, text: string, ok: boolean) => {
    out.textContent = text;
    out.className = `form-out ${ok ? "up" : "down"}`;
  };

  async function load(): Promise<void> {
    try {
      const rows = await get<Row[]>("/copy/leaders", undefined, false);
      leaders.replaceChildren(grid("copy-leaders-table", ["Leader", "Account", "Markets", "PnL", "ROI", "Max drawdown", "Win rate", "Trips", "Followers", "Under copy", "Profit share", ""],
        rows.map((r) => {
          const c = String(r.currency);
          const pick = el("button", { type: "button", class: "btn small", "data-action": "follow" }, "Follow");
          pick.addEventListener("click", () => {
            f.leader.value = String(r.account);
            f.allocation.focus();
          });
          return el("tr", { "data-leader": String(r.account) }, el("td", {}, String(r.name)), el("td", { class: "num" }, String(r.account)),
            el("td", {}, (r.symbols as string[]).join(", ")), el("td", { class: "num" }, money(Number(r.pnl ?? 0), c)), el("td", { class: "num" }, ppm(r.roiPpm)),
            el("td", { class: "num" }, ppm(r.maxDrawdownPpm)), el("td", { class: "num" }, ppm(r.winRatePpm)), el("td", { class: "num" }, String(r.trips ?? 0)),
            el("td", { class: "num" }, String(r.followers ?? 0)), el("td", { class: "num" }, money(Number(r.assetsUnderCopy ?? 0), c)),
            el("td", { class: "num" }, ppm(r.profitSharePpm)), el("td", {}, pick));
        }), "No leaders yet."));
    } catch (error) {
      leaders.replaceChildren(el("p", { class: "empty" }, message(error)));
    }
    if (!hasIdentity()) {
      follows.replaceChildren(el("p", { class: "empty" }, "Sign in or load an API key to see your copy relationships."));
      return;
    }
    try {
      const rows = await get<Row[]>("/copy/follow", undefined, true);
      follows.replaceChildren(grid("copy-follows-table", ["Id", "Leader", "State", "Allocation", "Equity", "High-water mark", "Mirrored", "Failed", "Last error", ""], rows.map((r) => {
        const c = String(r.currency);
        const stop = el("button", { type: "button", class: "btn small", "data-action": "stop-copy" }, "Stop and close");
        stop.addEventListener("click", async () => {
          try {
            await del("/copy/follow", { followId: r.followId, close: true });
          } catch (error) {
            app.toast(message(error));
          }
          await load();
        });
        return el("tr", { "data-follow": String(r.followId) }, el("td", { class: "num" }, String(r.followId)), el("td", { class: "num" }, String(r.leader)),
          el("td", {}, `${String(r.state)}${r.reason ? `: ${String(r.reason)}` : ""}`), el("td", { class: "num" }, money(Number(r.allocation ?? 0), c)),
          el("td", { class: "num" }, money(Number(r.equity ?? 0), c)), el("td", { class: "num" }, money(Number(r.highWater ?? 0), c)),
          el("td", { class: "num" }, String(r.mirrored ?? 0)), el("td", { class: "num" }, String(r.failed ?? 0)), el("td", { class: "muted" }, String(r.lastError ?? "")),
          el("td", {}, r.state === "active" ? stop : ""));
      }), "You copy no one."));
    } catch (error) {
      follows.replaceChildren(el("p", { class: "empty" }, message(error)));
    }
  }

  followGo.addEventListener("click", async () => {
    const body: Record<string, string> = { mode: mode.value };
    for (const [name, node] of Object.entries(f)) if (node.value.trim()) body[name] = node.value.trim();
    try {
      const row = await post<Row>("/copy/follow", body);
      say(followOut, `Copying leader ${String(row.leader)} (relationship ${String(row.followId)}).`, true);
    } catch (error) {
      say(followOut, message(error), false);
    }
    await load();
  });
  leadGo.addEventListener("click", async () => {
    try {
      const row = await post<Row>("/copy/leader", { name: l.name.value.trim(), symbols: l.symbols.value.trim(), leverageCap: l.leverageCap.value.trim(), profitShare: l.profitShare.value.trim() });
      say(leadOut, `You lead as "${String(row.name)}" on ${(row.symbols as string[]).join(", ")}.`, true);
    } catch (error) {
      say(leadOut, message(error), false);
    }
    await load();
  });
  return { show: () => void load() };
}
