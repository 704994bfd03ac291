"""`MarketViews`: the state of the public market views and every read of it.

`hub.MarketData` adds the fold (events in, deltas out) on top; the gateway's REST routes and
WebSocket partials read through the methods here.

Invariants
    - Every instrument known to ``specs`` has a ``static`` row and ``stats``; every one but an
      index also has a book, a trade tape, quotes and bins. The funding series' index rows
      (``rates``) have ``static`` and ``stats`` but no spec in ``specs``: `spec_of` and
      `instrument_specs` include them.
    - ``specs`` is shared with the gateway's symbol index and private views: `add` is the only
      writer, and it never replaces a spec.
    - Reads never change state.
    - Tapes and bins are bounded (``TRADES_RETAINED_MAX``, ``QUOTES_RETAINED_MAX``).
"""

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from perpetua.core.instruments import (
    InstrumentKind,
    InstrumentSpec,
    contract_value,
    contract_value_at,
)
from perpetua.core.units import PRICE_FINE_PER_TICK
from perpetua.marketdata.announcements import Announcements
from perpetua.marketdata.book import L2Book
from perpetua.marketdata.book_rows import book10_row, l2_rows
from perpetua.marketdata.ids import ZERO_UUID
from perpetua.marketdata.instruments import MarketStats, impact_prices, live_row, static_row
from perpetua.marketdata.rate_indices import RATE_DEN, RATE_DIGITS, RATE_INDEX_TYP, RateIndices
from perpetua.marketdata.risk_tables import RiskTables
from perpetua.marketdata.trades import BIN_SIZES_NS, TRADES_RETAINED_MAX, TradeBins
from perpetua.wire.values import RATIONAL_DIGITS_MAX, iso_ms, rational

__all__ = ["QUOTES_RETAINED_MAX", "MarketViews"]

QUOTES_RETAINED_MAX = 1_000
_NOTIONAL_QUANTUM = Decimal("1e-8")


class MarketViews:
    def __init__(self, specs: Iterable[InstrumentSpec]) -> None:
        self.specs: dict[str, InstrumentSpec] = {}
        self.static: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, MarketStats] = {}
        self.books: dict[str, L2Book] = {}
        self.trades: dict[str, deque[dict[str, Any]]] = {}
        self.quotes: dict[str, deque[dict[str, Any]]] = {}
        self.bins: dict[tuple[str, str], TradeBins] = {}
        self.quote_bins: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self.referrers: dict[str, list[str]] = {}
        for spec in specs:
            self.add(spec)
        self.positions: dict[tuple[int, str], int] = {}
        self.risk = RiskTables()
        self.announcements = Announcements()
        self.marks_moved: list[str] = []
        self.published: dict[str, dict[str, Any]] = {}
        self.wanted: set[str] = set()
        self.seq = 0
        self.trade_seq = 0  # last seq with a print (trade history reads wait for it)
        self.ts_ns = 0
        self.rates = RateIndices(self.specs.values())
        for symbol, spec in self.rates.specs.items():
            self.static[symbol] = static_row(spec)
            self.stats[symbol] = MarketStats(spec.state)

    def add(self, spec: InstrumentSpec) -> bool:
        """Know ``spec`` (a catalogue instrument, or a future listed at runtime); False if it
        was known already. ``specs`` is shared with the gateway's symbol index and private
        views, so they know it too."""
        symbol = spec.symbol
        if symbol in self.specs:
            return False
        self.specs[symbol] = spec
        self.static[symbol] = static_row(spec)
        self.stats[symbol] = MarketStats(spec.state)
        if spec.kind == InstrumentKind.INDEX:
            return True
        self.books[symbol] = L2Book()
        self.trades[symbol] = deque(maxlen=TRADES_RETAINED_MAX)
        self.quotes[symbol] = deque(maxlen=QUOTES_RETAINED_MAX)
        for size, size_ns in BIN_SIZES_NS.items():
            self.bins[(size, symbol)] = TradeBins(spec, size_ns)
            self.quote_bins[(size, symbol)] = deque(maxlen=QUOTES_RETAINED_MAX)
        self.referrers.setdefault(spec.reference_symbol, []).append(symbol)
        return True

    def publish_rates(self, values: list[tuple[str, int]], ts_ns: int) -> list[str]:
        """Set the funding series' index values (parts per billion); their symbols."""
        for symbol, value_ppb in values:
            stats = self.stats[symbol]
            stats.index = (value_ppb, RATE_DEN)
            stats.ts_ns = max(stats.ts_ns, ts_ns)
        return [symbol for symbol, _ in values]

    def mark_fine(self, symbol: str) -> int | None:
        """The core's mark (millionths of a tick), or None before the first mark."""
        stats = self.stats.get(symbol)
        return None if stats is None else stats.mark_fine

    def day_stats(self, symbol: str) -> dict[str, Any]:
        bins = self.bins.get(("1h", symbol))
        if bins is None:
            return {}
        rows = [r for r in bins.rows(partial=True)[-24:] if r["trades"]]
        if not rows:
            return {}
        volume = sum(r["volume"] for r in rows)
        vwap_num = sum((r["vwap"] or 0) * r["volume"] for r in rows)
        return {
            "volume24h": volume,
            "turnover24h": sum(r["turnover"] for r in rows),
            "homeNotional24h": sum(r["homeNotional"] for r in rows),
            "foreignNotional24h": sum(r["foreignNotional"] for r in rows),
            "prevPrice24h": rows[0]["open"],
            "highPrice": max(r["high"] for r in rows),
            "lowPrice": min(r["low"] for r in rows),
            "vwap": (vwap_num / volume).quantize(_NOTIONAL_QUANTUM).normalize() if volume else None,
        }

    def instrument_specs(self) -> list[InstrumentSpec]:
        """Every row of the instrument table: the engine's instruments, then the funding
        series' index rows."""
        return [*self.specs.values(), *self.rates.specs.values()]

    def spec_of(self, symbol: str) -> InstrumentSpec:
        """The spec of an instrument row (``KeyError`` for an unknown symbol)."""
        spec = self.specs.get(symbol)
        return spec if spec is not None else self.rates.specs[symbol]

    def live(self, symbol: str) -> dict[str, Any]:
        spec = self.spec_of(symbol)
        stats = self.stats[symbol]
        if spec.kind == InstrumentKind.INDEX:
            digits = RATE_DIGITS if spec.typ == RATE_INDEX_TYP else RATIONAL_DIGITS_MAX
            value = rational(*stats.index, digits) if stats.index else None
            return {
                "state": stats.state,
                "lastPrice": value,
                "markPrice": value,
                "publishTime": iso_ms(stats.ts_ns) if stats.ts_ns else None,
                "timestamp": iso_ms(stats.ts_ns),
            }
        book = self.books[symbol]
        bid = book.best(1)
        ask = book.best(-1)
        return live_row(
            spec,
            stats,
            bid[0] if bid else None,
            ask[0] if ask else None,
            self.day_stats(symbol),
            self.open_value(symbol),
            impact_prices(spec, book),
            self.ts_ns,
        )

    def open_value(self, symbol: str) -> int:
        """|value| of the open interest at the mark (else the last price), settlement units."""
        spec = self.specs[symbol]
        stats = self.stats[symbol]
        if stats.open_interest and stats.mark_fine:
            return abs(
                contract_value_at(
                    spec,
                    stats.open_interest,
                    stats.mark_fine * spec.tick_num,
                    spec.tick_den * PRICE_FINE_PER_TICK,
                )
            )
        if stats.open_interest and stats.last_ticks:
            return abs(contract_value(spec, stats.open_interest, stats.last_ticks))
        return 0

    def instrument_row(self, symbol: str) -> dict[str, Any]:
        row = dict(self.static[symbol])
        row.update(self.live(symbol))
        return row

    def l2_rows(self, symbol: str, depth: int | None) -> list[dict[str, Any]]:
        """Sells (price descending) then buys (price descending), BitMEX's REST order."""
        return l2_rows(self.specs[symbol], self.books[symbol], depth, self.ts_ns)

    def book10_row(self, symbol: str) -> dict[str, Any]:
        return book10_row(self.specs[symbol], self.books[symbol], self.ts_ns)

    def seed_quote(self, symbol: str, now_ns: int) -> dict[str, Any]:
        """The current quote, or a placeholder row when nothing has been quoted yet."""
        quotes = self.quotes.get(symbol)
        if quotes:
            return quotes[-1]
        return {
            "timestamp": iso_ms(now_ns),
            "symbol": symbol,
            "bidSize": 0,
            "bidPrice": None,
            "askPrice": None,
            "askSize": 0,
        }

    def seed_trade(self, symbol: str, now_ns: int) -> dict[str, Any]:
        """A size-0 print at the mark (like BitMEX's index prints) when nothing has traded."""
        live = self.live(symbol)
        return {
            "timestamp": iso_ms(now_ns),
            "symbol": symbol,
            "side": "Buy",
            "size": 0,
            "price": live.get("markPrice"),
            "tickDirection": "ZeroPlusTick",
            "trdMatchID": ZERO_UUID,
            "grossValue": 0,
            "homeNotional": 0,
            "foreignNotional": 0,
            "trdType": "Regular",
        }
