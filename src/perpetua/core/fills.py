"""One execution between a resting maker and an incoming taker: orders, money and positions.

Derivatives: the fill's value ``v = contract_value(qty signed for the taker, price)`` is computed
once; the taker's execCost is ``v`` and the maker's ``-v``, so the sum of all position costs
changes only by realised PnL, which moves between the account and ``CLEARING``. A position that
is reduced releases ``ceil(cost * closed / |qty|)`` of its cost (rounding keeps the payout at or
below the exact figure); a flip opens the rest at the fill's value (``v - v_close``, exact).
A realised loss larger than the account can pay is covered by the insurance fund
(``BANKRUPTCY_COVER``), so user balances never go negative.

Spot: the buyer pays the quote amount to the seller and receives the base amount; both pay their
fee in the quote currency (the buyer on top, the seller out of the proceeds). Holds are released
before the transfers and re-computed from the remaining quantity after them.

Fees: charged after the trade's money moves; a fee the account cannot cover is capped at what it
has (published as the execution's ``exec_comm``); a rebate is paid by ``FEES`` up to its balance.
"""

from perpetua.core import margin
from perpetua.core.emit import trade
from perpetua.core.enums import ExecType, Liquidity, OrdStatus
from perpetua.core.events import Event
from perpetua.core.fees import fee_amount, fee_rates_ppm
from perpetua.core.instruments import (
    spot_base_amount,
    spot_quote_amount,
)
from perpetua.core.invariant import fail
from perpetua.core.ledger import CLEARING, FEES, INSURANCE, Cell, Ledger, TransferCode
from perpetua.core.orders import Order, transition
from perpetua.core.state import Market, Position, State
from perpetua.core.units import mul_div_ceil

__all__ = ["apply_position_fill", "realise", "realise_cell", "settle_fill"]


def apply_position_fill(market: Market, pos: Position, qty: int, value: int, price: int) -> int:
    """Add a signed fill of ``qty`` contracts worth ``value`` to ``pos``; return realised PnL."""
    held = pos.qty
    if held == 0 or (held > 0) == (qty > 0):
        pos.qty = held + qty
        pos.cost += value
        return 0
    held_abs = held if held > 0 else -held
    qty_abs = qty if qty > 0 else -qty
    closed = min(held_abs, qty_abs)
    cost_closed = pos.cost if closed == held_abs else mul_div_ceil(pos.cost, closed, held_abs)
    if closed == qty_abs:
        value_closed = value
    else:
        value_closed = market.value(closed if qty > 0 else -closed, price)
    realised = -value_closed - cost_closed
    if closed == held_abs:
        pos.open_comm = 0
    elif pos.open_comm:
        pos.open_comm -= pos.open_comm * closed // held_abs
    pos.cost = pos.cost - cost_closed + (value - value_closed)
    pos.qty = held + qty
    pos.realised_pnl += realised
    return realised


def _charge(
    ledger: Ledger, out: list[Event], ts: int, cell: Cell, fees: Cell, amount: int, ref: int
) -> int:
    """Charge a fee (amount > 0) from ``cell`` to ``fees`` or pay a rebate (amount < 0) from
    ``fees``; return what actually moved."""
    if amount > 0:
        available = cell.balance - cell.held
        if available < amount:
            amount = available
        if amount > 0:
            ledger.move(out, ts, cell, fees, amount, TransferCode.TRADE_FEE, ref)
        return amount
    if amount < 0:
        rebate = fees.balance if fees.balance < -amount else -amount
        if rebate > 0:
            ledger.move(out, ts, fees, cell, rebate, TransferCode.TRADE_REBATE, ref)
        return -rebate
    return 0


def realise(
    state: State, out: list[Event], account: int, currency: str, pnl: int, ref: int
) -> None:
    """Move realised PnL between ``account`` and CLEARING (see ``realise_cell``)."""
    if pnl:
        ledger = state.ledger
        realise_cell(
            ledger,
            out,
            state.ts_ns,
            ledger.cell(account, currency),
            ledger.cell(CLEARING, currency),
            pnl,
            ref,
        )


def realise_cell(
    ledger: Ledger, out: list[Event], ts: int, cell: Cell, clearing: Cell, pnl: int, ref: int
) -> None:
    """Move realised PnL between ``cell`` and ``clearing``. A user's loss beyond what it has is
    covered by the insurance fund; the insurance fund's own positions settle with it directly."""
    if pnl > 0:
        ledger.move(out, ts, clearing, cell, pnl, TransferCode.REALISED_PNL, ref)
        return
    if pnl == 0:
        return
    loss = -pnl
    if cell.account == INSURANCE:
        ledger.move(out, ts, cell, clearing, loss, TransferCode.REALISED_PNL, ref)
        return
    available = cell.balance - cell.held
    paid = loss if loss < available else available
    if paid > 0:
        ledger.move(out, ts, cell, clearing, paid, TransferCode.REALISED_PNL, ref)
    if loss > paid:
        insurance = ledger.cell(INSURANCE, cell.currency)
        ledger.move(out, ts, insurance, clearing, loss - paid, TransferCode.BANKRUPTCY_COVER, ref)


def _fill_order(order: Order, qty: int, price: int) -> None:
    order.leaves_qty -= qty
    order.cum_qty += qty
    order.cum_px_qty += qty * price
    transition(order, OrdStatus.FILLED if order.leaves_qty == 0 else OrdStatus.PARTIALLY_FILLED)


def _derivative_money(
    state: State,
    market: Market,
    taker: Order,
    maker: Order,
    qty: int,
    price: int,
    rates: tuple[int, int],
    match_id: int,
    out: list[Event],
) -> tuple[int, int, int, int]:
    spec = market.spec
    currency = spec.settl_currency
    # Market.value: contract_value with the fractions reduced once per market (equal, tested)
    value = market.value(qty if taker.side > 0 else -qty, price)
    value_abs = value if value >= 0 else -value
    taker_pos = market.position_of(taker)
    maker_pos = market.position_of(maker)
    maker_held = maker_pos.qty
    taker_held = taker_pos.qty
    ledger = state.ledger
    ts = state.ts_ns
    # The cells are found once per fill (ledger "Cells"), not once per transfer.
    taker_cell = ledger.cell(taker.account, currency)
    maker_cell = ledger.cell(maker.account, currency)
    clearing = ledger.cell(CLEARING, currency)
    taker_qty = qty if taker.side > 0 else -qty
    realised = apply_position_fill(market, maker_pos, -taker_qty, -value, price)
    realise_cell(ledger, out, ts, maker_cell, clearing, realised, match_id)
    state.touched_positions[(spec.symbol, maker_pos.account)] = maker_pos
    realised = apply_position_fill(market, taker_pos, taker_qty, value, price)
    realise_cell(ledger, out, ts, taker_cell, clearing, realised, match_id)
    state.touched_positions[(spec.symbol, taker_pos.account)] = taker_pos
    maker_rate, taker_rate = rates
    fees = ledger.cell(FEES, currency)
    taker_comm = _charge(
        ledger, out, ts, taker_cell, fees, fee_amount(value_abs, taker_rate), match_id
    )
    maker_comm = _charge(
        ledger, out, ts, maker_cell, fees, fee_amount(value_abs, maker_rate), match_id
    )
    _add_open_comm(taker_pos, taker_held, qty, taker_comm)
    _add_open_comm(maker_pos, maker_held, qty, maker_comm)
    return value, value_abs, taker_comm, maker_comm


def _add_open_comm(pos: Position, held: int, qty: int, comm: int) -> None:
    """Count the share of a fill's fee that opened contracts (``held``: |position| before the
    fill of ``qty`` contracts; a fill that only reduces opens nothing)."""
    if not comm:
        return
    now = pos.qty
    after = now if now >= 0 else -now
    if (held > 0 > now) or (held < 0 < now):
        opened = after  # a flip: what is held now was opened by this fill
    else:
        before = held if held >= 0 else -held
        opened = after - before if after > before else 0
    if opened:
        pos.open_comm += comm * opened // qty


def _rates(state: State, market: Market, maker_account: int, taker_account: int) -> tuple[int, int]:
    maker_acct = state.account(maker_account)
    taker_acct = state.account(taker_account)
    # The operator's discount or the staking tier's, whichever is larger (core.staking).
    maker_discount = max(maker_acct.discount_ppm, maker_acct.staking_discount_ppm)
    taker_discount = max(taker_acct.discount_ppm, taker_acct.staking_discount_ppm)
    maker_rate = fee_rates_ppm(market.spec, maker_acct.fee_tier, maker_discount)[0]
    taker_rate = fee_rates_ppm(market.spec, taker_acct.fee_tier, taker_discount)[1]
    # The liquidation engine (the insurance fund's account) trades without fees.
    return (0 if maker_account < 0 else maker_rate), (0 if taker_account < 0 else taker_rate)


def _spot_money(
    state: State,
    market: Market,
    taker: Order,
    maker: Order,
    qty: int,
    price: int,
    rates: tuple[int, int],
    match_id: int,
    out: list[Event],
) -> tuple[int, int, int, int]:
    spec = market.spec
    ledger = state.ledger
    quote_cur, base_cur = spec.settl_currency, spec.base_currency
    quote = spot_quote_amount(spec, qty, price)
    base = spot_base_amount(spec, qty)
    buyer, seller = (taker, maker) if taker.side > 0 else (maker, taker)
    for order in (buyer, seller):
        currency = quote_cur if order.side > 0 else base_cur
        ledger.hold(order.account, currency, -order.hold_amount)
        order.hold_amount = 0
    ts = state.ts_ns
    if quote > 0:
        ledger.transfer(
            out,
            ts,
            buyer.account,
            seller.account,
            quote_cur,
            quote,
            TransferCode.SPOT_QUOTE,
            match_id,
        )
    if base > 0:
        ledger.transfer(
            out, ts, seller.account, buyer.account, base_cur, base, TransferCode.SPOT_BASE, match_id
        )
    maker_rate, taker_rate = rates
    fees = ledger.cell(FEES, quote_cur)
    taker_comm = _charge(
        ledger,
        out,
        ts,
        ledger.cell(taker.account, quote_cur),
        fees,
        fee_amount(quote, taker_rate),
        match_id,
    )
    maker_comm = _charge(
        ledger,
        out,
        ts,
        ledger.cell(maker.account, quote_cur),
        fees,
        fee_amount(quote, maker_rate),
        match_id,
    )
    value = quote if taker.side > 0 else -quote
    return value, quote, taker_comm, maker_comm


def settle_fill(
    state: State, market: Market, taker: Order, maker: Order, qty: int, out: list[Event]
) -> None:
    """Execute ``qty`` between ``taker`` and resting ``maker`` at the maker's price.

    The caller has taken the maker's tracked margin out and puts it back afterwards, and owns
    the book (visible sizes, removal, L2 events)."""
    price = maker.price
    if price is None or qty <= 0:
        fail("fill needs a resting price and a positive quantity")
    match_id = state.new_exec_id()
    _fill_order(taker, qty, price)
    _fill_order(maker, qty, price)
    spec = market.spec
    rates = _rates(state, market, maker.account, taker.account)
    maker_rate, taker_rate = rates
    if market.spot:
        value, value_abs, taker_comm, maker_comm = _spot_money(
            state, market, taker, maker, qty, price, rates, match_id, out
        )
    else:
        value, value_abs, taker_comm, maker_comm = _derivative_money(
            state, market, taker, maker, qty, price, rates, match_id, out
        )
    ts = state.ts_ns
    maker_exec_id = state.new_exec_id()
    taker_exec_id = state.new_exec_id()
    if state.publish:  # off in recovery: ids are still taken (see registry.publish_order)
        out.append(
            maker.to_event(
                ts, ExecType.TRADE, maker_exec_id, qty, price, match_id, -value, maker_comm,
                maker_rate, Liquidity.MAKER,
            )
        )  # fmt: skip
        out.append(
            taker.to_event(
                ts, ExecType.TRADE, taker_exec_id, qty, price, match_id, value, taker_comm,
                taker_rate, Liquidity.TAKER,
            )
        )  # fmt: skip
        out.append(
            trade(
                ts, spec.symbol, match_id, taker.side, qty, price, value_abs, maker.account,
                taker.account, maker.order_id, taker.order_id,
            )
        )  # fmt: skip
    market.last_price = price
    if market.spot:
        margin.set_spot_hold(state, market, taker)
        margin.set_spot_hold(state, market, maker)
