"""Instrument specifications and contract arithmetic (BitMEX reference §3 "Instrument", §7.1).

An ``InstrumentSpec`` is immutable configuration. Its fields follow BitMEX's instrument model in
snake_case, with units last: ``*_ns`` nanoseconds since the epoch, ``*_ppm`` parts per million,
money (``risk_limit``, ``risk_step``, ``impact_notional``) in minor units of ``settl_currency``.

Prices are integer ticks. The tick size is the reduced rational ``tick_num / tick_den``
(0.5 -> 1/2, 0.01 -> 1/100), so ``price = ticks * tick_num / tick_den``. Marks and indices may
be finer than the tick: they are exact rationals ``price_num / price_den`` (``contract_value_at``).

Invariants checked at construction (``__post_init__``):
- kind and payout pair up: PERPETUAL/FUTURE with INVERSE/LINEAR/QUANTO, SPOT with SPOT, INDEX
  with NONE; index symbols, and only they, start with ``"."``;
- signs follow the payout: inverse has ``multiplier < 0`` and ``underlying_to_settle_multiplier``
  = -(settlement minor units per major); linear and spot have ``multiplier *
  underlying_to_position_multiplier == quote_to_settle_multiplier``; indices have multiplier 0;
- spot base amounts are exact: the base currency's minor units per major are a multiple of
  ``underlying_to_position_multiplier``;
- ticks and lots are positive; ``max_order_qty`` is a whole number of lots; the value of one
  maximal order at the extreme prices fits 64 bits;
- 0 < maint margin < init margin <= 100% on derivatives (zero on spot and indices);
- ``expiry_ns`` and ``settle_ns`` are 0, meaning "never", except on futures, where they are equal
  and after ``listing_ns``; ``funding_interval_ns`` is 0 ("no funding") except on perpetuals.

Rounding: ``contract_value`` and ``contract_value_at`` truncate toward zero, which reproduces
BitMEX's published figures (XBTUSD 1000 @ 98000 -> -1_020_408). ``pnl`` is the difference of two
truncated values, as BitMEX computes unrealised PnL (markValue - cost). Callers that need a
solvency-favouring direction (margin up, payouts down) use ``units.mul_div_*`` themselves.
``home_notional`` is exact (a reduced rational), never rounded.
"""

from dataclasses import dataclass
from enum import IntEnum
from math import gcd
from typing import NamedTuple

from perpetua.core.calendar import ALWAYS_OPEN, TradingHours
from perpetua.core.enums import ProductClass
from perpetua.core.invariant import fail, invariant
from perpetua.core.units import CURRENCIES, INT64_MAX, INT64_MIN, PPM, currency

__all__ = [
    "INSTRUMENT_STATES",
    "InstrumentKind",
    "InstrumentSpec",
    "OnGrid",
    "Payout",
    "contract_value",
    "contract_value_at",
    "home_notional",
    "pnl",
    "price_of_ticks",
    "price_ticks_in_range",
    "product_class",
    "qty_on_lot",
    "spot_base_amount",
    "spot_quote_amount",
    "ticks_for",
]

INSTRUMENT_STATES = ("Open", "Closed", "Unlisted", "Settled", "Delisted")


class InstrumentKind(IntEnum):
    PERPETUAL = 1
    FUTURE = 2
    SPOT = 3
    INDEX = 4


class Payout(IntEnum):
    INVERSE = 1  # value = qty * multiplier / price, multiplier < 0
    LINEAR = 2  # value = qty * multiplier * price
    QUANTO = 3  # value = qty * multiplier * price, paid in a third currency
    SPOT = 4  # exchange of base for quote: quote amount = qty * multiplier * price
    NONE = 5  # indices: not tradable


_PAYOUTS_OF_KIND: dict[InstrumentKind, tuple[Payout, ...]] = {
    InstrumentKind.PERPETUAL: (Payout.INVERSE, Payout.LINEAR, Payout.QUANTO),
    InstrumentKind.FUTURE: (Payout.INVERSE, Payout.LINEAR, Payout.QUANTO),
    InstrumentKind.SPOT: (Payout.SPOT,),
    InstrumentKind.INDEX: (Payout.NONE,),
}


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One instrument's static configuration; see the module docstring for units and rules."""

    symbol: str
    root_symbol: str
    typ: str
    kind: InstrumentKind
    payout: Payout
    state: str
    underlying: str
    quote_currency: str
    settl_currency: str
    position_currency: str
    base_currency: str
    tick_num: int
    tick_den: int
    lot_size: int
    max_order_qty: int
    max_price_ticks: int
    multiplier: int
    underlying_to_position_multiplier: int | None
    underlying_to_settle_multiplier: int | None
    quote_to_settle_multiplier: int | None
    is_inverse: bool
    is_quanto: bool
    init_margin_ppm: int
    maint_margin_ppm: int
    risk_limit: int
    risk_step: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    settlement_fee_ppm: int
    uses_fee_tiers: bool
    funding_interval_ns: int
    funding_base_symbol: str
    funding_quote_symbol: str
    funding_premium_symbol: str
    listing_ns: int
    expiry_ns: int
    settle_ns: int
    reference_symbol: str
    settlement_index_symbol: str
    trading_hours: TradingHours
    impact_notional: int
    price_band_ppm: int
    index: int
    # How the mark is made (BitMEX markMethod): "FairPrice" (perpetuals: funding basis;
    # futures: impact-mid basis) or "LastPriceProtected" (the last price clamped to
    # price_band_ppm around the index). Spot and indices mark at the index.
    mark_method: str = "FairPrice"

    def __post_init__(self) -> None:
        _check_identity(self)
        _check_grid(self)
        _check_payout(self)
        _check_currencies(self)
        _check_margin_and_fees(self)
        _check_schedule(self)
        _check_value_bounds(self)

    @property
    def is_tradable_kind(self) -> bool:
        """True for perpetuals, futures and spot; False for indices."""
        return self.kind != InstrumentKind.INDEX

    @property
    def is_derivative(self) -> bool:
        return self.kind in (InstrumentKind.PERPETUAL, InstrumentKind.FUTURE)

    @property
    def has_expiry(self) -> bool:
        """True only for dated futures; ``expiry_ns == 0`` means "never"."""
        return self.kind == InstrumentKind.FUTURE


def _check_identity(spec: InstrumentSpec) -> None:
    name = spec.symbol
    invariant(name != "" and spec.root_symbol != "", "instrument needs symbol and root symbol")
    invariant(len(spec.typ) == 6, f"{name}: typ must be a 6-letter BitMEX code: {spec.typ!r}")
    invariant(spec.state in INSTRUMENT_STATES, f"{name}: unknown state {spec.state!r}")
    invariant(spec.payout in _PAYOUTS_OF_KIND[spec.kind], f"{name}: payout does not fit kind")
    is_index = spec.kind == InstrumentKind.INDEX
    invariant(name.startswith(".") == is_index, f"{name}: only indices start with '.'")
    invariant(spec.underlying != "" and spec.quote_currency != "", f"{name}: needs currencies")
    invariant(0 <= spec.index <= INT64_MAX, f"{name}: catalogue index out of range")
    invariant(spec.is_inverse == (spec.payout == Payout.INVERSE), f"{name}: is_inverse")
    invariant(spec.is_quanto == (spec.payout == Payout.QUANTO), f"{name}: is_quanto")
    invariant(spec.reference_symbol.startswith(".") != is_index, f"{name}: reference symbol")


def _check_grid(spec: InstrumentSpec) -> None:
    name = spec.symbol
    invariant(spec.tick_num > 0 and spec.tick_den > 0, f"{name}: tick must be positive")
    invariant(gcd(spec.tick_num, spec.tick_den) == 1, f"{name}: tick fraction not reduced")
    invariant(spec.lot_size > 0, f"{name}: lot size must be positive")
    invariant(0 < spec.max_price_ticks <= INT64_MAX, f"{name}: max price out of range")
    invariant(spec.max_order_qty % spec.lot_size == 0, f"{name}: max order qty not on lot")
    if spec.is_tradable_kind:
        invariant(0 < spec.max_order_qty <= INT64_MAX, f"{name}: max order qty out of range")
    else:
        invariant(spec.max_order_qty == 0, f"{name}: an index has no orders")


def _check_payout(spec: InstrumentSpec) -> None:
    name = spec.symbol
    u2p = spec.underlying_to_position_multiplier
    u2s = spec.underlying_to_settle_multiplier
    q2s = spec.quote_to_settle_multiplier
    if spec.payout == Payout.INVERSE:
        invariant(spec.multiplier < 0, f"{name}: inverse multiplier must be negative")
        settl_minor = currency(spec.settl_currency).minor_per_major
        invariant(u2s == -settl_minor, f"{name}: inverse u2s must be -{settl_minor}")
        invariant(u2p is None and q2s is None, f"{name}: inverse has null u2p and q2s")
    elif spec.payout in (Payout.LINEAR, Payout.SPOT):
        invariant(spec.multiplier > 0, f"{name}: linear multiplier must be positive")
        invariant(q2s == currency(spec.settl_currency).minor_per_major, f"{name}: q2s")
        invariant(q2s == spec.multiplier * _position_multiplier(spec), f"{name}: m * u2p != q2s")
        invariant(u2s is None, f"{name}: linear has null u2s")
    elif spec.payout == Payout.QUANTO:
        invariant(spec.multiplier > 0, f"{name}: quanto multiplier must be positive")
        invariant(u2p is None and u2s is None and q2s is None, f"{name}: quanto multipliers")
    else:
        invariant(spec.multiplier == 0, f"{name}: an index has no multiplier")
        invariant(u2p is None and u2s is None and q2s is None, f"{name}: index multipliers")


def _check_currencies(spec: InstrumentSpec) -> None:
    name = spec.symbol
    if spec.kind == InstrumentKind.INDEX:
        invariant(spec.settl_currency == "", f"{name}: an index settles nothing")
    else:
        invariant(spec.settl_currency in CURRENCIES, f"{name}: settl currency not in ledger")
    if spec.payout != Payout.SPOT:
        invariant(spec.base_currency == "", f"{name}: only spot has a base currency")
        return
    base = currency(spec.base_currency)
    quote = currency(spec.settl_currency)
    invariant(base.code != quote.code, f"{name}: base and quote must differ")
    invariant(base.major == spec.underlying, f"{name}: base must be the underlying")
    invariant(quote.major == spec.quote_currency, f"{name}: settl must be the quote currency")
    u2p = _position_multiplier(spec)
    invariant(base.minor_per_major % u2p == 0, f"{name}: base amount per qty unit not integral")


def _check_margin_and_fees(spec: InstrumentSpec) -> None:
    name = spec.symbol
    if spec.is_derivative:
        invariant(0 < spec.maint_margin_ppm < spec.init_margin_ppm <= PPM, f"{name}: margin rates")
        invariant(0 < spec.risk_limit <= INT64_MAX, f"{name}: risk limit must be positive")
        invariant(0 < spec.risk_step <= INT64_MAX, f"{name}: risk step must be positive")
        invariant(0 < spec.impact_notional <= INT64_MAX, f"{name}: impact notional")
    else:
        invariant(spec.init_margin_ppm == 0 and spec.maint_margin_ppm == 0, f"{name}: margin")
        invariant(spec.risk_limit == 0 and spec.risk_step == 0, f"{name}: risk limit")
        invariant(0 <= spec.impact_notional <= INT64_MAX, f"{name}: impact notional")
    invariant(-PPM < spec.maker_fee_ppm <= spec.taker_fee_ppm < PPM, f"{name}: fee rates")
    invariant(0 <= spec.settlement_fee_ppm < PPM, f"{name}: settlement fee")
    invariant(spec.has_expiry or spec.settlement_fee_ppm == 0, f"{name}: settlement fee")
    invariant(0 <= spec.price_band_ppm < PPM, f"{name}: price band")
    invariant((spec.price_band_ppm > 0) == spec.is_tradable_kind, f"{name}: price band")
    if not spec.is_tradable_kind:
        invariant(spec.maker_fee_ppm == 0 and spec.taker_fee_ppm == 0, f"{name}: index fees")
        invariant(not spec.uses_fee_tiers, f"{name}: an index has no fee tiers")


def _check_schedule(spec: InstrumentSpec) -> None:
    name = spec.symbol
    invariant(0 <= spec.listing_ns <= INT64_MAX, f"{name}: listing time")
    funding_symbols = (
        spec.funding_base_symbol,
        spec.funding_quote_symbol,
        spec.funding_premium_symbol,
    )
    if spec.kind == InstrumentKind.PERPETUAL:
        invariant(
            0 < spec.funding_interval_ns <= INT64_MAX, f"{name}: perpetual needs a funding interval"
        )
        invariant(all(s.startswith(".") for s in funding_symbols), f"{name}: funding symbols")
    else:
        invariant(spec.funding_interval_ns == 0, f"{name}: only perpetuals fund")
        invariant(funding_symbols == ("", "", ""), f"{name}: only perpetuals fund")
    if spec.has_expiry:
        invariant(spec.listing_ns < spec.expiry_ns <= INT64_MAX, f"{name}: expiry time")
        invariant(spec.settle_ns == spec.expiry_ns, f"{name}: settle must equal expiry")
        invariant(spec.settlement_index_symbol.startswith("."), f"{name}: settlement index")
    else:
        invariant(spec.expiry_ns == 0 and spec.settle_ns == 0, f"{name}: 0 means never")
        invariant(spec.settlement_index_symbol == "", f"{name}: only futures settle")


def _check_value_bounds(spec: InstrumentSpec) -> None:
    """One maximal order at the lowest and the highest price must have an int64 value."""
    if not spec.is_tradable_kind:
        return
    for ticks in (1, spec.max_price_ticks):
        num, den = _value_fraction(spec, spec.max_order_qty, ticks * spec.tick_num, spec.tick_den)
        invariant(abs(num) // den <= INT64_MAX, f"{spec.symbol}: order value overflows int64")


def _value_fraction(
    spec: InstrumentSpec, qty: int, price_num: int, price_den: int
) -> tuple[int, int]:
    """Exact value of ``qty`` at ``price_num/price_den`` as (numerator, positive denominator)."""
    if price_den <= 0:
        fail(f"{spec.symbol}: price denominator must be positive")
    if spec.is_inverse:  # a bool field: no IntEnum compare on this hot path
        if price_num <= 0:
            fail(f"{spec.symbol}: inverse value needs a positive price")
        return (qty * spec.multiplier * price_den, price_num)
    if spec.payout == Payout.NONE:
        fail(f"{spec.symbol}: an index has no contract value")
    return (qty * spec.multiplier * price_num, price_den)


def _trunc_div(num: int, den: int) -> int:
    quotient = abs(num) // den
    return quotient if num >= 0 else -quotient


def contract_value_at(spec: InstrumentSpec, qty: int, price_num: int, price_den: int) -> int:
    """Signed value of ``qty`` contracts at the rational price ``price_num/price_den``.

    In settlement minor units, truncated toward zero: linear, quanto and spot ``qty*m*P``;
    inverse ``qty*m/P`` (negative for a long, since m < 0). Used for marks finer than the tick.
    """
    num, den = _value_fraction(spec, qty, price_num, price_den)
    value = _trunc_div(num, den)
    if not INT64_MIN <= value <= INT64_MAX:  # checked_int64 inline: no message built per call
        fail(f"{spec.symbol} contract value does not fit int64: {value}")
    return value


def contract_value(spec: InstrumentSpec, qty: int, price_ticks: int) -> int:
    """Signed value of ``qty`` contracts at ``price_ticks`` (see ``contract_value_at``)."""
    return contract_value_at(spec, qty, price_ticks * spec.tick_num, spec.tick_den)


def pnl(spec: InstrumentSpec, qty: int, entry_ticks: int, exit_ticks: int) -> int:
    """value(exit) - value(entry), each value truncated toward zero as BitMEX does."""
    return contract_value(spec, qty, exit_ticks) - contract_value(spec, qty, entry_ticks)


def _reduced(num: int, den: int) -> tuple[int, int]:
    invariant(den != 0, "rational with zero denominator")
    if den < 0:
        num, den = -num, -den
    divisor = gcd(num, den)
    return (num // divisor, den // divisor)


def home_notional(spec: InstrumentSpec, qty: int, price_ticks: int) -> tuple[int, int]:
    """Size in the underlying's major unit as a reduced (num, den), den > 0; positive if long.

    Linear and spot: qty / underlying_to_position_multiplier. Inverse: value /
    underlying_to_settle_multiplier (XBTUSD: qty / P XBT). Quanto has no underlying size without
    an FX rate; it returns the exact value in settlement major units (ETHUSD: XBT).
    """
    u2p = spec.underlying_to_position_multiplier
    u2s = spec.underlying_to_settle_multiplier
    if spec.payout in (Payout.LINEAR, Payout.SPOT) and u2p is not None:
        return _reduced(qty, u2p)
    if spec.payout == Payout.INVERSE and u2s is not None:
        invariant(price_ticks > 0, f"{spec.symbol}: inverse notional needs a positive price")
        return _reduced(qty * spec.multiplier * spec.tick_den, price_ticks * spec.tick_num * u2s)
    if spec.payout == Payout.QUANTO:
        settl_minor = currency(spec.settl_currency).minor_per_major
        value_num = qty * spec.multiplier * price_ticks * spec.tick_num
        return _reduced(value_num, spec.tick_den * settl_minor)
    fail(f"{spec.symbol}: an index has no notional")


def _position_multiplier(spec: InstrumentSpec) -> int:
    u2p = spec.underlying_to_position_multiplier
    if u2p is None or u2p <= 0:
        fail(f"{spec.symbol}: needs a positive underlying_to_position_multiplier")
    return u2p


def spot_base_amount(spec: InstrumentSpec, qty: int) -> int:
    """Base currency minor units for ``qty`` position units; exact by construction."""
    if spec.payout != Payout.SPOT:
        fail(f"{spec.symbol}: not a spot pair")
    per_unit = currency(spec.base_currency).minor_per_major // _position_multiplier(spec)
    amount = qty * per_unit
    if not INT64_MIN <= amount <= INT64_MAX:
        fail(f"{spec.symbol} base amount does not fit int64: {amount}")
    return amount


def spot_quote_amount(spec: InstrumentSpec, qty: int, price_ticks: int) -> int:
    """Quote (settlement) minor units for ``qty`` at ``price_ticks``, truncated toward zero."""
    if spec.payout != Payout.SPOT:
        fail(f"{spec.symbol}: not a spot pair")
    return contract_value(spec, qty, price_ticks)


class OnGrid(NamedTuple):
    """Result of placing a rational price on the tick grid: ``ticks`` is meaningful iff ``ok``."""

    ok: bool
    ticks: int


def ticks_for(spec: InstrumentSpec, price_num: int, price_den: int) -> OnGrid:
    """Ticks of the price ``price_num/price_den``; ``ok`` is False when it is off the grid."""
    invariant(price_den > 0, f"{spec.symbol}: price denominator must be positive")
    num = price_num * spec.tick_den
    den = price_den * spec.tick_num
    if num % den != 0:
        return OnGrid(ok=False, ticks=0)
    return OnGrid(ok=True, ticks=num // den)


def price_of_ticks(spec: InstrumentSpec, price_ticks: int) -> tuple[int, int]:
    """The price of ``price_ticks`` as a reduced (num, den), den > 0, for formatting."""
    return _reduced(price_ticks * spec.tick_num, spec.tick_den)


def price_ticks_in_range(spec: InstrumentSpec, price_ticks: int) -> bool:
    """True when 0 < price_ticks <= max_price_ticks."""
    return 0 < price_ticks <= spec.max_price_ticks


def qty_on_lot(spec: InstrumentSpec, qty: int) -> bool:
    """True when ``qty`` (either sign) is a whole number of lots."""
    return qty % spec.lot_size == 0


def product_class(spec: InstrumentSpec) -> ProductClass:
    """The product class account restrictions name: spot, crypto derivatives, or TradFi
    perpetuals (derivatives with trading hours)."""
    if spec.kind == InstrumentKind.SPOT:
        return ProductClass.SPOT
    if spec.trading_hours != ALWAYS_OPEN:
        return ProductClass.TRADFI
    return ProductClass.DERIVATIVES
