// Entry point: loads the instruments, opens the socket, mounts the views and routes between
// pages by the URL hash (#/trade/XBTUSD, #/markets, #/wallet).
import "./style.css";
import { get } from "./api";
import { mountAccount } from "./account";
import { mountAnnouncements } from "./announcements";
import { App } from "./app";
import { mountBook } from "./book";
import { mountChart } from "./chart";
import type { Instrument } from "./contracts";
import { loadCredentials, loadPreferences, onCredentials, saveCredentials } from "./credentials";
import { mountIdentity } from "./identity";
import { mountMarkets } from "./markets";
import { mountBots } from "./bots";
import { mountCopy } from "./copy";
import { mountEarn } from "./earn";
import { mountOperator } from "./operator";
import { mountReserves } from "./reserves";
import { mountStats } from "./stats";
import { mountTicket } from "./ticket";
import { mountWallet } from "./wallet";

const app = new App();
const PAGES = ["trade", "markets", "wallet", "stats", "earn", "bots", "copy", "reserves", "operator", "account"];

function mountConnection(): void {
  const badge = document.getElementById("conn")!;
  app.rt.onState((state) => {
    badge.dataset.state = state;
    badge.textContent = state === "live" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Connecting…";
  });
  app.rt.onError((message) => app.toast(message));
}

function mountKeyDialog(): void {
  const dialog = document.getElementById("key-dialog") as HTMLDialogElement;
  const form = document.getElementById("key-form") as HTMLFormElement;
  const keyInput = document.getElementById("key-id") as HTMLInputElement;
  const secretInput = document.getElementById("key-secret") as HTMLInputElement;
  const button = document.getElementById("key-button")!;
  const label = () => {
    const credentials = loadCredentials();
    button.textContent = credentials ? `Key ${credentials.key.slice(0, 6)}…` : "Load API key";
  };
  button.addEventListener("click", () => {
    keyInput.value = loadCredentials()?.key ?? "";
    secretInput.value = "";
    dialog.showModal();
    keyInput.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveCredentials({ key: keyInput.value.trim(), secret: secretInput.value.trim() });
    dialog.close();
  });
  document.getElementById("key-forget")!.addEventListener("click", () => {
    saveCredentials(null);
    dialog.close();
  });
  document.getElementById("key-cancel")!.addEventListener("click", () => dialog.close());
  onCredentials(() => {
    label();
    app.rt.reauthenticate();
  });
  label();
}

type Shown = Record<string, { show(): void }>;

function route(pages: Shown): void {
  const [, page = "trade", symbol] = location.hash.split("/");
  const current = PAGES.includes(page) ? page : "trade";
  for (const name of PAGES) {
    (document.getElementById(`page-${name}`) as HTMLElement).hidden = name !== current;
  }
  document.querySelectorAll<HTMLAnchorElement>(".nav a, #account-link").forEach((a) => {
    if (a.dataset.page === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (current === "trade") {
    const preferred = String(loadPreferences().defaultSymbol ?? ""); // the account's preference
    const wanted = symbol && app.instruments.has(symbol) ? symbol
      : app.symbol || (app.instruments.has(preferred) ? preferred : app.markets()[0]?.symbol);
    if (wanted) app.setSymbol(wanted);
    window.dispatchEvent(new Event("resize")); // the chart measures itself when shown again
  }
  pages[current]?.show();
  if (current === "markets") app.updateInstruments([]);
}

async function start(): Promise<void> {
  mountConnection();
  mountKeyDialog();
  mountMarkets(app);
  mountAnnouncements(app);
  const ticket = mountTicket(app);
  mountBook(app, (p) => ticket.setPrice(p));
  mountChart(app);
  mountAccount(app);
  const pages: Shown = { wallet: mountWallet(app), stats: mountStats(app), earn: mountEarn(app), bots: mountBots(app), copy: mountCopy(app), reserves: mountReserves(), operator: mountOperator(app), account: mountIdentity(app) };
  app.rt.connect(); // in parallel with the instruments: the socket is up when the symbol is set
  try {
    app.updateInstruments(await get<Instrument[]>("/instrument/activeAndIndices", undefined, false));
  } catch (error) {
    app.toast(`Could not load the markets: ${error instanceof Error ? error.message : String(error)}`);
  }
  window.addEventListener("hashchange", () => route(pages));
  route(pages);
  document.body.dataset.ready = "true";
  if ("serviceWorker" in navigator && (location.protocol === "https:" || location.hostname === "127.0.0.1" || location.hostname === "localhost")) {
    navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  }
}

void start();
