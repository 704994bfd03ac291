"""One instrument's public L2 book, built from the core's ``BookLevel`` deltas.

Each level is (price ticks -> visible size); size 0 removes the level. Level ids are a stable
int64 of (catalogue index, price): ``LEVEL_ID_STRIDE * (index + 1) - ticks``, so ids are unique
across instruments, fall as the price rises (as BitMEX's do) and stay below 2**53 (JavaScript
clients hold them exactly). ``top(side, n)`` is best-first.
"""

from sortedcontainers import SortedDict

from perpetua.core.enums import Side

__all__ = ["LEVEL_ID_STRIDE", "L2Book", "level_id"]

LEVEL_ID_STRIDE = 10**12  # > every instrument's max_price_ticks
SIDE_BUY = int(Side.BUY)  # a plain int: compared per level
SIDE_SELL = int(Side.SELL)


def level_id(instrument_index: int, price_ticks: int) -> int:
    if not 0 < price_ticks < LEVEL_ID_STRIDE:
        raise ValueError(f"price ticks out of level-id range: {price_ticks}")
    return LEVEL_ID_STRIDE * (instrument_index + 1) - price_ticks


class L2Book:
    """Bids and asks: price ticks -> visible size, best-first iteration."""

    __slots__ = ("bids", "asks", "ts_ns")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # key: -price (so ascending key = best first)
        self.asks: SortedDict = SortedDict()  # key: price
        self.ts_ns = 0

    def set(self, side: int, price: int, size: int, ts_ns: int) -> int:
        """Set a level; return the previous size (0 if it was absent)."""
        table, key = (self.bids, -price) if side == SIDE_BUY else (self.asks, price)
        before = table.get(key, 0)
        if size > 0:
            table[key] = size
        elif before:
            del table[key]
        self.ts_ns = ts_ns
        return int(before)

    def size(self, side: int, price: int) -> int:
        if side == SIDE_BUY:
            return int(self.bids.get(-price, 0))
        return int(self.asks.get(price, 0))

    def top(self, side: int, count: int | None) -> list[tuple[int, int]]:
        """Best-first (price, size) pairs; ``None`` means every level."""
        if side == SIDE_BUY:
            keys = self.bids.keys() if count is None else self.bids.islice(0, count)
            return [(-key, self.bids[key]) for key in keys]
        keys = self.asks.keys() if count is None else self.asks.islice(0, count)
        return [(key, self.asks[key]) for key in keys]

    def best(self, side: int) -> tuple[int, int] | None:
        table = self.bids if side == SIDE_BUY else self.asks
        if not table:
            return None
        key, size = table.peekitem(0)
        return (-key if side == SIDE_BUY else key), size

    def nth_price(self, side: int, depth: int) -> int | None:
        """Price of the ``depth``-th best level (0-based), or None if the book is shallower."""
        table = self.bids if side == SIDE_BUY else self.asks
        if depth >= len(table):
            return None
        key = int(table.keys()[depth])
        return -key if side == SIDE_BUY else key

    def depth(self, side: int) -> int:
        return len(self.bids if side == SIDE_BUY else self.asks)
