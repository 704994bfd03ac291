// The terminal's shared state: the socket, the instruments by symbol, the chosen symbol, and
// a toast area for the venue's messages. Views read from here and subscribe to changes.
import type { Instrument } from "./contracts";
import { el } from "./format";
import { Realtime } from "./realtime";

export const TOAST_MS = 6_000;
export const TOASTS_SHOWN_MAX = 4;

export class App {
  readonly rt: Realtime;
  readonly instruments = new Map<string, Instrument>();
  symbol = "";
  private symbolListeners: ((symbol: string) => void)[] = [];
  private instrumentListeners: (() => void)[] = [];

  constructor() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.rt = new Realtime(`${scheme}://${location.host}/realtime`);
  }

  get instrument(): Instrument | undefined {
    return this.instruments.get(this.symbol);
  }

  setSymbol(symbol: string): void {
    if (symbol === this.symbol || !this.instruments.has(symbol)) return;
    this.symbol = symbol;
    for (const listener of this.symbolListeners) listener(symbol);
  }

  onSymbol(listener: (symbol: string) => void): void {
    this.symbolListeners.push(listener);
  }

  onInstruments(listener: () => void): void {
    this.instrumentListeners.push(listener);
  }

  updateInstruments(rows: Partial<Instrument>[]): void {
    for (const row of rows) {
      if (!row.symbol) continue;
      const current = this.instruments.get(row.symbol);
      if (current) Object.assign(current, row);
      else if (row.typ) this.instruments.set(row.symbol, row as Instrument);
    }
    for (const listener of this.instrumentListeners) listener();
  }

  /** Tradable instruments (not indices), in the venue's order. */
  markets(): Instrument[] {
    return [...this.instruments.values()].filter((i) => !i.symbol.startsWith(".") && i.state !== "Unlisted");
  }

  toast(message: string, kind: "error" | "info" = "error"): void {
    const area = document.getElementById("toasts");
    if (!area) return;
    const node = el("div", { class: `toast ${kind}` }, message);
    area.append(node);
    while (area.childElementCount > TOASTS_SHOWN_MAX) area.firstElementChild?.remove();
    window.setTimeout(() => node.remove(), TOAST_MS);
  }
}
