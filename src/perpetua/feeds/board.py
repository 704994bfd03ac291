"""The index board: the latest reading of every index, its constituents, and its 30-minute TWAP,
for readers outside the sequencer (the gateway's ``instrument/compositeIndex``, the demo).

Thread-safe: the publisher thread writes, any thread reads (one lock, held briefly). Reads
return fresh lists and dicts the caller may keep.

TWAP (``.BXBT30M``): the time-weighted average of the *published* values of its base index over
the trailing ``TWAP_WINDOW_NS`` (30 minutes) ending at the latest reading; each value holds
until the next one; floored to the index's decimals. It is the same rule the core applies to
settle futures (the core computes its own from the ``IndexPrice`` commands it journals; this
one is for display). Samples kept per index are bounded by ``TWAP_SAMPLES_MAX``; at high
simulated speeds the oldest drop first and the average covers what is kept.

``composite_rows(symbol)`` answers in BitMEX's ``instrument/compositeIndex`` shape: one row per
constituent (``reference`` the venue, ``weight`` its effective weight, 0 once dropped,
``logged`` its last print) and then the composite row (``reference`` ``"BMI"``, ``weight``
null). Prices are exact ``Decimal`` (JSON numbers on the wire).
"""

import threading
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from perpetua.feeds.composite import IndexStatus
from perpetua.feeds.config import TWAP_WINDOW_NS
from perpetua.feeds.prices import to_decimal
from perpetua.feeds.source import IndexReading
from perpetua.wire.values import iso_ms

__all__ = ["TWAP_SAMPLES_MAX", "IndexBoard"]

TWAP_SAMPLES_MAX = 4_096
PPM = 1_000_000


def twap_units(samples: list[tuple[int, int]], now_ns: int, window_ns: int) -> int:
    """Time-weighted average over ``[now - window, now]`` of (ts_ns, units) samples in time
    order, each holding until the next; floored. With no elapsed time: the latest value."""
    if not samples:
        return 0
    start = now_ns - window_ns
    weighted = 0
    elapsed = 0
    for position, (ts_ns, units) in enumerate(samples):
        end = samples[position + 1][0] if position + 1 < len(samples) else now_ns
        begin = max(ts_ns, start)
        if end > begin:
            weighted += units * (end - begin)
            elapsed += end - begin
    return weighted // elapsed if elapsed else samples[-1][1]


class IndexBoard:
    def __init__(
        self, twap_symbols: Mapping[str, str] | None = None, twap_window_ns: int = TWAP_WINDOW_NS
    ) -> None:
        self.twap_symbols = dict(twap_symbols or {})  # base index -> TWAP symbol
        self.twap_window_ns = twap_window_ns
        self._lock = threading.Lock()
        self._readings: dict[str, IndexReading] = {}
        self._published: dict[str, deque[tuple[int, int]]] = {}

    def update(self, reading: IndexReading) -> None:
        with self._lock:
            self._readings[reading.symbol] = reading
            if reading.publish and reading.symbol in self.twap_symbols:
                samples = self._published.setdefault(reading.symbol, deque(maxlen=TWAP_SAMPLES_MAX))
                if not samples or reading.ts_ns >= samples[-1][0]:
                    samples.append((reading.ts_ns, reading.units))

    def reading(self, symbol: str) -> IndexReading | None:
        with self._lock:
            return self._readings.get(symbol)

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._readings)

    def twap(self, base_symbol: str) -> tuple[int, int] | None:
        """(units, decimals) of the TWAP of ``base_symbol``, or None before any value."""
        with self._lock:
            reading = self._readings.get(base_symbol)
            samples = list(self._published.get(base_symbol, ()))
        if reading is None or not samples:
            return None
        return twap_units(samples, reading.ts_ns, self.twap_window_ns), reading.decimals

    def composite_rows(self, symbol: str) -> list[dict[str, Any]]:
        reading = self.reading(symbol)
        if reading is None:
            return []
        stamp = iso_ms(reading.ts_ns)
        rows = []
        for row in reading.constituents:
            price = to_decimal(row.units, reading.decimals) if row.units else None
            rows.append(
                _composite_row(
                    symbol,
                    stamp,
                    row.venue,
                    price,
                    Decimal(row.effective_weight_ppm) / PPM,
                    iso_ms(row.logged_ns) if row.logged_ns else None,
                )
            )
        value = to_decimal(reading.units, reading.decimals) if reading.units else None
        rows.append(_composite_row(symbol, stamp, "BMI", value, None, stamp))
        return rows

    def index_rows(self) -> list[dict[str, Any]]:
        """Every index and TWAP: symbol, lastPrice, timestamp, status (live, stale, closed)."""
        rows = []
        for symbol in self.symbols():
            reading = self.reading(symbol)
            if reading is None:
                continue
            rows.append(
                _index_row(symbol, reading.units, reading.decimals, reading.ts_ns, reading.status)
            )
            twap_symbol = self.twap_symbols.get(symbol)
            twap = self.twap(symbol) if twap_symbol else None
            if twap_symbol and twap is not None:
                rows.append(
                    _index_row(twap_symbol, twap[0], twap[1], reading.ts_ns, IndexStatus.LIVE)
                )
        return rows


def _index_row(
    symbol: str, units: int, decimals: int, ts_ns: int, status: IndexStatus
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "lastPrice": to_decimal(units, decimals) if units else None,
        "timestamp": iso_ms(ts_ns),
        "status": str(status),
        "stale": status == IndexStatus.STALE,
    }


def _composite_row(
    symbol: str,
    stamp: str,
    reference: str,
    price: Decimal | None,
    weight: Decimal | None,
    logged: str | None,
) -> dict[str, Any]:
    return {
        "timestamp": stamp,
        "symbol": symbol,
        "indexSymbol": symbol,
        "indexMultiplier": 1,
        "reference": reference,
        "lastPrice": price,
        "sourcePrice": price,
        "conversionIndex": None,
        "conversionIndexPrice": None,
        "weight": weight,
        "logged": logged,
    }
