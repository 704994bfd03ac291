"""Wire rows of the order book tables: ``orderBookL2`` levels, their ``orderBookL2_25`` diffs,
``orderBook10`` snapshots and ``quote`` rows, built from an `L2Book` and its instrument.

Invariants
    - A level's ``id`` is `book.level_id` of the instrument and the price in ticks: the same
      level has the same id in REST, in every WebSocket table and across restarts.
    - Prices are exact decimals of the tick (`wire.values.price`); sides are BitMEX's names.
    - REST's L2 order is sells then buys, each by price descending; the top-N tables hold at
      most ``L2_25_DEPTH`` / ``BOOK10_DEPTH`` levels per side.
    - A quote row is published only when best bid or ask (price or size) changed.
"""

from collections import deque
from typing import Any

from perpetua.core.instruments import InstrumentSpec
from perpetua.marketdata.book import L2Book, level_id
from perpetua.marketdata.deltas import PendingDeltas
from perpetua.wire.values import iso_ms, price
from perpetua.wire.vocabulary import SIDE_NAMES

__all__ = [
    "BOOK10_DEPTH",
    "L2_25_DEPTH",
    "book10_row",
    "diff_top",
    "l2_rows",
    "level_row",
    "next_quote",
]

L2_25_DEPTH = 25
BOOK10_DEPTH = 10
_QUOTE_FIELDS = ("bidSize", "bidPrice", "askPrice", "askSize")


def level_row(
    spec: InstrumentSpec, side: int, px: int, size: int, timestamp: str
) -> dict[str, Any]:
    """One ``orderBookL2*`` row."""
    return {
        "symbol": spec.symbol,
        "id": level_id(spec.index, px),
        "side": SIDE_NAMES[side],
        "size": size,
        "price": price(spec, px),
        "timestamp": timestamp,
    }


def diff_top(
    spec: InstrumentSpec,
    book: L2Book,
    side: int,
    old: list[tuple[int, int]],
    pending: PendingDeltas,
) -> None:
    """The ``orderBookL2_25`` deltas from ``old`` (the top levels before) to the book now."""
    symbol = spec.symbol
    new = dict(book.top(side, L2_25_DEPTH))
    old_map = dict(old)
    ts = iso_ms(book.ts_ns)
    for px, size in old_map.items():
        if px not in new:
            pending.add("orderBookL2_25", symbol, "delete", level_row(spec, side, px, size, ts))
    for px, size in new.items():
        if px not in old_map:
            pending.add("orderBookL2_25", symbol, "insert", level_row(spec, side, px, size, ts))
        elif old_map[px] != size:
            pending.add("orderBookL2_25", symbol, "update", level_row(spec, side, px, size, ts))


def next_quote(
    spec: InstrumentSpec, book: L2Book, quotes: deque[dict[str, Any]]
) -> dict[str, Any] | None:
    """The book's quote row, appended to ``quotes``; None (nothing appended) when the best
    bid and ask are those of the last quote."""
    bid = book.best(1)
    ask = book.best(-1)
    row = {
        "timestamp": iso_ms(book.ts_ns),
        "symbol": spec.symbol,
        "bidSize": bid[1] if bid else None,
        "bidPrice": price(spec, bid[0]) if bid else None,
        "askPrice": price(spec, ask[0]) if ask else None,
        "askSize": ask[1] if ask else None,
    }
    if quotes:
        last = quotes[-1]
        if all(last[k] == row[k] for k in _QUOTE_FIELDS):
            return None
    quotes.append(row)
    return row


def l2_rows(
    spec: InstrumentSpec, book: L2Book, depth: int | None, ts_ns: int
) -> list[dict[str, Any]]:
    """Sells (price descending) then buys (price descending), BitMEX's REST order."""
    ts = iso_ms(book.ts_ns or ts_ns)
    rows = []
    for side in (-1, 1):
        levels = book.top(side, depth)
        if side == -1:
            levels.reverse()
        for px, size in levels:
            rows.append(level_row(spec, side, px, size, ts))
    return rows


def book10_row(spec: InstrumentSpec, book: L2Book, ts_ns: int) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "bids": [[price(spec, p), s] for p, s in book.top(1, BOOK10_DEPTH)],
        "asks": [[price(spec, p), s] for p, s in book.top(-1, BOOK10_DEPTH)],
        "timestamp": iso_ms(book.ts_ns or ts_ns),
    }
