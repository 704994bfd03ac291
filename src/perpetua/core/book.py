"""The order book of one instrument: price levels in price-time priority.

Layout: each side maps an integer tick price to a ``Level``; a sorted list of the side's prices
gives the best price in O(1) (bids: last element, asks: first). A level holds two FIFO queues
in insertion-ordered dicts keyed by order id, so cancel is O(1) and the head of the queue is the
oldest order: ``shown`` (displayed orders, iceberg tranches included) and, behind them,
``hidden`` (displayQty 0), which match only after every displayed order at that price.

Invariants (checked by ``check``): every level is non-empty; the price list equals the level
keys, sorted, without duplicates; ``visible_size`` equals the sum of the shown orders'
``visible_qty``; the book is never crossed after a command (the engine matches before resting).

The book never creates events or moves money: callers read ``visible_size`` after a change and
publish it as an L2 delta.
"""

from bisect import bisect_left, insort
from collections.abc import Iterator

from perpetua.core.enums import SIDE_BUY, ExecInst
from perpetua.core.invariant import fail, invariant
from perpetua.core.orders import Order

__all__ = ["BookSide", "Level", "OrderBook"]


class Level:
    __slots__ = ("hidden", "price", "shown", "visible_size")

    def __init__(self, price: int) -> None:
        self.price = price
        self.shown: dict[int, Order] = {}
        self.hidden: dict[int, Order] = {}
        self.visible_size = 0

    def __bool__(self) -> bool:
        return bool(self.shown) or bool(self.hidden)

    def head(self) -> Order | None:
        """The order with the highest priority at this price."""
        for order in self.shown.values():
            return order
        for order in self.hidden.values():
            return order
        return None


class BookSide:
    __slots__ = ("all_or_none_count", "is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.all_or_none_count = 0  # resting AllOrNone orders: lets takers skip the AON walk
        self.levels: dict[int, Level] = {}
        self.prices: list[int] = []  # ascending

    def best(self) -> Level | None:
        prices = self.prices
        if not prices:
            return None
        return self.levels[prices[-1] if self.is_bid else prices[0]]

    def best_price(self) -> int | None:
        prices = self.prices
        if not prices:
            return None
        return prices[-1] if self.is_bid else prices[0]

    def add(self, order: Order) -> Level:
        """Append ``order`` at the back of its price's queue."""
        price = order.price
        if price is None or price <= 0:
            fail("resting order needs a positive price")
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            insort(self.prices, price)
        if order.display_qty == 0:
            level.hidden[order.order_id] = order
            if order.exec_inst & ExecInst.ALL_OR_NONE:
                self.all_or_none_count += 1
        else:
            level.shown[order.order_id] = order
            level.visible_size += order.visible_qty
        order.in_book = True
        return level

    def remove(self, order: Order) -> Level:
        """Take ``order`` out of the book; the level is dropped when it empties."""
        price = order.price
        if price is None:
            fail("order in book without a price")
        level = self.levels[price]
        if order.display_qty == 0:
            del level.hidden[order.order_id]
            if order.exec_inst & ExecInst.ALL_OR_NONE:
                self.all_or_none_count -= 1
        else:
            del level.shown[order.order_id]
            level.visible_size -= order.visible_qty
        order.in_book = False
        if not level.shown and not level.hidden:
            del self.levels[price]
            prices = self.prices
            del prices[bisect_left(prices, price)]
        return level

    def requeue(self, order: Order, level: Level) -> None:
        """Send a refilled iceberg tranche to the back of its level's shown queue."""
        del level.shown[order.order_id]
        level.shown[order.order_id] = order

    def iter_levels(self, levels_max: int) -> Iterator[Level]:
        """Up to ``levels_max`` levels from the best price outwards, lazily: a caller that stops
        at the first level that no longer crosses pays only for the levels it looked at. The
        side must not change while the iterator is in use."""
        prices = self.prices
        count = min(len(prices), levels_max)
        if self.is_bid:
            last = len(prices) - 1
            for i in range(count):
                yield self.levels[prices[last - i]]
        else:
            for i in range(count):
                yield self.levels[prices[i]]


class OrderBook:
    __slots__ = ("asks", "bids", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)

    def side(self, side: int) -> BookSide:
        return self.bids if side == SIDE_BUY else self.asks

    def opposite(self, side: int) -> BookSide:
        return self.asks if side == SIDE_BUY else self.bids

    def check(self) -> None:
        """Full structural check; O(orders). Used by tests and the simulator, not hot paths."""
        for book_side in (self.bids, self.asks):
            invariant(book_side.prices == sorted(book_side.levels), "price list out of sync")
            invariant(len(set(book_side.prices)) == len(book_side.prices), "duplicate price")
            for price, level in book_side.levels.items():
                invariant(bool(level), f"empty level {price}")
                visible = sum(o.visible_qty for o in level.shown.values())
                invariant(visible == level.visible_size, f"visible size drift at {price}")
                for order in (*level.shown.values(), *level.hidden.values()):
                    invariant(order.price == price and order.in_book, "order misplaced")
                    invariant(
                        0 < order.visible_qty <= order.leaves_qty or order.hidden, "bad visible qty"
                    )
            aon = sum(
                1
                for level in book_side.levels.values()
                for o in level.hidden.values()
                if o.exec_inst & ExecInst.ALL_OR_NONE
            )
            invariant(aon == book_side.all_or_none_count, "AllOrNone count drift")
        bid, ask = self.bids.best_price(), self.asks.best_price()
        invariant(bid is None or ask is None or bid < ask, "book crossed")
