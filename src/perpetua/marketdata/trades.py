"""Recent public trades (a bounded tape) and OHLCV trade bins with end-of-bin timestamps.

Bins: ``1m``, ``5m``, ``1h``, ``1d``. A bin covering ``[start, end)`` is stamped ``end`` (BitMEX).
A closed bin is published when the clock passes its end (``roll``), also when nothing traded in
it: then open = high = low = close = the previous close and volume 0, as BitMEX does. ``open`` of
a bin is the previous bin's close when there is one (SW text). Money (``turnover``) is in
settlement minor units; ``vwap`` is an exact decimal rounded to 8 places.
"""

from collections import deque
from decimal import Decimal
from typing import Any

from perpetua.core.events import Trade
from perpetua.core.instruments import InstrumentSpec, home_notional
from perpetua.marketdata.ids import trade_uuid
from perpetua.wire.values import iso_ms, price
from perpetua.wire.vocabulary import SIDE_NAMES

__all__ = [
    "BINS_RETAINED_MAX",
    "BIN_SIZES_NS",
    "TRADES_RETAINED_MAX",
    "TradeBins",
    "tick_direction",
    "trade_row",
]

BIN_SIZES_NS: dict[str, int] = {
    "1m": 60 * 10**9,
    "5m": 300 * 10**9,
    "1h": 3_600 * 10**9,
    "1d": 86_400 * 10**9,
}
TRADES_RETAINED_MAX = 1_000  # per symbol; older trades come from the read-model store
BINS_RETAINED_MAX = 1_500  # per symbol and bin size
EMPTY_BINS_PER_ROLL_MAX = 1_500  # a long idle gap publishes at most this many empty bins
_VWAP_QUANTUM = Decimal("1e-8")


_NOTIONAL_QUANTUM = Decimal("1e-8")


def trade_row(spec: InstrumentSpec, event: Trade, direction: str) -> dict[str, Any]:
    """BitMEX ``Trade``: the public print (notionals unsigned, as BitMEX sends them)."""
    num, den = home_notional(spec, event.qty, event.price)
    home = (Decimal(num) / Decimal(den)).quantize(_NOTIONAL_QUANTUM).normalize()
    px = price(spec, event.price) or Decimal(0)
    return {
        "timestamp": iso_ms(event.ts_ns),
        "symbol": event.symbol,
        "side": SIDE_NAMES[event.side],
        "size": event.qty,
        "price": px,
        "tickDirection": direction,
        "trdMatchID": trade_uuid(event.trd_match_id),
        "grossValue": event.gross_value,
        "homeNotional": home,
        "foreignNotional": (home * px).quantize(_NOTIONAL_QUANTUM).normalize(),
        "trdType": "Regular",
    }


def tick_direction(previous: str, last_ticks: int | None, ticks: int) -> str:
    """BitMEX tick direction of a print at ``ticks`` after one at ``last_ticks``."""
    if last_ticks is None or ticks > last_ticks:
        return "PlusTick"
    if ticks < last_ticks:
        return "MinusTick"
    return "ZeroPlusTick" if previous in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"


class _Bin:
    __slots__ = (
        "end_ns",
        "open",
        "high",
        "low",
        "close",
        "trades",
        "volume",
        "turnover",
        "last_size",
        "px_qty",
        "home",
        "foreign",
    )

    def __init__(self, end_ns: int, open_ticks: int | None) -> None:
        self.end_ns = end_ns
        self.open = open_ticks
        self.high = open_ticks
        self.low = open_ticks
        self.close = open_ticks
        self.trades = 0
        self.volume = 0
        self.turnover = 0
        self.last_size = 0
        self.px_qty = 0  # sum of price ticks x qty, for vwap
        self.home = Decimal(0)
        self.foreign = Decimal(0)

    def add(self, ticks: int, qty: int, gross: int, home: Decimal, foreign: Decimal) -> None:
        if self.trades == 0 and self.open is None:
            self.open = ticks
        self.high = ticks if self.high is None else max(self.high, ticks)
        self.low = ticks if self.low is None else min(self.low, ticks)
        self.close = ticks
        self.trades += 1
        self.volume += qty
        self.turnover += gross
        self.last_size = qty
        self.px_qty += ticks * qty
        self.home += home
        self.foreign += foreign

    def row(self, spec: InstrumentSpec) -> dict[str, Any]:
        vwap = None
        if self.volume:
            vwap = (price(spec, 1) or Decimal(0)) * Decimal(self.px_qty) / Decimal(self.volume)
            vwap = vwap.quantize(_VWAP_QUANTUM).normalize()
        return {
            "timestamp": iso_ms(self.end_ns),
            "symbol": spec.symbol,
            "open": price(spec, self.open),
            "high": price(spec, self.high),
            "low": price(spec, self.low),
            "close": price(spec, self.close),
            "trades": self.trades,
            "volume": self.volume,
            "vwap": vwap,
            "lastSize": self.last_size if self.trades else None,
            "turnover": self.turnover,
            "homeNotional": self.home,
            "foreignNotional": self.foreign,
        }


class TradeBins:
    """The open bin and the closed bins of one symbol and one bin size."""

    __slots__ = ("spec", "size_ns", "current", "closed")

    def __init__(self, spec: InstrumentSpec, size_ns: int) -> None:
        self.spec = spec
        self.size_ns = size_ns
        self.current: _Bin | None = None
        self.closed: deque[dict[str, Any]] = deque(maxlen=BINS_RETAINED_MAX)

    def _end_of(self, ts_ns: int) -> int:
        return (ts_ns // self.size_ns + 1) * self.size_ns

    def roll(self, now_ns: int) -> list[dict[str, Any]]:
        """Close every bin that ended at or before ``now_ns``; return the closed rows."""
        out: list[dict[str, Any]] = []
        current = self.current
        if current is None:
            return out
        while current.end_ns <= now_ns and len(out) < EMPTY_BINS_PER_ROLL_MAX:
            row = current.row(self.spec)
            self.closed.append(row)
            out.append(row)
            current = _Bin(current.end_ns + self.size_ns, current.close)
        if current.end_ns <= now_ns:  # a gap too long to fill: jump to the bin of now
            current = _Bin(self._end_of(now_ns), current.close)
        self.current = current
        return out

    def add(
        self, ts_ns: int, ticks: int, qty: int, gross: int, home: Decimal, foreign: Decimal
    ) -> list[dict[str, Any]]:
        closed = self.roll(ts_ns)
        if self.current is None:
            self.current = _Bin(self._end_of(ts_ns), None)
        self.current.add(ticks, qty, gross, home, foreign)
        return closed

    def rows(self, partial: bool) -> list[dict[str, Any]]:
        rows = list(self.closed)
        if partial and self.current is not None:
            rows.append(self.current.row(self.spec))
        return rows
