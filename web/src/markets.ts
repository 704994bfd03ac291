// The instrument picker (24h change and funding per market), the ticker strip for the chosen
// market (last, mark, index, 24h figures, funding with its countdown) and the Markets page.
import type { App } from "./app";
import { type Instrument, isPerpetual, isSpot, maxLeverage } from "./contracts";
import { compact, countdown, el, percent, price, qty } from "./format";

function changeClass(value: number | null | undefined): string {
  return !value ? "" : value > 0 ? "up" : "down";
}

function kind(i: Instrument): string {
  return isSpot(i) ? "Spot" : isPerpetual(i) ? "Perpetual" : "Future";
}

export function mountMarkets(app: App): void {
  const button = document.getElementById("symbol-button") as HTMLButtonElement;
  const menu = document.getElementById("symbol-menu") as HTMLDivElement;
  const filter = document.getElementById("symbol-filter") as HTMLInputElement;
  const list = document.getElementById("symbol-list") as HTMLTableSectionElement;
  const table = document.querySelector("#markets-table tbody") as HTMLTableSectionElement;

  const setOpen = (open: boolean) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      filter.value = "";
      renderList();
      filter.focus();
    }
  };
  button.addEventListener("click", () => setOpen(menu.hidden));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !menu.hidden) {
      setOpen(false);
      button.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target as Node) && !button.contains(event.target as Node)) setOpen(false);
  });
  filter.addEventListener("input", () => renderList());
  filter.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const first = list.querySelector<HTMLTableRowElement>("tr[data-symbol]");
      if (first) choose(first.dataset.symbol ?? "");
    }
  });

  const choose = (symbol: string) => {
    location.hash = `#/trade/${symbol}`;
    setOpen(false);
  };

  function renderList(): void {
    const term = filter.value.trim().toUpperCase();
    const rows = app.markets().filter((i) => !term || i.symbol.includes(term));
    list.replaceChildren(...rows.map((i) => {
      const row = el("tr", { "data-symbol": i.symbol, role: "option", tabindex: "0", "aria-selected": String(i.symbol === app.symbol) },
        el("td", {}, i.symbol),
        el("td", { class: "num" }, price(i.lastPrice, i.tickSize)),
        el("td", { class: `num ${changeClass(i.lastChangePcnt)}` }, percent(i.lastChangePcnt)),
        el("td", { class: "num" }, isPerpetual(i) ? percent(i.fundingRate, 4) : "-"));
      row.addEventListener("click", () => choose(i.symbol));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") choose(i.symbol);
      });
      return row;
    }));
  }

  function renderTable(): void {
    table.replaceChildren(...app.markets().map((i) => {
      const link = el("a", { href: `#/trade/${i.symbol}` }, i.symbol);
      return el("tr", { "data-symbol": i.symbol },
        el("td", {}, link),
        el("td", {}, kind(i)),
        el("td", { class: "num" }, price(i.lastPrice, i.tickSize)),
        el("td", { class: "num" }, price(i.markPrice, i.tickSize)),
        el("td", { class: `num ${changeClass(i.lastChangePcnt)}` }, percent(i.lastChangePcnt)),
        el("td", { class: "num" }, compact(i.volume24h)),
        el("td", { class: "num" }, compact(i.openInterest)),
        el("td", { class: "num" }, isPerpetual(i) ? percent(i.fundingRate, 4) : "-"),
        el("td", { class: "num" }, isSpot(i) ? "1x" : `${maxLeverage(i)}x`),
        el("td", { class: "num" }, String(i.tickSize)),
        el("td", { class: "num" }, qty(i.lotSize)));
    }));
  }

  const set = (id: string, text: string, cls = "") => {
    const node = document.getElementById(id);
    if (node && node.textContent !== text) node.textContent = text;
    if (node && cls !== undefined) node.className = cls || (id === "st-last" ? "big" : "");
  };
  let lastShown: number | null = null;

  function renderTicker(): void {
    const i = app.instrument;
    if (!i) return;
    document.getElementById("symbol-name")!.textContent = i.symbol;
    const last = i.lastPrice ?? null;
    const direction = lastShown !== null && last !== null && last !== lastShown ? (last > lastShown ? "big up" : "big down") : "big";
    lastShown = last;
    set("st-last", price(last, i.tickSize), direction);
    set("st-mark", price(i.markPrice, i.tickSize));
    const index = i.referenceSymbol ? app.instruments.get(i.referenceSymbol) : undefined;
    set("st-index", price(index?.lastPrice ?? i.indicativeSettlePrice, i.tickSize));
    set("st-change", percent(i.lastChangePcnt), changeClass(i.lastChangePcnt));
    set("st-high", price(i.highPrice, i.tickSize));
    set("st-low", price(i.lowPrice, i.tickSize));
    set("st-volume", compact(i.volume24h));
    set("st-oi", compact(i.openInterest));
    set("st-funding", isPerpetual(i) ? percent(i.fundingRate, 4) : "-");
    document.title = `${price(last, i.tickSize)} ${i.symbol} | Perpetua`;
  }

  function tickCountdown(): void {
    const i = app.instrument;
    const node = document.getElementById("st-countdown")!;
    node.textContent = i && isPerpetual(i) ? countdown(i.fundingTimestamp, Date.now()) : "";
  }
  window.setInterval(tickCountdown, 1000);

  let pending = false;
  app.onInstruments(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderTicker();
      tickCountdown();
      if (!menu.hidden) renderList();
      if (!document.getElementById("page-markets")!.hidden) renderTable();
    });
  });
  app.onSymbol(() => {
    lastShown = null;
    renderTicker();
    tickCountdown();
  });
  window.addEventListener("hashchange", () => renderTable());
  app.rt.on("instrument", (_table, message) => app.updateInstruments(message.data as Partial<Instrument>[]));
  app.rt.subscribe(["instrument"]);
}
