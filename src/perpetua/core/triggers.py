"""Conditional orders: stop triggers, trailing stops, and the follow-up of executions
(OneCancelsTheOther, OneTriggersTheOther, ReduceOnly upkeep).

Trigger direction: Stop/StopLimit buys and MarketIfTouched/LimitIfTouched sells *rise*-trigger
(reference >= stopPx); Stop/StopLimit sells and MIT/LIT buys *fall*-trigger (reference <=
stopPx). The reference is the order's source (MarkPrice by default, LastPrice, IndexPrice),
compared exactly in millionths of a tick. LastWithinMark additionally needs last within
``LAST_WITHIN_MARK_BAND_PPM`` of mark on the right side.

Trailing stops (TrailingStopPeg) move with their reference on every price change: a
fall-triggered stop follows the price up (stopPx = max(stopPx, ref + offset)), a rise-triggered
one follows it down; they never move back. (BitMEX re-prices once a second after a 0.1% move; we
re-price on every reference change, which is deterministic and at least as protective.)

Orders that trigger in one pass are processed in the order they were placed (their ids), and the
pass repeats while executions move prices, at most ``TRIGGER_ROUNDS_MAX`` times per command.
"""

from perpetua.core import lifecycle, placement
from perpetua.core.calendar import ALWAYS_OPEN, is_open
from perpetua.core.enums import (
    ContingencyType,
    ExecInst,
    ExecType,
    OrdStatus,
    OrdType,
    TriggerSource,
)
from perpetua.core.events import Event
from perpetua.core.limits import LAST_WITHIN_MARK_BAND_PPM, TRIGGER_ROUNDS_MAX
from perpetua.core.orders import Order
from perpetua.core.registry import publish_order
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, State
from perpetua.core.units import PPM, mul_div_floor

__all__ = ["follow_up", "run_triggers"]

_RISES_FOR_BUY = (OrdType.STOP, OrdType.STOP_LIMIT)


def _rises(order: Order) -> bool:
    """True when ``order`` triggers as the reference rises to its stopPx."""
    stop_like = order.ord_type in _RISES_FOR_BUY
    return stop_like == (order.side > 0)


def _last_within_mark(market: Market, order: Order) -> bool:
    if not order.exec_inst & ExecInst.LAST_WITHIN_MARK:
        return True
    mark, last = market.mark_fine, market.last_price
    if mark is None or last is None:
        return False
    last_fine = last * PRICE_FINE_PER_TICK
    band = mul_div_floor(mark, LAST_WITHIN_MARK_BAND_PPM, PPM)
    return last_fine <= mark + band if order.side > 0 else last_fine >= mark - band


def _should_trigger(market: Market, order: Order, reference: int) -> bool:
    stop = order.stop_px
    if stop is None:
        return False
    stop_fine = stop * PRICE_FINE_PER_TICK
    hit = reference >= stop_fine if _rises(order) else reference <= stop_fine
    return hit and _last_within_mark(market, order)


def _trail(state: State, market: Market, out: list[Event]) -> None:
    for order in list(market.trailing.values()):
        reference = market.reference_fine(order.trigger_source)
        offset = order.peg_offset
        if reference is None or offset is None:
            continue
        target = max(1, reference // PRICE_FINE_PER_TICK + offset)
        stop = order.stop_px
        if stop is None or (target < stop if _rises(order) else target > stop):
            order.stop_px = target
            publish_order(state, out, order, ExecType.RESTATED)


def _due(market: Market) -> list[Order]:
    due: list[Order] = []
    for source in TriggerSource:
        waiting = market.stops[source]
        if not waiting:
            continue
        reference = market.reference_fine(source)
        if reference is None:
            continue
        due.extend(o for o in waiting.values() if _should_trigger(market, o, reference))
    due.sort(key=lambda o: o.order_id)
    return due


def _trigger(state: State, market: Market, order: Order, out: list[Event]) -> None:
    market.stops[order.trigger_source].pop(order.order_id, None)
    market.trailing.pop(order.order_id, None)
    market.position_of(order).stop_orders_count -= 1
    order.triggered = True
    order.working = True  # BitMEX: a triggered order reports workingIndicator true
    # Clip before publishing, so the Triggered row carries the quantity that will work.
    reducible = not order.reduce_only or _clip_reduce_only(market, order)
    publish_order(state, out, order, ExecType.TRIGGERED)
    if order.contingency_type == ContingencyType.ONE_CANCELS_THE_OTHER:
        _cancel_siblings(state, order, out)
    if not reducible:
        placement.cancel_order(
            state, market, order, out, "Canceled: ReduceOnly order would have increased position"
        )
        return
    order.limit_price = placement._limit_price(market, order)
    if not placement._money_ok(state, market, order, []):
        placement.cancel_order(
            state, market, order, out, "Canceled: insufficient margin when triggered"
        )
        return
    placement.activate(state, market, order, out)


def _clip_reduce_only(market: Market, order: Order) -> bool:
    """Shrink a triggered reduce-only order to the position; False if nothing to reduce."""
    pos = market.positions.get(order.account)
    held = 0 if pos is None else pos.qty
    if held == 0 or (held > 0) == (order.side > 0):
        return False
    if order.leaves_qty > abs(held):
        order.order_qty -= order.leaves_qty - abs(held)
        order.leaves_qty = abs(held)
        order.visible_qty = min(order.visible_qty, order.leaves_qty)
    return True


def run_triggers(state: State, market: Market, out: list[Event]) -> None:
    if market.hours is not ALWAYS_OPEN and not is_open(market.hours, state.ts_ns):
        return  # a closed market triggers nothing; stops wait for the reopening (core.tradfi)
    for _ in range(TRIGGER_ROUNDS_MAX):
        if market.trailing:
            _trail(state, market, out)
        due = _due(market)
        if not due:
            return
        for order in due:
            if order.order_id in state.orders and not order.triggered:
                _trigger(state, market, order, out)
        follow_up(state, out)


def _cancel_siblings(state: State, order: Order, out: list[Event]) -> None:
    acct = state.account(order.account)
    for sibling_id in list(acct.links.get(order.cl_ord_link_id, ())):
        sibling = state.orders.get(sibling_id)
        if sibling is None or sibling is order:
            continue
        market = state.markets[sibling.symbol]
        placement.cancel_order(
            state, market, sibling, out, "Canceled: OneCancelsTheOther sibling executed"
        )


def _release_followers(state: State, order: Order, out: list[Event]) -> None:
    acct = state.account(order.account)
    for follower_id in list(acct.links.get(order.cl_ord_link_id, ())):
        follower = state.orders.get(follower_id)
        if follower is None or not follower.held_by_link:
            continue
        follower.held_by_link = False
        market = state.markets[follower.symbol]
        follower.limit_price = placement._limit_price(market, follower)
        if not placement._money_ok(state, market, follower, []):
            placement.cancel_order(
                state, market, follower, out, "Canceled: insufficient margin when released"
            )
            continue
        follower.working = True
        publish_order(state, out, follower, ExecType.TRIGGERED)
        placement.activate(state, market, follower, out)


def follow_up(state: State, out: list[Event]) -> None:
    """Linked-order and reduce-only consequences of this command's executions."""
    for _ in range(TRIGGER_ROUNDS_MAX):
        executed = state.executed
        if not executed:
            return
        state.executed = {}
        touched: dict[tuple[str, int], None] = {}
        for order in executed.values():
            touched[(order.symbol, order.account)] = None
            if order.contingency_type == ContingencyType.ONE_CANCELS_THE_OTHER:
                _cancel_siblings(state, order, out)
            elif (
                order.contingency_type == ContingencyType.ONE_TRIGGERS_THE_OTHER
                and order.status == OrdStatus.FILLED
                and not order.held_by_link
            ):
                _release_followers(state, order, out)
        for symbol, account in touched:
            enforce_reduce_only(state, state.markets[symbol], account, out)


def enforce_reduce_only(state: State, market: Market, account: int, out: list[Event]) -> None:
    """Working ReduceOnly orders never exceed the position: the least aggressive are amended
    down (Restated) or cancelled; ones on the side that would increase it are cancelled."""
    acct = state.accounts.get(account)
    if acct is None or account not in market.reduce_only_counts:
        return
    reducing = [
        o
        for o in acct.orders.values()
        if o.symbol == market.spec.symbol and o.reduce_only and o.working
    ]
    if not reducing:
        return
    pos = market.positions.get(account)
    held = 0 if pos is None else pos.qty
    closing_side = -1 if held > 0 else 1
    # Most aggressive first: highest bid, lowest offer; then time priority.
    reducing.sort(key=lambda o: ((o.limit_price or 0) * -o.side, o.order_id))
    room = abs(held)
    for order in reducing:
        if held == 0 or order.side != closing_side or room == 0:
            placement.cancel_order(
                state,
                market,
                order,
                out,
                "Canceled: ReduceOnly order would have increased position",
            )
            continue
        if order.leaves_qty > room:
            lifecycle.shrink_working(state, market, order, room, out)
        room -= order.leaves_qty
