"""Matching an incoming (taker) order against the book, in price-time priority.

The taker walks the opposite side from the best price while the level's price is within its
``limit_price``. Within a level, displayed orders (iceberg tranches included) match first in time
order, then hidden ones. A consumed iceberg tranche is refilled from the order's hidden rest and
goes to the back of the level's displayed queue. A resting AllOrNone order is skipped unless the
taker can fill all of it.

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
from perpetua.core.enums import ExecInst, OrdStatus
from perpetua.core.events import BookLevel
from perpetua.core.fills import settle_fill
from perpetua.core.instruments import Payout
from perpetua.core.invariant import fail
from perpetua.core.limits import LEVELS_WALKED_MAX, MATCHES_PER_ORDER_MAX
from perpetua.core.orders import Order
from perpetua.core.registry import retire
from perpetua.core.state import Market, State

__all__ = ["MatchEnd", "crosses", "fillable_qty", "match"]


class MatchEnd(IntEnum):
    EXHAUSTED = 0  # filled, or no more liquidity within the limit
    SELF_TRADE = 1
    WALK_LIMIT = 2


def crosses(side: int, limit: int, price: int) -> bool:
    return price <= limit if side > 0 else price >= limit


def _level_at(book_side: BookSide, skip: int) -> Level | None:
    prices = book_side.prices
    if skip >= len(prices):
        return None
    price = prices[-1 - skip] if book_side.is_bid else prices[skip]
    return book_side.levels[price]


def match(state: State, market: Market, taker: Order, out: list[object],
          executed: dict[int, Order]) -> MatchEnd:
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


def _match_level(state: State, market: Market, taker: Order, opposite: BookSide, level: Level,
                 out: list[object], executed: dict[int, Order], budget: list[int]
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
            if maker.exec_inst & ExecInst.ALL_OR_NONE and taker.leaves_qty < maker.leaves_qty:
                continue
            available = maker.leaves_qty if maker.display_qty == 0 else maker.visible_qty
            qty = min(taker.leaves_qty, available)
            _execute(state, market, taker, maker, qty, opposite, level, out)
            executed[maker.order_id] = maker
            executed[taker.order_id] = taker
            progressed = True
            budget[0] -= 1
            if budget[0] <= 0:
                return MatchEnd.WALK_LIMIT
        if not (level.shown or level.hidden):
            break
    return None


def _execute(state: State, market: Market, taker: Order, maker: Order, qty: int,
             opposite: BookSide, level: Level, out: list[object]) -> None:
    derivative = market.spec.payout != Payout.SPOT
    pos = market.position(maker.account)
    if derivative:
        margin.untrack_working(market, pos, maker)
    shown = maker.display_qty != 0
    if shown:
        maker.visible_qty -= qty
        level.visible_size -= qty
    settle_fill(state, market, taker, maker, qty, out)
    if maker.status == OrdStatus.FILLED:
        opposite.remove(maker)
        retire(state, market, maker)
    else:
        if shown and maker.visible_qty == 0:
            display = maker.display_qty
            refill = maker.leaves_qty if display is None else min(display, maker.leaves_qty)
            maker.visible_qty = refill
            level.visible_size += refill
            opposite.requeue(maker, level)
        if derivative:
            margin.track_working(market, pos, maker)
    if derivative:
        margin.refresh_requirement(state, market, pos)
    if shown:
        size = level.visible_size if level.price in opposite.levels else 0
        out.append(BookLevel(state.ts_ns, market.spec.symbol, maker.side, level.price, size))


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
        for maker in (*level.shown.values(), *level.hidden.values()):
            if maker.account == taker.account:
                return total
            if maker.exec_inst & ExecInst.ALL_OR_NONE and want - total < maker.leaves_qty:
                continue
            total += maker.leaves_qty
            if total >= want:
                return want
    return total
