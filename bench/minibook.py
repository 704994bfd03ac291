"""A minimal pure-Python price-time order book: the baseline bench_mixed.py measures against.

What the fastest plain CPython books do and no more: per side a dict of price -> FIFO deque of
resting orders and a heap of prices (stale prices dropped lazily), orders as small ``__slots__``
objects, matching by walking the best price while it crosses. Limit and market orders, cancel by
id, self-trade prevention "cancel the taker" (as the engine does, so both see the same fills).
No accounts, margin, fees, events or validation: that is the point of comparing with it.

Prices are integer ticks, quantities integer lots; a market order is an unbounded limit.
"""

import heapq
from collections import deque

__all__ = ["MiniBook"]


class _Order:
    __slots__ = ("order_id", "trader", "side", "price", "qty")

    def __init__(self, order_id: int, trader: int, side: int, price: int, qty: int) -> None:
        self.order_id = order_id
        self.trader = trader
        self.side = side
        self.price = price
        self.qty = qty


class MiniBook:
    def __init__(self) -> None:
        # side 1 = bids (heap of negated prices), -1 = asks (heap of prices)
        self.levels: dict[int, dict[int, deque[_Order]]] = {1: {}, -1: {}}
        self.heaps: dict[int, list[int]] = {1: [], -1: []}
        self.orders: dict[int, _Order] = {}
        self.next_id = 1
        self.trades = 0
        self.traded_qty = 0

    def _best(self, side: int) -> int | None:
        heap = self.heaps[side]
        levels = self.levels[side]
        while heap:
            price = -heap[0] if side == 1 else heap[0]
            if price in levels:
                return price
            heapq.heappop(heap)
        return None

    def submit(self, trader: int, side: int, qty: int, price: int | None) -> int:
        """Match, then rest what is left of a limit order; returns the order id."""
        order_id = self.next_id
        self.next_id += 1
        opposite = -side
        levels = self.levels[opposite]
        while qty:
            best = self._best(opposite)
            if best is None or (
                price is not None and (best > price if side == 1 else best < price)
            ):
                break
            queue = levels[best]
            maker = queue[0]
            if maker.trader == trader:
                return order_id  # self-trade: the taker's rest is cancelled
            fill = qty if qty < maker.qty else maker.qty
            qty -= fill
            maker.qty -= fill
            self.trades += 1
            self.traded_qty += fill
            if maker.qty == 0:
                queue.popleft()
                del self.orders[maker.order_id]
                if not queue:
                    del levels[best]
        if qty and price is not None:
            order = _Order(order_id, trader, side, price, qty)
            self.orders[order_id] = order
            own = self.levels[side]
            queue = own.get(price)
            if queue is None:
                queue = own[price] = deque()
                heapq.heappush(self.heaps[side], -price if side == 1 else price)
            queue.append(order)
        return order_id

    def cancel(self, order_id: int) -> bool:
        order = self.orders.pop(order_id, None)
        if order is None:
            return False
        levels = self.levels[order.side]
        queue = levels[order.price]
        queue.remove(order)
        if not queue:
            del levels[order.price]
        return True
