"""Pre-trade money checks: spot holds and the derivatives margin requirement.

Spot: an open buy order holds its quote amount at its limit price plus the taker fee on it at
the instrument's base taker rate (the highest any account pays); an open sell holds its base
amount. Holds are re-computed from ``leaves_qty`` after every change, so they never drift.

Derivatives: a position's requirement is its position margin (``risk.position_margin``: posInit
at the position's leverage or tier, the reserved closing fee, added deposit) plus the initial
margin of its working orders. With ``p`` the position's signed absolute cost and ``B``/``S`` the
absolute value of working buy/sell orders at their prices, the orders need
``ceil((max(|p + B|, |p - S|) - |p|) * (initMarginReq + takerFee))``: only the exposure the
orders could add beyond the position, so orders that only reduce it need no margin. The account
may open or amend an order if the sum of its requirements in the settlement currency stays within
its margin balance (wallet, less spot holds, plus unrealised PnL at the mark), or if the order
does not increase the requirement. The exposure may not pass the position's risk limit.
Untriggered stops use no margin (BitMEX) until they trigger.

Rounding: requirements round up (``mul_div_ceil``).
"""

from perpetua.core.instruments import (
    InstrumentSpec,
    spot_base_amount,
    spot_quote_amount,
)
from perpetua.core.orders import Order
from perpetua.core.reasons import Reason
from perpetua.core.risk import (
    PositionMargin,
    TierRates,
    orders_margin,
    position_margin,
    tier_rates,
)
from perpetua.core.state import Account, Market, Position, RequirementMemo, State
from perpetua.core.units import PPM, mul_div_ceil

__all__ = [
    "account_unrealised_pnl",
    "derivative_requirement",
    "exposure_of",
    "tier_of",
    "funding_paid_ppb",
    "position_figures",
    "unrealised_pnl",
    "refresh_requirement",
    "requirement_after",
    "set_spot_hold",
    "spot_hold",
    "taker_rate_ppm",
    "retrack",
]


def funding_paid_ppb(market: Market, qty: int) -> int:
    """The next funding rate's magnitude if a position of ``qty`` pays it, else 0."""
    rate = market.funding.rate_ppb
    if (rate > 0 and qty > 0) or (rate < 0 and qty < 0):
        return rate if rate > 0 else -rate
    return 0


def tier_of(market: Market, pos: Position) -> TierRates:
    """The margin rates of ``pos``'s risk limit (memoised per market)."""
    rates = market.tiers.get(pos.risk_limit)
    if rates is None:
        rates = tier_rates(market.spec, pos.risk_limit)
        market.tiers[pos.risk_limit] = rates
    return rates


def position_figures(market: Market, pos: Position) -> PositionMargin:
    """``risk.position_margin`` of ``pos``, memoised on the position: recomputed only when an
    input changed (its cost, risk limit, leverage, deposit or the funding it pays); the
    instrument's taker fee is fixed per market, and so are the rates of a risk limit
    (``tier_of``'s memo only grows), so a hit needs no dictionary lookup."""
    value = pos.cost if pos.cost >= 0 else -pos.cost
    funding = funding_paid_ppb(market, pos.qty)
    memo = pos.memo
    if (
        memo is not None
        and pos.memo_value == value
        and pos.memo_risk_limit == pos.risk_limit
        and pos.memo_leverage_e2 == pos.leverage_e2
        and pos.memo_funding_ppb == funding
        and pos.memo_deposit == pos.deposit
    ):
        return memo
    rates = market.tiers.get(pos.risk_limit)  # tier_of's memo, read inline: a hot path
    if rates is None:
        rates = tier_of(market, pos)
    memo = position_margin(
        value, rates, pos.leverage_e2, market.spec.taker_fee_ppm, funding, pos.deposit
    )
    pos.memo = memo
    pos.memo_risk_limit = pos.risk_limit
    pos.memo_value = value
    pos.memo_leverage_e2 = pos.leverage_e2
    pos.memo_funding_ppb = funding
    pos.memo_deposit = pos.deposit
    return memo


def exposure_of(pos: Position, buy_value: int, sell_value: int) -> int:
    """Largest absolute value the position could reach if every order on one side filled."""
    value = pos.cost if pos.cost >= 0 else -pos.cost
    signed = value if pos.qty >= 0 else -value
    long_side = signed + buy_value
    short_side = signed - sell_value
    if long_side < 0:
        long_side = -long_side
    if short_side < 0:
        short_side = -short_side
    return long_side if long_side > short_side else short_side


def derivative_requirement(market: Market, pos: Position, buy_value: int, sell_value: int) -> int:
    """Position margin plus the margin of working orders (see the module docstring).

    The market remembers its last answer (``Market.requirement_memo``): an amend asks twice
    with the same inputs, once to check the money and once when the order is tracked again.
    The deposit, leverage, tier and funding are in ``figures`` (a new object when they change:
    ``position_figures``), so the position, its figures, qty, cost and the two sums are the key.
    """
    if pos.cost == 0 and pos.deposit == 0 and pos.qty == 0 and buy_value == sell_value == 0:
        return 0
    figures = position_figures(market, pos)
    memo = market.requirement_memo
    if (
        memo is not None
        and memo.position is pos
        and memo.figures is figures
        and memo.buy_value == buy_value
        and memo.sell_value == sell_value
        and memo.qty == pos.qty
        and memo.cost == pos.cost
    ):
        return memo.requirement
    orders = orders_margin(
        pos.qty, pos.cost, buy_value, sell_value, figures.init_ppm, market.spec.taker_fee_ppm
    )
    if pos.cost == 0 and pos.deposit == 0 and pos.qty == 0:
        requirement = orders  # no position: only the orders' margin
    else:
        requirement = figures.pos_margin + orders
    if memo is None:
        market.requirement_memo = RequirementMemo(
            pos, figures, pos.qty, pos.cost, buy_value, sell_value, requirement
        )
    else:  # refilled in place: no allocation per call
        memo.position = pos
        memo.figures = figures
        memo.qty = pos.qty
        memo.cost = pos.cost
        memo.buy_value = buy_value
        memo.sell_value = sell_value
        memo.requirement = requirement
    return requirement


def unrealised_pnl(market: Market, pos: Position) -> int:
    """Value at the mark minus cost; 0 without a position or a mark."""
    mark = market.mark_fine
    if pos.qty == 0 or mark is None or mark <= 0:
        return 0
    return market.value_fine(pos.qty, mark) - pos.cost


def account_unrealised_pnl(state: State, account: int, currency: str) -> int:
    total = 0
    for symbol, pos in state.account_positions.get(account, {}).items():
        market = state.markets[symbol]
        if pos.qty and market.spec.settl_currency == currency:
            total += unrealised_pnl(market, pos)
    return total


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
    if market.spot:
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
    if market.spot:
        return
    new = derivative_requirement(market, pos, pos.buy_value, pos.sell_value)
    old = pos.margin_required
    if new != old:
        pos.margin_required = new
        acct: Account = state.account(pos.account)
        totals = acct.margin_required
        totals[spec.settl_currency] = totals.get(spec.settl_currency, 0) + new - old
        if state.publish:  # the working orders' margin may have moved: published after apply
            state.order_margins_changed[pos] = None


def requirement_after(
    state: State, market: Market, pos: Position, side: int, add_value: int, drop_value: int
) -> tuple[Reason, int]:
    """Would adding ``add_value`` (and dropping ``drop_value``) of working orders on ``side``
    fit the risk limit and the account's margin? Returns ``(reason, total required)`` in the
    settlement currency; ``Reason.OK`` when it fits."""
    spec = market.spec
    buy, sell = pos.buy_value, pos.sell_value
    if side > 0:
        buy += add_value - drop_value
    else:
        sell += add_value - drop_value
    new = derivative_requirement(market, pos, buy, sell)
    acct = state.account(pos.account)
    currency = spec.settl_currency
    total = acct.margin_required.get(currency, 0) - pos.margin_required + new
    if new <= pos.margin_required:
        return Reason.OK, total
    if exposure_of(pos, buy, sell) > pos.risk_limit:
        return Reason.RISK_LIMIT_EXCEEDED, total
    ledger = state.ledger
    balance = ledger.available(pos.account, currency)
    balance += account_unrealised_pnl(state, pos.account, currency)
    return (Reason.OK if total <= balance else Reason.BALANCE_INSUFFICIENT), total
