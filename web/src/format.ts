// Number and time formatting: prices to the instrument's tick, money in major units.
import { currencyInfo } from "./contracts";

// Number formatters are made once per shape and reused: toLocaleString with options builds a
// new Intl.NumberFormat on every call, which the book's per-frame redraw felt (bench_web frames).
const formatters = new Map<string, Intl.NumberFormat>();
function formatter(minDigits: number, maxDigits: number, notation: "standard" | "compact" = "standard"): Intl.NumberFormat {
  const key = `${minDigits}:${maxDigits}:${notation}`;
  let found = formatters.get(key);
  if (!found) {
    found = new Intl.NumberFormat("en-US", { minimumFractionDigits: minDigits, maximumFractionDigits: maxDigits, notation });
    formatters.set(key, found);
  }
  return found;
}
const decimalsByStep = new Map<number, number>();

export function decimalsOf(step: number): number {
  const known = decimalsByStep.get(step);
  if (known !== undefined) return known;
  const digits = decimalsOfStep(step);
  if (decimalsByStep.size < 1_000) decimalsByStep.set(step, digits);
  return digits;
}

function decimalsOfStep(step: number): number {
  if (!(step > 0)) return 2;
  const text = step.toExponential();
  const [mantissa, exponent] = text.split("e");
  const fraction = (mantissa.split(".")[1] ?? "").length;
  return Math.max(0, fraction - Number(exponent));
}

export function price(value: number | null | undefined, tick: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  const digits = decimalsOf(tick);
  return formatter(digits, digits).format(value);
}

export function qty(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  return formatter(0, 8).format(value);
}

export function compact(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  return formatter(0, 2, "compact").format(value);
}

export function percent(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  const sign = value > 0 ? "+" : "";
  return `${sign}${(value * 100).toFixed(digits)}%`;
}

/** Minor units of `currency` as major units: 150000000 XBt -> "1.5000 XBT". */
export function money(minor: number | null | undefined, currency: string | undefined, digits?: number): string {
  if (minor === null || minor === undefined || !Number.isFinite(minor)) return "-";
  const { major, scale } = currencyInfo(currency);
  const shown = digits ?? (scale >= 8 ? 6 : Math.min(scale, 4)); // XBT needs its satoshis shown
  return `${formatter(shown, shown).format(minor / 10 ** scale)} ${major}`;
}

export function clock(iso: string | undefined): string {
  if (!iso) return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "-" : date.toISOString().slice(11, 19);
}

export function countdown(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return "";
  const left = Math.max(0, Math.floor((new Date(iso).getTime() - nowMs) / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  return `in ${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

/** Small DOM helper: an element with attributes and children (text is always textContent). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}
