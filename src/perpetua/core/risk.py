"""Position margin arithmetic, exactly as BitMEX documents it (reference §3 Position, §7.2–§7.4).

All amounts are settlement-currency minor units; rates are ppm (margins, fees) or ppb (funding).
With ``value`` the position's absolute cost (|currentCost|):

* risk tier ``n``: the number of ``riskStep``s the chosen ``riskLimit`` is above the base limit;
  ``initMarginReq = IM + n*MM`` and ``maintMarginReq = MM*(1+n)`` (§7.3);
* isolated leverage ``L`` (hundredths, 1..10_000): ``posInit = ceil(value / L)``, at least the
  tier's initial margin; cross (``L = 0``): the tier's initial margin;
* ``posComm = ceil((value + posInit) * takerFee)``: the fee reserved to close at bankruptcy;
* ``posMargin = posInit + posComm + deposit`` (margin added with ``transferMargin``);
* ``posMaint = ceil(value * maintMarginReq) + posComm + ceil(value * |fundingRate|)`` when the
  position pays the next funding, else without the last term.

These reproduce the published ETHUSDT sample to the unit (posInit 13 086 667, posComm 39 261,
posMargin 13 125 928, posMaint 435 787). Every rounding is up: margins protect solvency.

Bankruptcy and liquidation are *values*: the position is bankrupt when its value at the mark
falls to ``cost - (posMargin - posComm)`` (the margin at risk is lost) and liquidated when it
falls to ``cost - (posMargin - posMaint)``. Because a position's value rises with the price for
longs and falls for shorts on every payout type (inverse included: value = qty*m/P with m < 0),
a long is liquidated when mark <= its liquidation price and a short when mark >= it. Prices
round away from the position's side when published (longs up, shorts down), so a published
liquidation price is never beyond the true one; trigger thresholds are kept in millionths of a
tick and round the same way.

Funding rates and premium indices are fixed to ``FUNDING_RATE_STEP_PPB`` (a millionth, BitMEX's
six published decimals) half away from zero (``fixed_funding_rate_ppb``, ``premium_average_ppb``;
``core.funding`` says why): the read side recomputes the published ``.XBTUSDPI8H`` with them.
"""

from typing import Final, NamedTuple

from perpetua.core.emit import NEW
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.invariant import invariant
from perpetua.core.units import PPM

__all__ = [
    "ADL_BUCKETS",
    "FUNDING_PPB",
    "FUNDING_RATE_STEP_PPB",
    "LEVERAGE_E2_MAX",
    "LEVERAGE_E2_MIN",
    "LEVERAGE_SCALE",
    "PositionMargin",
    "TierRates",
    "adl_rank",
    "closing_fee",
    "fixed_funding_rate_ppb",
    "initial_margin",
    "leverage_max_e2",
    "orders_margin",
    "position_margin",
    "premium_average_ppb",
    "price_for_value_fine",
    "required_risk_limit",
    "tier_rates",
]

FUNDING_RATE_STEP_PPB = 1_000  # one millionth: BitMEX publishes funding rates to six decimals
LEVERAGE_SCALE = 100  # leverage is kept in hundredths: 300 = 3x, 10_000 = 100x
LEVERAGE_E2_MIN = 1  # 0.01x
LEVERAGE_E2_MAX = 10_000  # 100x
FUNDING_PPB = 1_000_000_000  # funding rates are parts per billion
ADL_BUCKETS = 5  # the ADL queue is published in fifths, as BitMEX's indicator lights


def _ceil_div(num: int, den: int) -> int:
    return -(-num // den)


class TierRates(NamedTuple):
    step: int  # n: steps above the base risk limit
    init_ppm: int
    maint_ppm: int


def tier_rates(spec: InstrumentSpec, risk_limit: int) -> TierRates:
    """Margin requirements for a chosen risk limit (§7.3)."""
    base, step = spec.risk_limit, spec.risk_step
    n = 0 if risk_limit <= base or step <= 0 else _ceil_div(risk_limit - base, step)
    maint = spec.maint_margin_ppm
    return TierRates(n, spec.init_margin_ppm + n * maint, maint * (1 + n))


def required_risk_limit(spec: InstrumentSpec, exposure: int) -> int:
    """The smallest limit ``base + n*step`` that covers ``exposure`` (settlement minor units)."""
    base, step = spec.risk_limit, spec.risk_step
    if exposure <= base or step <= 0:
        return base
    return base + _ceil_div(exposure - base, step) * step


def leverage_max_e2(spec: InstrumentSpec, risk_limit: int) -> int:
    """Maximum leverage (hundredths) allowed by the tier: floor(1 / initMarginReq)."""
    init = tier_rates(spec, risk_limit).init_ppm
    return max(LEVERAGE_E2_MIN, PPM * LEVERAGE_SCALE // init) if init > 0 else LEVERAGE_E2_MAX


class PositionMargin(NamedTuple):
    pos_init: int
    pos_comm: int
    pos_margin: int
    pos_maint: int
    init_ppm: int  # the effective initial margin requirement (max of 1/L and the tier's)
    maint_ppm: int


_POSITION_MARGIN: Final = PositionMargin  # a C static in the compiled core (emit.py, 1)


def initial_margin(value: int, rates: TierRates, leverage_e2: int) -> int:
    """``posInit``: the tier's initial margin, at least ``value / leverage`` when isolated."""
    pos_init = _ceil_div(value * rates.init_ppm, PPM)
    if leverage_e2:
        by_leverage = _ceil_div(value * LEVERAGE_SCALE, leverage_e2)
        if by_leverage > pos_init:
            return by_leverage
    return pos_init


def orders_margin(
    qty: int, cost: int, buy_value: int, sell_value: int, init_ppm: int, taker_fee_ppm: int
) -> int:
    """Initial margin of a position's working orders (``core.margin``'s rule, the one place
    it is written): only the exposure they could add beyond the position (signed quantity
    ``qty``, cost ``cost``), ``ceil(extra x (initMarginReq + max(takerFee, 0)))``, where
    ``extra = max(|p + B|, |p - S|) - |p|`` for the position's signed absolute cost ``p`` and the
    absolute values ``B``/``S`` of working buys/sells at their prices. Orders that only reduce
    the position need none."""
    value = cost if cost >= 0 else -cost
    signed = value if qty >= 0 else -value
    long_side = signed + buy_value
    short_side = signed - sell_value
    if long_side < 0:
        long_side = -long_side
    if short_side < 0:
        short_side = -short_side
    extra = (long_side if long_side > short_side else short_side) - value
    if extra <= 0:
        return 0
    rate = init_ppm + (taker_fee_ppm if taker_fee_ppm > 0 else 0)
    return -(-extra * rate // PPM)


def closing_fee(value: int, pos_init: int, taker_fee_ppm: int) -> int:
    """``posComm``: the taker fee on closing at the bankruptcy price, ``(value + posInit)``."""
    return _ceil_div((value + pos_init) * taker_fee_ppm, PPM) if taker_fee_ppm > 0 else 0


def position_margin(
    value: int,
    rates: TierRates,
    leverage_e2: int,
    taker_fee_ppm: int,
    funding_ppb_paid: int,
    deposit: int,
) -> PositionMargin:
    """Margin figures of a position of absolute cost ``value``.

    ``leverage_e2`` 0 means cross; ``funding_ppb_paid`` is the next funding rate's magnitude
    when this position pays it (0 when it receives or there is none)."""
    invariant(value >= 0 and deposit >= 0 and funding_ppb_paid >= 0, "negative margin input")
    init_ppm = rates.init_ppm
    pos_init = initial_margin(value, rates, leverage_e2)
    if leverage_e2:
        invariant(LEVERAGE_E2_MIN <= leverage_e2 <= LEVERAGE_E2_MAX, "leverage out of range")
        init_ppm = max(init_ppm, _ceil_div(PPM * LEVERAGE_SCALE, leverage_e2))
    pos_comm = closing_fee(value, pos_init, taker_fee_ppm)
    funding = _ceil_div(value * funding_ppb_paid, FUNDING_PPB)
    pos_maint = _ceil_div(value * rates.maint_ppm, PPM) + pos_comm + funding
    # emit.NEW, not PositionMargin(...): a NamedTuple's __new__ is an interpreted frame even
    # from compiled code (see emit.py); this runs once per fill.
    return NEW(
        _POSITION_MARGIN,
        (pos_init, pos_comm, pos_init + pos_comm + deposit, pos_maint, init_ppm, rates.maint_ppm),
    )


def _mul_div_positive(x: int, y: int, den: int, round_up: bool) -> int:
    """``x * y / den`` rounded up or down, for positive ``x``, ``y``, ``den``, exactly, without
    forming ``x * y``: with ``x = q * den + r``, ``x * y / den = q * y + r * y / den`` and
    ``r * y < den * y``. The product of a position's size and the fine-price scale passes 62
    bits, where the compiled core's ints leave machine words for Python objects; the split
    keeps every intermediate near the result or the operands (about 2 k instructions a call
    before, on the bench streams)."""
    if x < y:
        x, y = y, x
    whole = x // den  # not divmod(): the compiled core boxes its operands and its tuple
    part = (x - whole * den) * y
    if round_up:
        return whole * y - (-part // den)
    return whole * y + part // den


def price_for_value_fine(
    spec: InstrumentSpec, qty: int, value: int, fine_per_tick: int, round_up: bool
) -> int | None:
    """The price, in ``1/fine_per_tick`` ticks, at which ``qty`` contracts are worth ``value``
    (signed, BitMEX convention), rounded up or down; None when no positive price has that
    value (e.g. a margin larger than the position's whole value on an inverse short)."""
    invariant(qty != 0, "price of an empty position")
    # Both payouts: a positive price gives a value of the sign of qty * multiplier (inverse:
    # value = qty*m/P; linear: value = qty*m*P); any other value has no positive price.
    if value == 0 or (value > 0) != (qty * spec.multiplier > 0):
        return None
    size = qty if qty > 0 else -qty
    worth = value if value > 0 else -value
    multiplier = spec.multiplier if spec.multiplier > 0 else -spec.multiplier
    if spec.is_inverse:  # a bool field: no IntEnum compare on this hot path
        # P = qty*m / value, in fine ticks: qty*m*tick_den*fine / (value*tick_num)
        return _mul_div_positive(
            size, multiplier * spec.tick_den * fine_per_tick, worth * spec.tick_num, round_up
        )
    # P = value / (qty*m), in fine ticks: value*tick_den*fine / (qty*m*tick_num)
    return _mul_div_positive(
        worth, spec.tick_den * fine_per_tick, size * multiplier * spec.tick_num, round_up
    )


def adl_rank(cost: int, mark_value: int, bankrupt_value: int) -> int:
    """BitMEX's deleveraging rank (§7.5), in millionths: ``PnL% x effective leverage`` when in
    profit, else ``PnL% / effective leverage``, with ``PnL% = (markValue - cost) / |cost|`` and
    ``effective leverage = |markValue| / (markValue - bankruptValue)`` (the margin left at the
    mark; at least one unit). Values are signed as ``currentCost``; higher ranks go first."""
    upnl = mark_value - cost
    pnl_ppm = upnl * PPM // max(1, abs(cost))
    equity = mark_value - bankrupt_value  # uPnL + the margin lost at bankruptcy
    leverage_ppm = max(1, abs(mark_value) * PPM // max(1, equity))
    return pnl_ppm * leverage_ppm // PPM if pnl_ppm > 0 else pnl_ppm * PPM // leverage_ppm


def _round_half_away(num: int, den: int) -> int:
    """``num / den`` (den > 0) to the nearest integer, halves away from zero."""
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((-2 * num + den) // (2 * den))


def fixed_funding_rate_ppb(rate_ppb: int) -> int:
    """A funding rate or premium (ppb) fixed to the published step, halves away from zero."""
    step = FUNDING_RATE_STEP_PPB
    return _round_half_away(rate_ppb, step) * step


def premium_average_ppb(premium_sum_ppb: int, premium_count: int) -> int:
    """The interval's average premium (``.XBTUSDPI8H``) to the step; 0 before any sample."""
    if premium_count <= 0:
        return 0
    step = FUNDING_RATE_STEP_PPB
    return _round_half_away(premium_sum_ppb, premium_count * step) * step
