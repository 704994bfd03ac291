"""Where live orders are indexed, and how they enter and leave core state.

An order is *registered* when accepted (order id, clOrdID, link group, per-position counts) and
*retired* when it reaches a terminal status. A retired order's id and clOrdID stay in the
account's bounded ``terminated`` memory (``TERMINATED_ORDERS_RETAINED_MAX``, oldest forgotten
first) so an amend or cancel of it answers "Invalid ordStatus" and a reused clOrdID answers
"Duplicate clOrdID" while it is remembered.

Resting and working orders are also *tracked* in their position's buy/sell sums (margin) or
hold their spot balance; ``stop_working`` undoes both and takes the order out of the book,
publishing the L2 change.
"""

from perpetua.core import margin
from perpetua.core.emit import book_level
from perpetua.core.enums import (
    ORD_LIMIT_IF_TOUCHED,
    ORD_MARKET_IF_TOUCHED,
    ORD_STOP,
    ORD_STOP_LIMIT,
    TERMINAL_STATUSES,
    ContingencyType,
    ExecType,
)
from perpetua.core.events import Event
from perpetua.core.invariant import invariant
from perpetua.core.limits import TERMINATED_ORDERS_RETAINED_MAX
from perpetua.core.orders import Order
from perpetua.core.state import Market, State

__all__ = [
    "is_stop_waiting",
    "is_triggered_type",
    "publish_order",
    "register",
    "retire",
    "start_working",
    "stop_working",
    "unbook",
]


def is_triggered_type(ord_type: int) -> bool:
    """Stop, StopLimit, MarketIfTouched or LimitIfTouched (plain ints: see enums.SIDE_BUY)."""
    return ord_type in (ORD_STOP, ORD_STOP_LIMIT, ORD_MARKET_IF_TOUCHED, ORD_LIMIT_IF_TOUCHED)


def is_stop_waiting(order: Order) -> bool:
    return is_triggered_type(order.ord_type) and not order.triggered


def publish_order(state: State, out: list[Event], order: Order, exec_type: ExecType) -> None:
    """Publish ``order``'s row as it is now. The exec id is taken even when events are not built
    (``state.publish`` off, recovery): ids are state, and a replay must number as the run did."""
    exec_id = state.new_exec_id()
    if state.publish:
        out.append(order.to_event(state.ts_ns, exec_type, exec_id))


def register(state: State, market: Market, order: Order) -> None:
    acct = state.account(order.account)
    state.orders[order.order_id] = order
    acct.orders[order.order_id] = order
    if order.cl_ord_id:
        acct.cl_ord_ids[order.cl_ord_id] = order.order_id
    if order.cl_ord_link_id and order.contingency_type != ContingencyType.NONE:
        acct.links.setdefault(order.cl_ord_link_id, []).append(order.order_id)
    pos = market.position(order.account)
    order.position = pos
    pos.open_orders_count += 1
    if order.reduce_only:
        counts = market.reduce_only_counts
        counts[order.account] = counts.get(order.account, 0) + 1
    if is_stop_waiting(order):
        pos.stop_orders_count += 1


def retire(state: State, market: Market, order: Order) -> None:
    """Drop a terminal order from live state; it must no longer be working or waiting."""
    invariant(order.status in TERMINAL_STATUSES, "retire needs a terminal order")
    invariant(
        not order.in_book and order.hold_amount == 0 and order.margin_qty == 0,
        "retired order still holds book, balance or margin",
    )
    acct = state.account(order.account)
    del state.orders[order.order_id]
    del acct.orders[order.order_id]
    link = order.cl_ord_link_id
    if link and link in acct.links:
        members = acct.links[link]
        members.remove(order.order_id)
        if not members:
            del acct.links[link]
    pos = market.position_of(order)
    order.position = None
    pos.open_orders_count -= 1
    if order.reduce_only:
        counts = market.reduce_only_counts
        left = counts[order.account] - 1
        if left:
            counts[order.account] = left
        else:
            del counts[order.account]
    if is_triggered_type(order.ord_type) and not order.triggered:
        pos.stop_orders_count -= 1
    for source_orders in market.stops.values():
        source_orders.pop(order.order_id, None)
    market.trailing.pop(order.order_id, None)
    terminated = acct.terminated
    terminated[order.order_id] = order.cl_ord_id
    if len(terminated) > TERMINATED_ORDERS_RETAINED_MAX:
        oldest = next(iter(terminated))
        cl_ord_id = terminated.pop(oldest)
        if cl_ord_id and acct.cl_ord_ids.get(cl_ord_id) == oldest:
            del acct.cl_ord_ids[cl_ord_id]
    market.drop_position_if_empty(pos)


def start_working(state: State, market: Market, order: Order, rest: bool, out: list[Event]) -> None:
    """Count ``order`` in margin or holds; with ``rest``, also put it in the book."""
    spec = market.spec
    pos = market.position_of(order)
    if market.spot:
        margin.set_spot_hold(state, market, order)
    else:
        margin.retrack(state, market, pos, order, order.leaves_qty)
    if rest:
        display = order.display_qty
        order.visible_qty = order.leaves_qty if display is None else min(display, order.leaves_qty)
        level = market.book.side(order.side).add(order)
        if order.display_qty != 0 and state.publish:
            out.append(
                book_level(state.ts_ns, spec.symbol, order.side, level.price, level.visible_size)
            )


def unbook(state: State, market: Market, order: Order, out: list[Event]) -> None:
    """Take ``order`` out of the book (if there), publishing the L2 change; margin and holds
    are left as they are."""
    if order.in_book:
        book_side = market.book.side(order.side)
        level = book_side.remove(order)
        if order.display_qty != 0 and state.publish:
            size = level.visible_size if level.price in book_side.levels else 0
            out.append(book_level(state.ts_ns, market.spec.symbol, order.side, level.price, size))


def stop_working(state: State, market: Market, order: Order, out: list[Event]) -> None:
    """Undo ``start_working`` for the order's current open quantity."""
    spec = market.spec
    unbook(state, market, order, out)
    if market.spot:
        if order.hold_amount:
            currency = spec.settl_currency if order.side > 0 else spec.base_currency
            state.ledger.hold(order.account, currency, -order.hold_amount)
            order.hold_amount = 0
    elif order.margin_qty:
        margin.retrack(state, market, market.position_of(order), order, 0)
