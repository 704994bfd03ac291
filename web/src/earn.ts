// The Earn page (docs/trading-costs.md): BMEX staking (the stake, its tier's fee discount and
// reward rate, the tier table, stake, unstake with its 7-day cool-off, cancel a pending unstake)
// and Convert (a quote from the venue's convert desk, good for a few seconds, then execute it
// at exactly the quoted amounts). Every request goes as the trader (the session, or a loaded API key).
// Invariants: amounts are typed in major units and sent in the currency's minor units
// (integers); a quote is executed only by its id and only before it expires (the venue checks
// again); nothing here moves money except the venue's answer to an explicit click.
import { ApiError, del, get, post } from "./api";
import type { App } from "./app";
import { hasIdentity } from "./credentials";
import { currencyInfo } from "./contracts";
import { el, money } from "./format";
import type { Row } from "./tables";

export const STAKE_CURRENCY = "BMEx";
export const QUOTE_TICK_MS = 250; // countdown refresh

const minor = (major: string, currency: string) => Math.round(Number(major) * 10 ** currencyInfo(currency).scale);
const pct = (fraction: unknown) => `${(Number(fraction ?? 0) * 100).toFixed(2)}%`;
const message = (error: unknown) => (error instanceof ApiError || error instanceof Error ? error.message : String(error));

function grid(id: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

function field(id: string, label: string, input: HTMLElement): HTMLElement {
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

export function mountEarn(_app: App): { show(): void } {
  const root = document.getElementById("earn-body")!;
  // --- staking ---
  const stakeFacts = el("dl", { class: "spec", id: "stake-facts" });
  const tiersBox = el("div", { id: "stake-tiers" });
  const requestsBox = el("div", { id: "unstake-requests" });
  const stakeAmount = el("input", { type: "number", inputmode: "decimal", min: "0", step: "any", autocomplete: "off" });
  const stakeGo = el("button", { type: "button", class: "btn primary", id: "stake-go" }, "Stake");
  const unstakeAmount = el("input", { type: "number", inputmode: "decimal", min: "0", step: "any", autocomplete: "off" });
  const unstakeGo = el("button", { type: "button", class: "btn", id: "unstake-go" }, "Request unstake");
  const stakeOut = el("p", { class: "form-out", id: "stake-out", "aria-live": "polite" });
  // --- convert ---
  const fromCurrency = el("select");
  const toCurrency = el("select");
  const convertAmount = el("input", { type: "number", inputmode: "decimal", min: "0", step: "any", autocomplete: "off" });
  const quoteGo = el("button", { type: "button", class: "btn", id: "quote-go" }, "Get quote");
  const convertGo = el("button", { type: "button", class: "btn primary", id: "convert-go", disabled: "" }, "Convert");
  const quoteBox = el("dl", { class: "spec", id: "quote" });
  const convertOut = el("p", { class: "form-out", id: "convert-out", "aria-live": "polite" });

  root.append(el("div", { class: "columns" },
    el("section", { class: "card", "aria-labelledby": "h-staking" },
      el("h2", { id: "h-staking" }, "BMEX staking"),
      el("p", { class: "muted" }, "Staked BMEX stays yours but cannot be traded or withdrawn. Its tier lowers your trading fees and earns a daily reward on the least amount staked that day. Unstaking releases after a 7-day cool-off; a pending request can be cancelled."),
      stakeFacts,
      el("div", { class: "row" }, field("stake-amount", "Amount to stake (BMEX)", stakeAmount), stakeGo),
      el("div", { class: "row" }, field("unstake-amount", "Amount to unstake (BMEX)", unstakeAmount), unstakeGo),
      stakeOut,
      el("h2", {}, "Unstaking requests"), requestsBox,
      el("h2", {}, "Tiers"), tiersBox),
    el("section", { class: "card", "aria-labelledby": "h-convert" },
      el("h2", { id: "h-convert" }, "Convert"),
      el("p", { class: "muted" }, "Swap one asset for another at a price quoted by the venue's convert desk from the spot order books. A quote holds for a few seconds; converting pays exactly the quoted amounts or nothing."),
      field("convert-from", "From", fromCurrency), field("convert-to", "To", toCurrency),
      field("convert-amount", "Amount (in the From asset)", convertAmount),
      el("div", { class: "row" }, quoteGo, convertGo), quoteBox, convertOut)));

  const say = (out: HTMLElement, text: string, ok: boolean) => {
    out.textContent = text;
    out.className = `form-out ${ok ? "up" : "down"}`;
  };

  async function loadStaking(): Promise<void> {
    try {
      const tiers = await get<Row[]>("/user/staking/tiers", { currency: STAKE_CURRENCY }, false);
      tiersBox.replaceChildren(grid("stake-tiers-table", ["Tier", "Staked at least", "Fee discount", "Reward (APR)"], tiers.map((t) => el("tr", {},
        el("td", { class: "num" }, String(t.tier)), el("td", { class: "num" }, money(Number(t.minStaked), STAKE_CURRENCY, 0)),
        el("td", { class: "num" }, pct(t.feeDiscount)), el("td", { class: "num" }, pct(t.apr)))), "No tiers."));
    } catch (error) {
      tiersBox.replaceChildren(el("p", { class: "empty" }, message(error)));
    }
    if (!hasIdentity()) {
      stakeFacts.replaceChildren(el("dt", {}, "Your stake"), el("dd", {}, "Sign in or load an API key to see it."));
      return;
    }
    try {
      const [stake] = await get<Row[]>("/user/staking", { currency: STAKE_CURRENCY }, true);
      const facts: [string, string, string][] = [
        ["Staked", money(Number(stake?.amount ?? 0), STAKE_CURRENCY), "amount"],
        ["Unstaking (cooling off)", money(Number(stake?.unstaking ?? 0), STAKE_CURRENCY), "unstaking"],
        ["Earning today", money(Number(stake?.eligible ?? 0), STAKE_CURRENCY), "eligible"],
        ["Tier", `${String(stake?.tier ?? 0)}: fee discount ${pct(stake?.feeDiscount)}, reward ${pct(stake?.apr)} a year`, "tier"],
      ];
      stakeFacts.replaceChildren(...facts.flatMap(([k, v, key]) => [el("dt", {}, k), el("dd", { "data-stake": key }, v)]));
      const requests = await get<Row[]>("/user/unstakingRequests", { status: "All" }, true);
      requestsBox.replaceChildren(grid("unstake-table", ["Requested", "Amount", "Status", "Releases", ""], requests.map((r) => {
        const cell = el("td", {});
        if (r.status === "Pending") {
          const cancel = el("button", { type: "button", class: "btn small", "data-action": "cancel-unstake" }, "Cancel");
          cancel.addEventListener("click", async () => {
            try {
              await del("/user/unstakingRequests", { redemptionID: r.redemptionID });
              say(stakeOut, "Unstaking cancelled: the amount is staked again.", true);
            } catch (error) {
              say(stakeOut, message(error), false);
            }
            await loadStaking();
          });
          cell.append(cancel);
        }
        return el("tr", { "data-redemption": String(r.redemptionID) },
          el("td", {}, String(r.timestamp ?? "").replace("T", " ").slice(0, 19)),
          el("td", { class: "num" }, money(Number(r.amount), String(r.currency))),
          el("td", {}, String(r.status)), el("td", {}, String(r.releaseTime ?? "").replace("T", " ").slice(0, 16)), cell);
      }), "No unstaking requests."));
    } catch (error) {
      stakeFacts.replaceChildren(el("dt", {}, "Your stake"), el("dd", {}, message(error)));
    }
  }

  stakeGo.addEventListener("click", async () => {
    try {
      await post("/user/staking", { currency: STAKE_CURRENCY, amount: minor(stakeAmount.value, STAKE_CURRENCY) });
      say(stakeOut, `Staked ${stakeAmount.value} BMEX.`, true);
    } catch (error) {
      say(stakeOut, message(error), false);
    }
    await loadStaking();
  });
  unstakeGo.addEventListener("click", async () => {
    try {
      const r = await post<Row>("/user/unstakingRequests", { symbol: "BMEX", amount: minor(unstakeAmount.value, STAKE_CURRENCY) });
      say(stakeOut, `Unstaking ${unstakeAmount.value} BMEX: released ${String(r.releaseTime ?? "").replace("T", " ").slice(0, 16)} UTC.`, true);
    } catch (error) {
      say(stakeOut, message(error), false);
    }
    await loadStaking();
  });

  // --- convert ---
  let quote: Row | null = null;
  let quotedAt = 0; // performance.now() when the quote arrived
  let timer = 0;
  function renderQuote(): void {
    if (!quote) {
      quoteBox.replaceChildren();
      convertGo.disabled = true;
      return;
    }
    // the quote's own validity (expiresAt - timestamp, both the venue's clock) counted from its
    // arrival: the browser's clock may differ from the venue's (a demo's simulated clock lags
    // the wall by its start-up)
    const ttl = new Date(String(quote.expiresAt)).getTime() - new Date(String(quote.timestamp)).getTime();
    const left = Math.max(0, ttl - (performance.now() - quotedAt));
    const from = String(quote.fromCurrency);
    const to = String(quote.toCurrency);
    const facts: [string, string, string][] = [
      ["You pay", money(Number(quote.fromAmount), from), "from"],
      ["You get", money(Number(quote.toAmount), to), "to"],
      ["Price", `1 ${currencyInfo(from).major} = ${String(quote.price)} ${currencyInfo(to).major}`, "price"],
      ["Good for", left > 0 ? `${(left / 1000).toFixed(1)} s` : "expired: get a new quote", "expires"],
    ];
    quoteBox.replaceChildren(...facts.flatMap(([k, v, key]) => [el("dt", {}, k), el("dd", { "data-quote": key }, v)]));
    convertGo.disabled = left <= 0;
    if (left <= 0) window.clearInterval(timer);
  }
  quoteGo.addEventListener("click", async () => {
    window.clearInterval(timer);
    quote = null;
    renderQuote();
    convertOut.textContent = "";
    try {
      quote = await post<Row>("/convert/quote", { fromCurrency: fromCurrency.value, toCurrency: toCurrency.value, amount: minor(convertAmount.value, fromCurrency.value) });
      quotedAt = performance.now();
      renderQuote();
      timer = window.setInterval(renderQuote, QUOTE_TICK_MS);
    } catch (error) {
      say(convertOut, message(error), false);
    }
  });
  convertGo.addEventListener("click", async () => {
    if (!quote) return;
    const taken = quote;
    convertGo.disabled = true;
    try {
      const done = await post<Row>("/convert/execute", { quoteID: taken.quoteID });
      say(convertOut, `Converted: paid ${money(Number(done.fromAmount), String(done.fromCurrency))}, got ${money(Number(done.toAmount), String(done.toCurrency))}.`, true);
    } catch (error) {
      say(convertOut, message(error), false);
    }
    window.clearInterval(timer);
    quote = null;
    renderQuote();
  });

  async function loadConvert(): Promise<void> {
    if (fromCurrency.options.length) return;
    try {
      const assets = await get<Row>("/convert/assets", undefined, true);
      const currencies = (assets.currencies as string[] | undefined) ?? [];
      for (const [select, first] of [[fromCurrency, 0], [toCurrency, 1]] as const) {
        select.replaceChildren(...currencies.map((c) => el("option", { value: c }, currencyInfo(c).major || c)));
        if (currencies[first]) select.value = currencies[first];
      }
    } catch (error) {
      say(convertOut, message(error), false);
    }
  }

  return {
    show() {
      void loadStaking();
      void loadConvert();
    },
  };
}
