"""Pre-trade money checks: spot holds and the basic derivatives margin requirement.

Spot: an open buy order holds its quote amount at its limit price plus the taker fee on it at
the instrument's base taker rate (the highest any account pays); an open sell holds its base
amount. Holds are re-computed from ``leaves_qty`` after every change, so
they never drift.

Derivatives (basic model; the risk engine refines it with leverage, isolated margin, risk limits
and mark-to-market): per account and market, with ``p`` the position's signed absolute cost and
``B``/``S`` the absolute value of working buy/sell orders at their prices, the requirement is
``ceil(max(|p + B|, |p - S|) * (initMargin + takerFee) / 1e6)`` — the worst exposure if every
order on one side filled, at initial margin plus the fee to close it. Orders that only reduce the
position therefore need no margin. An order or amend is accepted if the account's total
requirement in the settlement currency stays within its available balance, or does not grow.
Untriggered stops use no margin (BitMEX) until they trigger.

Rounding: requirements round up (``mul_div_ceil``).
"""

from perpetua.core.instruments import (
    InstrumentSpec,
    Payout,
    contract_value,
    spot_base_amount,
    spot_quote_amount,
)
from perpetua.core.orders import Order
from perpetua.core.state import Account, Market, Position, State
from perpetua.core.units import PPM, mul_div_ceil

__all__ = [
    "derivative_requirement",
    "order_value",
    "refresh_requirement",
    "requirement_after",
    "set_spot_hold",
    "spot_hold",
    "taker_rate_ppm",
    "retrack",
]


def order_value(spec: InstrumentSpec, qty: int, price: int) -> int:
    """Absolute value of ``qty`` contracts at ``price`` ticks, settlement minor units."""
    value = contract_value(spec, qty, price)
    return value if value >= 0 else -value


def derivative_requirement(spec: InstrumentSpec, pos: Position, buy_value: int,
                           sell_value: int) -> int:
    cost = pos.cost if pos.cost >= 0 else -pos.cost
    signed = cost if pos.qty >= 0 else -cost
    long_side = signed + buy_value
    short_side = signed - sell_value
    if long_side < 0:
        long_side = -long_side
    if short_side < 0:
        short_side = -short_side
    exposure = long_side if long_side > short_side else short_side
    taker = spec.taker_fee_ppm
    rate = spec.init_margin_ppm + (taker if taker > 0 else 0)
    return -(-exposure * rate // PPM)  # ceil: margin rounds up


def spot_hold(spec: InstrumentSpec, order: Order, taker_ppm: int) -> tuple[str, int]:
    """(currency, amount) that ``order``'s open quantity must hold."""
    if order.side > 0:
        price = order.limit_price
        if price is None or order.leaves_qty == 0:
            return spec.settl_currency, 0
        quote = spot_quote_amount(spec, order.leaves_qty, price)
        fee = mul_div_ceil(quote, max(taker_ppm, 0), PPM)
        return spec.settl_currency, quote + fee
    return spec.base_currency, spot_base_amount(spec, order.leaves_qty)


def taker_rate_ppm(state: State, market: Market, account: int) -> int:
    """The taker rate a spot hold reserves: the instrument's base rate, which no account's rate
    exceeds (tiers and discounts only lower it). Not the account's own rate: that changes with
    SetFeeTier/SetFeeDiscount while orders rest, and a hold recomputed at a higher rate after a
    partial fill might not fit the balance."""
    return market.spec.taker_fee_ppm


def set_spot_hold(state: State, market: Market, order: Order) -> None:
    """Re-compute ``order``'s hold from its open quantity (the old hold is already released
    when ``order.hold_amount`` is 0)."""
    spec = market.spec
    currency, amount = spot_hold(spec, order, taker_rate_ppm(state, market, order.account))
    delta = amount - order.hold_amount
    if delta:
        state.ledger.hold(order.account, currency, delta)
    order.hold_amount = amount


def retrack(state: State, market: Market, pos: Position, order: Order, open_qty: int) -> None:
    """Make ``pos``'s buy/sell sums count ``open_qty`` of ``order`` at its limit price (0 to
    stop counting it), then refresh the requirement. Spot orders hold balances instead."""
    if market.spec.payout == Payout.SPOT:
        return
    price = order.limit_price
    if price is None:
        open_qty = 0
    value = market.value_abs(open_qty, price) if open_qty and price is not None else 0
    delta_qty = open_qty - order.margin_qty
    delta_value = value - order.margin_value
    if delta_qty == 0 and delta_value == 0:
        return
    if order.side > 0:
        pos.buy_qty += delta_qty
        pos.buy_value += delta_value
    else:
        pos.sell_qty += delta_qty
        pos.sell_value += delta_value
    order.margin_qty = open_qty
    order.margin_value = value
    refresh_requirement(state, market, pos)


def refresh_requirement(state: State, market: Market, pos: Position) -> None:
    """Recompute ``pos``'s requirement and fold the change into its account's total."""
    spec = market.spec
    if spec.payout == Payout.SPOT:
        return
    new = derivative_requirement(spec, pos, pos.buy_value, pos.sell_value)
    old = pos.margin_required
    if new != old:
        pos.margin_required = new
        acct: Account = state.account(pos.account)
        totals = acct.margin_required
        totals[spec.settl_currency] = totals.get(spec.settl_currency, 0) + new - old


def requirement_after(
    state: State, market: Market, pos: Position, side: int, add_value: int, drop_value: int
) -> tuple[bool, int]:
    """Would adding ``add_value`` (and dropping ``drop_value``) of working orders on ``side``
    fit? Returns ``(ok, total required)`` in the settlement currency."""
    spec = market.spec
    buy, sell = pos.buy_value, pos.sell_value
    if side > 0:
        buy += add_value - drop_value
    else:
        sell += add_value - drop_value
    new = derivative_requirement(spec, pos, buy, sell)
    acct = state.account(pos.account)
    currency = spec.settl_currency
    total = acct.margin_required.get(currency, 0) - pos.margin_required + new
    if new <= pos.margin_required:
        return True, total
    balance = state.ledger.balance(pos.account, currency)
    held = state.ledger.held_amount(pos.account, currency)
    return total <= balance - held, total
