"""What the demo's bots know about a market, read from ``GET /instrument`` like any client,
and the pure arithmetic they trade with: contract values, tick rounding, quote ladders, sizes.

Everything is ``Decimal`` (exact) or ``int`` (contracts, minor units); nothing here does I/O.

Contract value in settlement minor units, as BitMEX defines it (reference §7.1):
``|multiplier| / price`` per contract for inverse contracts, ``|multiplier| * price`` for
linear, quanto and spot (their multipliers already carry the unit conversions).
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from perpetua.core.units import CURRENCIES
from perpetua.wire.values import parse_iso_ns

__all__ = [
    "Market",
    "QuoteParams",
    "contracts_for_value",
    "ladder",
    "max_leverage_qty",
    "reference_price",
]

YEAR_S = Decimal(365 * 86_400)


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str
    typ: str  # FFWCSX perpetual, FFCCSX future, IFXXXP spot
    reference_symbol: str  # its index, ".BXBT"
    tick: Decimal
    lot: int
    multiplier: int
    is_inverse: bool
    settl_currency: str  # "XBt", "USDt"
    base_currency: str  # spot: the currency bought ("XBt", "Gwei", "BMEx"); else ""
    init_margin: Decimal
    taker_fee: Decimal
    expiry_s: int | None  # futures: seconds since the epoch

    @property
    def is_spot(self) -> bool:
        return self.typ.startswith("I")

    @property
    def is_future(self) -> bool:
        return self.typ == "FFCCSX"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Market":
        expiry = row.get("expiry")
        expiry_ns = parse_iso_ns(expiry) if isinstance(expiry, str) else None
        typ = str(row["typ"])
        return cls(
            symbol=str(row["symbol"]), typ=typ, reference_symbol=str(row["referenceSymbol"]),
            tick=Decimal(str(row["tickSize"])), lot=int(row["lotSize"]),
            multiplier=int(row["multiplier"]), is_inverse=bool(row["isInverse"]),
            settl_currency=str(row["settlCurrency"]),
            base_currency=_spot_base(row) if typ.startswith("I") else "",
            init_margin=Decimal(str(row.get("initMargin") or 0)),
            taker_fee=Decimal(str(row.get("takerFee") or 0)),
            expiry_s=None if expiry_ns is None else expiry_ns // 1_000_000_000,
        )  # fmt: skip

    def value_per_contract(self, price: Decimal) -> Decimal:
        """Settlement minor units per contract at ``price``."""
        multiplier = abs(self.multiplier)
        return Decimal(multiplier) / price if self.is_inverse else multiplier * price

    def floor_tick(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_FLOOR) * self.tick

    def ceil_tick(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_CEILING) * self.tick


def _spot_base(row: dict[str, Any]) -> str:
    root = str(row.get("underlying") or row.get("rootSymbol") or "")
    for code, currency in CURRENCIES.items():
        if currency.major == root:
            return code
    return ""


def contracts_for_value(market: Market, value: Decimal, price: Decimal) -> int:
    """Whole lots (at least one) worth about ``value`` settlement minor units at ``price``."""
    per_lot = market.value_per_contract(price) * market.lot
    lots = int(value / per_lot) if per_lot > 0 else 1
    return max(1, lots) * market.lot


def reference_price(market: Market, index: Decimal, now_s: int, carry_per_year: Decimal) -> Decimal:
    """Where to centre quotes: the index, plus for a future the carry to its expiry."""
    if market.expiry_s is None or market.expiry_s <= now_s:
        return index
    return index * (1 + carry_per_year * Decimal(market.expiry_s - now_s) / YEAR_S)


@dataclass(frozen=True, slots=True)
class QuoteParams:
    half_spread: Decimal  # of the reference price: 0.0005 = 5 bps either side
    level_step: Decimal  # between levels, of the reference price
    levels: int  # per side
    level_qty: int  # contracts per level (whole lots)
    inventory_max: int  # contracts; past it the side that adds stops quoting


def ladder(
    market: Market, reference: Decimal, inventory: int, params: QuoteParams
) -> list[tuple[str, Decimal, int]]:
    """(side, price, qty) quotes around ``reference``, skewed against ``inventory``.

    The centre moves down by up to one half spread as a long inventory approaches its limit
    (up for a short one), so the maker sells more than it buys; at the limit the side that
    would add to the inventory keeps only its farthest level, so neither side of the book is
    ever empty while the maker quotes. Bids are floored and asks ceiled to the tick, and the
    best bid stays below the best ask.
    """
    limit = max(params.inventory_max, 1)
    skew = params.half_spread * Decimal(max(-limit, min(limit, inventory))) / limit
    centre = reference * (1 - skew)
    quotes: list[tuple[str, Decimal, int]] = []
    for level in range(params.levels):
        offset = params.half_spread + params.level_step * level
        bid = market.floor_tick(centre * (1 - offset))
        ask = market.ceil_tick(centre * (1 + offset))
        if ask <= bid:
            ask = bid + market.tick
        farthest = level == params.levels - 1
        if (inventory < params.inventory_max or farthest) and bid > 0:
            quotes.append(("Buy", bid, params.level_qty))
        if inventory > -params.inventory_max or farthest:
            quotes.append(("Sell", ask, params.level_qty))
    return quotes


def max_leverage_qty(
    market: Market,
    wallet: int,
    price: Decimal,
    utilisation: Decimal,
    leverage: Decimal | None = None,
) -> int:
    """Contracts an account with ``wallet`` minor units can open at ``price``: ``utilisation``
    of the wallet covers the initial margin (the instrument's, or ``1/leverage`` when isolated
    at a lower leverage) plus the taker fee in and out."""
    margin = market.init_margin if leverage is None else max(market.init_margin, 1 / leverage)
    per_contract = market.value_per_contract(price) * (margin + 2 * market.taker_fee)
    if per_contract <= 0:
        return 0
    lots = int(Decimal(wallet) * utilisation / per_contract / market.lot)
    return lots * market.lot
