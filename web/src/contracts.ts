// Contract arithmetic as BitMEX defines it (reference §7.1), on the instrument row the venue
// publishes, for previews only: the venue computes the real figures, the terminal shows them.
// Value of one contract in settlement minor units: |multiplier| / price for inverse contracts,
// |multiplier| * price for linear, quanto and spot (their multipliers carry the conversions).
export interface Instrument {
  symbol: string;
  typ: string;
  state: string;
  rootSymbol?: string;
  quoteCurrency?: string;
  settlCurrency?: string;
  positionCurrency?: string;
  underlying?: string;
  tickSize: number;
  lotSize: number;
  maxOrderQty?: number;
  multiplier: number;
  isInverse: boolean;
  isQuanto: boolean;
  initMargin: number;
  maintMargin: number;
  takerFee?: number;
  makerFee?: number;
  lastPrice?: number | null;
  markPrice?: number | null;
  indicativeSettlePrice?: number | null;
  lastChangePcnt?: number | null;
  highPrice?: number | null;
  lowPrice?: number | null;
  volume24h?: number | null;
  turnover24h?: number | null;
  homeNotional24h?: number | null;
  foreignNotional24h?: number | null;
  openInterest?: number | null;
  fundingRate?: number | null;
  indicativeFundingRate?: number | null;
  fundingTimestamp?: string | null;
  referenceSymbol?: string;
  expiry?: string | null;
  bidPrice?: number | null;
  askPrice?: number | null;
}

/** Minor units per major unit, by settlement currency code (XBt = 1e-8 XBT, ...). */
export const CURRENCY_SCALE: Record<string, { major: string; scale: number }> = {
  XBt: { major: "XBT", scale: 8 },
  USDt: { major: "USDT", scale: 6 },
  Gwei: { major: "ETH", scale: 9 },
  BMEx: { major: "BMEX", scale: 6 },
  LAMp: { major: "USD", scale: 2 },
};

export function currencyInfo(code: string | undefined): { major: string; scale: number } {
  return CURRENCY_SCALE[code ?? ""] ?? { major: code ?? "", scale: 0 };
}

export const isSpot = (i: Instrument) => i.typ.startsWith("I");
export const isPerpetual = (i: Instrument) => i.typ === "FFWCSX";
export const maxLeverage = (i: Instrument) => (i.initMargin > 0 ? Math.round(1 / i.initMargin) : 1);

/** Value of `qty` contracts at `price`, in settlement minor units (always positive). */
export function contractValue(i: Instrument, qty: number, price: number): number {
  const m = Math.abs(i.multiplier);
  return i.isInverse ? (m / price) * Math.abs(qty) : m * price * Math.abs(qty);
}

/** Profit of a position of `qty` (signed) opened at `entry`, marked at `price`, minor units. */
export function pnl(i: Instrument, qty: number, entry: number, price: number): number {
  const m = Math.abs(i.multiplier);
  return i.isInverse ? qty * m * (1 / entry - 1 / price) : qty * m * (price - entry);
}

export interface Preview {
  value: number; // minor units
  margin: number; // initial margin at the chosen leverage (posInit), minor units
  fee: number; // fee on opening (taker, or maker for a post-only order), minor units
  closingFee: number; // posComm: the taker fee on closing at the bankruptcy price, minor units
  funding: number; // the next funding payment when this side pays it, minor units (else 0)
  cost: number; // what the order takes from the balance: posInit + posComm + the opening fee
  liquidation: number | null; // price, null when it cannot go bad (spot, fully covered)
}

/**
 * What an order opening a new position would cost and where that position would be liquidated,
 * with the venue's margin rules (core/risk.py, core/liquidation.py): posInit is value / leverage
 * (isolated) or value x initMargin (cross); posComm = (value + posInit) x takerFee is held for
 * the closing fee; maintenance is value x maintMargin + posComm + the next funding when this
 * side pays it. Isolated: liquidated when the loss eats posInit + posComm - maintenance. Cross
 * (`leverage` 0): the whole `available` balance, less the opening fee, backs the position.
 * An estimate, labelled as such (tiers above the base risk limit are not modelled); the
 * position's own liquidationPrice comes from the venue once it exists.
 */
export function preview(i: Instrument, qty: number, price: number, leverage: number, available: number, maker = false): Preview | null {
  if (!(qty !== 0 && price > 0)) return null;
  // minor units are whole; the venue rounds each requirement up (core/risk.py _ceil_div)
  const value = Math.round(contractValue(i, qty, price));
  const up = (x: number) => Math.ceil(x - 1e-9);
  const lev = leverage > 0 ? leverage : maxLeverage(i);
  const taker = Math.max(0, i.takerFee ?? 0);
  const fee = up(value * (maker ? (i.makerFee ?? 0) : taker));
  if (isSpot(i)) return { value, margin: value, fee, closingFee: 0, funding: 0, cost: value + fee, liquidation: null };
  const margin = leverage > 0 ? Math.max(up(value / lev), up(value * i.initMargin)) : up(value * i.initMargin);
  const closingFee = up((value + margin) * taker);
  const rate = i.fundingRate ?? 0;
  const funding = (qty > 0 && rate > 0) || (qty < 0 && rate < 0) ? up(value * Math.abs(rate)) : 0;
  const maintenance = up(value * i.maintMargin) + closingFee + funding;
  const backing = leverage > 0 ? margin + closingFee : Math.max(margin + closingFee, available - fee);
  const cushion = backing - maintenance;
  const m = Math.abs(i.multiplier) * Math.abs(qty);
  let raw: number | null;
  if (i.isInverse) {
    const inverse = 1 / price + (qty > 0 ? 1 : -1) * (cushion / m);
    raw = inverse > 0 ? 1 / inverse : null;
  } else {
    const p = price - (qty > 0 ? 1 : -1) * (cushion / m);
    raw = p > 0 ? p : null;
  }
  // published as the venue does: a long's rounded up to the tick, a short's down
  const ticks = raw === null ? null : qty > 0 ? Math.ceil(raw / i.tickSize - 1e-9) : Math.floor(raw / i.tickSize + 1e-9);
  const liquidation = ticks === null || ticks <= 0 ? null : ticks * i.tickSize;
  return { value, margin, fee, closingFee, funding, cost: margin + closingFee + fee, liquidation };
}
