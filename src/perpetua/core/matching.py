"""Matching an incoming (taker) order against the book, in price-time priority.

The taker walks the opposite side from the best price while the level's price is within its
``limit_price``. Within a level, displayed orders (iceberg tranches included) match first in time
order, then hidden ones. A consumed iceberg tranche is refilled from the order's hidden rest and
goes to the back of the level's displayed queue. A resting AllOrNone order is skipped unless the
taker can fill all of it; the taker's rest must then not rest across it (``crosses_all_or_none``).

ReduceOnly and Close orders execute at most the position they close, so they never increase or
flip it: a maker with no room left is skipped (the follow-up of executions cancels it), and a
taker with no room left ends matching (``REDUCE_ONLY``; the caller cancels its rest).

Self-trade prevention (documented policy "cancel taker"): when the taker reaches a resting order
of its own account, matching stops and the caller cancels the taker's remaining quantity; the
resting order is untouched.

Bounds: at most ``LEVELS_WALKED_MAX`` levels and ``MATCHES_PER_ORDER_MAX`` resting orders per
taker; reaching either ends matching as if liquidity ran out (the remainder is handled by the
taker's time in force).
"""

from enum import IntEnum

from perpetua.core import margin
from perpetua.core.book import BookSide, Level
from perpetua.core.emit import book_level
from perpetua.core.enums import ExecInst, OrdStatus
from perpetua.core.events import Event
from perpetua.core.fills import settle_fill
from perpetua.core.invariant import fail
from perpetua.core.limits import LEVELS_WALKED_MAX, MATCHES_PER_ORDER_MAX
from perpetua.core.orders import Order
from perpetua.core.registry import retire
from perpetua.core.state import Market, State

__all__ = [
    "MatchEnd",
    "crosses",
    "crosses_all_or_none",
    "fillable_qty",
    "match",
    "reduce_only_room",
]


class MatchEnd(IntEnum):
    EXHAUSTED = 0  # filled, or no more liquidity within the limit
    SELF_TRADE = 1
    WALK_LIMIT = 2
    REDUCE_ONLY = 3  # a ReduceOnly or Close taker has closed all it may


def crosses(side: int, limit: int, price: int) -> bool:
    return price <= limit if side > 0 else price >= limit


def reduce_only_room(market: Market, order: Order) -> int:
    """What ``order`` may still execute: its open quantity, capped for ReduceOnly and Close at
    the position it closes (0 when the position is flat or on the order's side)."""
    if not order.reduce_only:
        return order.leaves_qty
    pos = market.positions.get(order.account)
    held = 0 if pos is None else pos.qty
    if held == 0 or (held > 0) == (order.side > 0):
        return 0
    return min(order.leaves_qty, abs(held))


def crosses_all_or_none(market: Market, order: Order) -> bool:
    """True when resting ``order`` at its limit would cross a resting AllOrNone order (always
    hidden) that it could not take. Bounded walk from the opposite best price."""
    limit = order.limit_price
    if limit is None:
        return False
    opposite = market.book.opposite(order.side)
    if opposite.all_or_none_count == 0:
        return False
    for level in opposite.iter_levels(LEVELS_WALKED_MAX):
        if not crosses(order.side, limit, level.price):
            return False
        if any(m.exec_inst & ExecInst.ALL_OR_NONE for m in level.hidden.values()):
            return True
    return False


def _level_at(book_side: BookSide, skip: int) -> Level | None:
    prices = book_side.prices
    if skip >= len(prices):
        return None
    price = prices[-1 - skip] if book_side.is_bid else prices[skip]
    return book_side.levels[price]


def match(
    state: State, market: Market, taker: Order, out: list[Event], executed: dict[int, Order]
) -> MatchEnd:
    limit = taker.limit_price
    if limit is None:
        fail("taker without a limit price")
    opposite = market.book.opposite(taker.side)
    skip = 0
    budget = [MATCHES_PER_ORDER_MAX]
    for _ in range(LEVELS_WALKED_MAX):
        if taker.leaves_qty == 0:
            return MatchEnd.EXHAUSTED
        level = _level_at(opposite, skip)
        if level is None or not crosses(taker.side, limit, level.price):
            return MatchEnd.EXHAUSTED
        end = _match_level(state, market, taker, opposite, level, out, executed, budget)
        if end is not None:
            return end
        if level.price in opposite.levels and opposite.levels[level.price] is level:
            skip += 1  # only orders the taker may not take remain here
    return MatchEnd.WALK_LIMIT


def _match_level(
    state: State,
    market: Market,
    taker: Order,
    opposite: BookSide,
    level: Level,
    out: list[Event],
    executed: dict[int, Order],
    budget: list[int],
) -> MatchEnd | None:
    progressed = True
    while taker.leaves_qty > 0 and progressed:
        progressed = False
        for maker in (*level.shown.values(), *level.hidden.values()):
            if taker.leaves_qty == 0:
                break
            if not maker.in_book:
                continue
            if maker.account == taker.account:
                return MatchEnd.SELF_TRADE
            room = reduce_only_room(market, taker)
            if room == 0:
                return MatchEnd.REDUCE_ONLY
            available = maker.leaves_qty if maker.display_qty == 0 else maker.visible_qty
            qty = min(room, available, reduce_only_room(market, maker))
            if qty == 0 or (maker.exec_inst & ExecInst.ALL_OR_NONE and qty < maker.leaves_qty):
                continue
            _execute(state, market, taker, maker, qty, opposite, level, out)
            executed[maker.order_id] = maker
            executed[taker.order_id] = taker
            progressed = True
            budget[0] -= 1
            if budget[0] <= 0:
                return MatchEnd.WALK_LIMIT
            if maker.in_book and taker.leaves_qty:
                break  # e.g. a refilled tranche went behind this pass: restart at the head
        if not (level.shown or level.hidden):
            break
    return None


def _execute(
    state: State,
    market: Market,
    taker: Order,
    maker: Order,
    qty: int,
    opposite: BookSide,
    level: Level,
    out: list[Event],
) -> None:
    shown = maker.display_qty != 0
    if shown:
        maker.visible_qty -= qty
        level.visible_size -= qty
    settle_fill(state, market, taker, maker, qty, out)
    pos = market.position_of(maker)
    if maker.status == OrdStatus.FILLED:
        opposite.remove(maker)
        margin.retrack(state, market, pos, maker, 0)
        retire(state, market, maker)
    else:
        if shown and maker.visible_qty == 0:
            display = maker.display_qty
            refill = maker.leaves_qty if display is None else min(display, maker.leaves_qty)
            maker.visible_qty = refill
            level.visible_size += refill
            opposite.requeue(maker, level)
        margin.retrack(state, market, pos, maker, maker.leaves_qty)
    if shown:
        size = level.visible_size if level.price in opposite.levels else 0
        if state.publish:
            out.append(book_level(state.ts_ns, market.spec.symbol, maker.side, level.price, size))


def fillable_qty(market: Market, taker: Order, want: int) -> int:
    """How much of ``want`` could fill now within the taker's limit, ignoring the taker's own
    orders' effect (self-trade stops matching, so they count as a wall). Bounded walk."""
    limit = taker.limit_price
    if limit is None:
        return 0
    opposite = market.book.opposite(taker.side)
    total = 0
    for level in opposite.iter_levels(LEVELS_WALKED_MAX):
        if not crosses(taker.side, limit, level.price):
            break
        ahead = 0
        for maker in level.shown.values():
            if maker.account == taker.account:
                # Icebergs ahead of the taker's own order refill behind it: only their
                # current tranche is reachable before self-trade prevention stops the taker.
                return min(want, total + ahead)
            ahead += maker.visible_qty
        total += sum(maker.leaves_qty for maker in level.shown.values())
        if total >= want:
            return want
        for maker in level.hidden.values():
            if maker.account == taker.account:
                return total
            if maker.exec_inst & ExecInst.ALL_OR_NONE and want - total < maker.leaves_qty:
                continue
            total += maker.leaves_qty
            if total >= want:
                return want
    return total
