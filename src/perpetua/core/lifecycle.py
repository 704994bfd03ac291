"""Changing and ending live orders: amend, cancel (by id, clOrdID, all), the cancelAllAfter dead
man's switch, and Day expiry.

Amend priority rule: reducing the quantity keeps the order's place in the queue; changing the
price, or increasing the quantity, sends it to the back (it is taken out and activated again, and
may execute if the new price crosses). Amending the quantity to at or below ``cumQty`` ends the
order (Filled if anything filled, else Canceled). Amends that add exposure pass the same money
check as a new order; a ParticipateDoNotInitiate order amended to cross is cancelled.
"""

from perpetua.core import margin, placement
from perpetua.core.calendar import ALWAYS_OPEN, is_open
from perpetua.core.commands import AmendOrder, CancelAll, CancelOrders
from perpetua.core.emit import book_level
from perpetua.core.enums import (
    ORD_LIMIT,
    ORD_LIMIT_IF_TOUCHED,
    ORD_PEGGED,
    ORD_STOP_LIMIT,
    ExecType,
    OrdStatus,
    PegPriceType,
    TimeInForce,
)
from perpetua.core.events import Event
from perpetua.core.limits import CL_ORD_ID_LENGTH_MAX, TEXT_LENGTH_MAX
from perpetua.core.orders import Order, transition
from perpetua.core.reasons import Reason
from perpetua.core.registry import is_stop_waiting, publish_order, retire, stop_working, unbook
from perpetua.core.state import Account, Market, State

__all__ = ["amend", "cancel", "cancel_all", "expire_day_orders", "find_order", "shrink_working"]


def _priced(ord_type: int) -> bool:
    """Limit, StopLimit, LimitIfTouched or Pegged (plain ints: see enums.SIDE_BUY)."""
    return ord_type in (ORD_LIMIT, ORD_STOP_LIMIT, ORD_LIMIT_IF_TOUCHED, ORD_PEGGED)


def find_order(
    state: State, account: int, order_id: int | None, cl_ord_id: str
) -> tuple[Reason, Order | None]:
    acct = state.accounts.get(account)
    if acct is None:
        return Reason.ORDER_NOT_FOUND, None
    if order_id is None:
        found = acct.cl_ord_ids.get(cl_ord_id) if cl_ord_id else None
        if found is None:
            return Reason.ORDER_NOT_FOUND, None
        order_id = found
    order = acct.orders.get(order_id)
    if order is not None:
        return Reason.OK, order
    if order_id in acct.terminated:
        return Reason.ORDER_STATUS_INVALID, None
    other = state.orders.get(order_id)
    return (Reason.ORDER_NOT_OWNED if other is not None else Reason.ORDER_NOT_FOUND), None


def shrink_working(
    state: State,
    market: Market,
    order: Order,
    leaves: int,
    out: list[Event],
    exec_type: ExecType = ExecType.RESTATED,
) -> None:
    """Reduce a live order's open quantity in place, keeping its queue priority."""
    delta = order.leaves_qty - leaves
    derivative = not market.spot
    visible = min(order.visible_qty, leaves)
    # An L2 delta only when the shown size changes (not for a rename or an iceberg's hidden rest).
    shown_in_book = order.in_book and order.display_qty != 0 and visible != order.visible_qty
    if shown_in_book:
        level = market.book.side(order.side).levels[order.price or 0]
        level.visible_size -= order.visible_qty - visible
    order.visible_qty = visible
    order.leaves_qty = leaves
    order.order_qty -= delta
    if order.working:
        if derivative:
            margin.retrack(state, market, market.position_of(order), order, leaves)
        elif order.hold_amount:
            margin.set_spot_hold(state, market, order)
    if shown_in_book and state.publish:
        out.append(
            book_level(state.ts_ns, market.spec.symbol, order.side, level.price, level.visible_size)
        )
    publish_order(state, out, order, exec_type)


def cancel(state: State, cmd: CancelOrders, out: list[Event]) -> None:
    text = cmd.text or "Canceled via API."
    targets: list[tuple[int | None, str]] = [(oid, "") for oid in cmd.order_ids]
    targets.extend((None, cid) for cid in cmd.cl_ord_ids)
    for order_id, cl_ord_id in targets:
        reason, order = find_order(state, cmd.account, order_id, cl_ord_id)
        if order is None:
            placement.reject(
                state, out, "CancelOrders", cmd.account, reason, cl_ord_id, order_id or 0
            )
            continue
        placement.cancel_order(state, state.markets[order.symbol], order, out, text)


def cancel_all(state: State, cmd: CancelAll, out: list[Event]) -> None:
    acct = state.accounts.get(cmd.account)
    if acct is None:
        return
    if cmd.symbol and cmd.symbol not in state.markets:
        placement.reject(state, out, "CancelAll", cmd.account, Reason.INSTRUMENT_UNKNOWN)
        return
    text = cmd.text or "Canceled via API."
    cancel_account_orders(state, acct, out, text, cmd.symbol, cmd.side)


def cancel_account_orders(
    state: State,
    acct: Account,
    out: list[Event],
    text: str,
    symbol: str = "",
    side: int | None = None,
) -> None:
    chosen = [
        o
        for o in acct.orders.values()
        if (not symbol or o.symbol == symbol) and (side is None or o.side == side)
    ]
    for order in chosen:
        if order.order_id in acct.orders:  # an earlier cancel may have ended a linked one
            placement.cancel_order(state, state.markets[order.symbol], order, out, text)


def expire_day_orders(state: State, out: list[Event]) -> None:
    chosen = [o for o in state.orders.values() if o.time_in_force == TimeInForce.DAY]
    for order in chosen:
        if order.order_id in state.orders:
            placement.cancel_order(
                state,
                state.markets[order.symbol],
                order,
                out,
                "Expired: Day order",
                OrdStatus.EXPIRED,
            )


def _amend_reason(state: State, market: Market, order: Order, cmd: AmendOrder) -> Reason:
    spec = market.spec
    changes = (cmd.order_qty, cmd.leaves_qty, cmd.price, cmd.stop_px, cmd.peg_offset, cmd.text)
    if all(c is None for c in changes) and not cmd.cl_ord_id:
        return Reason.AMEND_NOTHING_TO_CHANGE
    if cmd.order_qty is not None and cmd.leaves_qty is not None:
        return Reason.QTY_MUST_BE_POSITIVE
    if market.hours is not ALWAYS_OPEN and not is_open(market.hours, state.ts_ns):
        return Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS  # closed: cancel only (core.tradfi)
    if cmd.cl_ord_id:
        if len(cmd.cl_ord_id) > CL_ORD_ID_LENGTH_MAX:
            return Reason.CL_ORD_ID_TOO_LONG
        if cmd.cl_ord_id in state.account(order.account).cl_ord_ids:
            return Reason.CL_ORD_ID_DUPLICATE
    if cmd.text is not None and len(cmd.text) > TEXT_LENGTH_MAX:
        return Reason.TEXT_TOO_LONG
    if cmd.price is not None:
        if not _priced(order.ord_type):
            return Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE
        if cmd.price <= 0 or cmd.price > spec.max_price_ticks:
            return Reason.PRICE_MUST_BE_POSITIVE if cmd.price <= 0 else Reason.PRICE_ABOVE_MAX
    if cmd.stop_px is not None:
        if not is_stop_waiting(order):
            return Reason.STOP_PX_INVALID_FOR_ORD_TYPE
        if cmd.stop_px <= 0 or cmd.stop_px > spec.max_price_ticks:
            return Reason.PRICE_MUST_BE_POSITIVE
    if cmd.peg_offset is not None:
        if order.peg_price_type != PegPriceType.TRAILING_STOP_PEG or not is_stop_waiting(order):
            return Reason.PEG_PRICE_TYPE_INVALID
        if not placement.trailing_offset_ok(order.ord_type, order.side, cmd.peg_offset):
            return Reason.PEG_OFFSET_SIGN_INVALID
    qty = _new_order_qty(order, cmd)
    if qty is not None and qty > order.cum_qty:
        if qty % spec.lot_size:
            return Reason.QTY_MUST_BE_MULTIPLE_OF_LOT
        if qty > spec.max_order_qty:
            return Reason.QTY_ABOVE_MAX
    return Reason.OK


def _new_order_qty(order: Order, cmd: AmendOrder) -> int | None:
    if cmd.order_qty is not None:
        return cmd.order_qty
    if cmd.leaves_qty is not None:
        return order.cum_qty + cmd.leaves_qty
    return None


def amend(state: State, cmd: AmendOrder, out: list[Event]) -> None:
    reason, order = find_order(state, cmd.account, cmd.order_id, cmd.orig_cl_ord_id)
    if order is None:
        placement.reject(
            state, out, "AmendOrder", cmd.account, reason, cmd.orig_cl_ord_id, cmd.order_id or 0
        )
        return
    market = state.markets[order.symbol]
    reason = _amend_reason(state, market, order, cmd)
    if reason:
        placement.reject(
            state, out, "AmendOrder", cmd.account, reason, order.cl_ord_id, order.order_id
        )
        return
    qty = _new_order_qty(order, cmd)
    if qty is not None and qty <= order.cum_qty:
        _amend_to_end(state, market, order, out)
        return
    _apply_plain_fields(state, order, cmd)
    new_leaves = order.leaves_qty if qty is None else qty - order.cum_qty
    price = order.price if cmd.price is None else cmd.price
    requeue = price != order.price or new_leaves > order.leaves_qty
    if not order.working or not requeue:
        _amend_in_place(state, market, order, cmd, new_leaves, price, out)
        return
    _amend_requeue(state, market, order, new_leaves, price, out)


def _apply_plain_fields(state: State, order: Order, cmd: AmendOrder) -> None:
    if cmd.text is not None:
        order.text = cmd.text
    if cmd.cl_ord_id:
        acct = state.account(order.account)
        if order.cl_ord_id and acct.cl_ord_ids.get(order.cl_ord_id) == order.order_id:
            del acct.cl_ord_ids[order.cl_ord_id]
        order.cl_ord_id = cmd.cl_ord_id
        acct.cl_ord_ids[cmd.cl_ord_id] = order.order_id


def _amend_to_end(state: State, market: Market, order: Order, out: list[Event]) -> None:
    if order.cum_qty == 0:
        placement.cancel_order(state, market, order, out, "Canceled: amended to zero")
        return
    stop_working(state, market, order, out)
    order.order_qty = order.cum_qty
    order.leaves_qty = 0
    order.visible_qty = 0
    order.working = False
    transition(order, OrdStatus.FILLED)
    publish_order(state, out, order, ExecType.REPLACED)
    retire(state, market, order)


def _amend_in_place(
    state: State,
    market: Market,
    order: Order,
    cmd: AmendOrder,
    new_leaves: int,
    price: int | None,
    out: list[Event],
) -> None:
    """Waiting orders (untriggered or OTO-held) and size-down amends of working ones."""
    if not order.working:
        order.order_qty += new_leaves - order.leaves_qty
        order.leaves_qty = new_leaves
        order.visible_qty = (
            new_leaves if order.display_qty is None else min(order.display_qty, new_leaves)
        )
        order.price = price
        if _priced(order.ord_type):
            order.limit_price = price
        if cmd.stop_px is not None:
            order.stop_px = cmd.stop_px
        if cmd.peg_offset is not None:
            # A new offset re-pegs the stop to the reference now, either way it moves (the
            # trail only ever tightens it afterwards); stopPx sent with it is overruled.
            order.peg_offset = cmd.peg_offset
            order.stop_px = placement.trailing_start(market, order) or order.stop_px
        transition(order, order.status)
        publish_order(state, out, order, ExecType.REPLACED)
        return
    shrink_working(state, market, order, new_leaves, out, ExecType.REPLACED)


def _amend_requeue(
    state: State,
    market: Market,
    order: Order,
    new_leaves: int,
    price: int | None,
    out: list[Event],
) -> None:
    spec = market.spec
    if not market.spot and price is not None:
        pos = market.position_of(order)
        add = market.value_abs(new_leaves, price)
        reason, required = margin.requirement_after(
            state, market, pos, order.side, add, order.margin_value
        )
        if reason != Reason.OK and order.account > 0:
            placement.reject(
                state,
                out,
                "AmendOrder",
                order.account,
                reason,
                order.cl_ord_id,
                order.order_id,
                required,
                spec.settl_currency,
            )
            return
    elif market.spot and not _spot_amend_fits(state, market, order, new_leaves, price, out):
        return
    unbook(state, market, order, out)  # margin stays counted until the order is re-tracked
    order.order_qty += new_leaves - order.leaves_qty
    order.leaves_qty = new_leaves
    order.visible_qty = (
        new_leaves if order.display_qty is None else min(order.display_qty, new_leaves)
    )
    order.price = price
    order.limit_price = price
    transition(order, order.status)
    publish_order(state, out, order, ExecType.REPLACED)
    placement.activate(state, market, order, out)


def _spot_amend_fits(
    state: State,
    market: Market,
    order: Order,
    new_leaves: int,
    price: int | None,
    out: list[Event],
) -> bool:
    old = (order.leaves_qty, order.limit_price)
    order.leaves_qty, order.limit_price = new_leaves, price
    taker_ppm = margin.taker_rate_ppm(state, market, order.account)
    currency, need = margin.spot_hold(market.spec, order, taker_ppm)
    order.leaves_qty, order.limit_price = old
    have = state.ledger.available(order.account, currency) + order.hold_amount
    if need <= have:
        return True
    placement.reject(
        state,
        out,
        "AmendOrder",
        order.account,
        Reason.BALANCE_INSUFFICIENT,
        order.cl_ord_id,
        order.order_id,
        need,
        currency,
    )
    return False
