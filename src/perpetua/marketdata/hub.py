"""``MarketData``: every public view, updated from the event stream, emitting WebSocket deltas.

``apply(seq, ts_ns, command, events)`` folds one command's events into the views and returns
the public ``Delta``s in event order (consecutive rows of the same table, symbol and action are
merged). ``roll(now_ns)`` closes due trade and quote bins. Tables whose deltas cost work to
compute (``orderBookL2_25``, ``orderBook10``, ``instrument`` diffs) are only computed while
``wanted`` names them; the views themselves are always current so REST reads stay consistent.

Marks, indices and funding rates come from ``MarkUpdated``; the funding series' index rows
(``.XBTUSDPI``, ``.XBTUSDPI8H``, ``.XBTBON8H``, ...) from ``PremiumSampled`` (``rates``,
``rate_indices``: not instruments of the engine, so not in ``specs``; ``instrument_specs`` and
``spec_of`` include them). The risk engine's public tables
(funding, settlement, insurance, liquidation) are ``risk`` (``risk_tables``); the operator's
announcements are ``announcements``. ``marks_moved``
lists the symbols whose mark the last ``apply`` moved (private positions follow them).
At start-up ``seed`` loads what the recovered engine holds (``gateway.bootstrap``); ``add``
makes a future listed at runtime known (the gateway calls it when the stream lists one).
"""

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from perpetua.core.events import (
    AnnouncementPublished,
    AnnouncementWithdrawn,
    BookLevel,
    Funding,
    IndexUpdated,
    InstrumentStateChanged,
    MarkUpdated,
    OrderEvent,
    PositionChanged,
    PremiumSampled,
    Settled,
    Trade,
    Transfer,
)
from perpetua.core.instruments import (
    InstrumentKind,
    InstrumentSpec,
    contract_value,
    contract_value_at,
)
from perpetua.core.units import PRICE_FINE_PER_TICK
from perpetua.marketdata.announcements import Announcements
from perpetua.marketdata.book import L2Book, level_id
from perpetua.marketdata.deltas import Delta
from perpetua.marketdata.ids import ZERO_UUID
from perpetua.marketdata.instruments import MarketStats, impact_prices, live_row, static_row
from perpetua.marketdata.rate_indices import RATE_DEN, RATE_DIGITS, RATE_INDEX_TYP, RateIndices
from perpetua.marketdata.risk_tables import RiskTables, funding_wire, settlement_wire
from perpetua.marketdata.trades import (
    BIN_SIZES_NS,
    TRADES_RETAINED_MAX,
    TradeBins,
    tick_direction,
    trade_row,
)
from perpetua.wire.values import RATIONAL_DIGITS_MAX, iso_ms, price, rational
from perpetua.wire.vocabulary import SIDE_NAMES

__all__ = ["QUOTES_RETAINED_MAX", "MarketData"]

QUOTES_RETAINED_MAX = 1_000
L2_25_DEPTH = 25
BOOK10_DEPTH = 10
_NOTIONAL_QUANTUM = Decimal("1e-8")


class _Pending:
    """Deltas of one command, merged as they are appended."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: list[Delta] = []

    def add(self, table: str, symbol: str, action: str, row: dict[str, Any]) -> None:
        last = self.out[-1] if self.out else None
        if (
            last is not None
            and last.table == table
            and last.symbol == symbol
            and (last.action == action)
        ):
            last.rows.append(row)
        else:
            self.out.append(Delta(table, symbol, action, [row]))


class _Fold:
    """What folding one command's events gathers: its deltas, the book levels as they were
    before it (for level ids and quotes) and the symbols whose derived rows must be redone."""

    __slots__ = ("before", "pending", "seq", "touched")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.pending = _Pending()
        self.before: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self.touched: set[str] = set()


class MarketData:
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

    # Applying events ---------------------------------------------------------------------------

    def apply(self, seq: int, ts_ns: int, command: object, events: Sequence[object]) -> list[Delta]:
        """Fold one command's events (each through its entry in ``_HANDLERS``; kinds without
        one change no public view) and return the public deltas, merged per table."""
        self.seq = seq
        self.ts_ns = max(self.ts_ns, ts_ns)
        fold = _Fold(seq)
        if self.marks_moved:
            self.marks_moved = []
        handlers = _HANDLERS
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(self, fold, event)
        if fold.touched:
            self._after(fold.touched, fold.before, fold.pending)
        return fold.pending.out

    def _mark(self, event: MarkUpdated) -> bool:
        stats = self.stats.get(event.symbol)
        if stats is None:
            return False
        stats.mark_fine = event.mark_fine
        stats.index_fine = event.index_fine
        stats.funding_rate_ppb = event.funding_rate_ppb
        stats.indicative_rate_ppb = event.indicative_funding_rate_ppb
        stats.next_funding_ns = event.next_funding_ns
        stats.ts_ns = max(stats.ts_ns, event.ts_ns)
        self.marks_moved.append(event.symbol)
        return True

    def mark_fine(self, symbol: str) -> int | None:
        """The core's mark (millionths of a tick), or None before the first mark."""
        stats = self.stats.get(symbol)
        return None if stats is None else stats.mark_fine

    def _fund_order(self, seq: int, event: OrderEvent, pending: _Pending) -> None:
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        change = self.risk.on_order(seq, event, spec)
        if change is not None:
            pending.add("liquidation", event.symbol, change[0], change[1])

    def _settled(self, seq: int, event: Settled, pending: _Pending) -> None:
        spec = self.specs.get(event.symbol)
        if spec is not None:
            pending.add(
                "settlement", event.symbol, "insert", self.risk.on_settled(seq, event, spec)
            )

    def _book_level(
        self,
        event: BookLevel,
        before: dict[tuple[str, int], list[tuple[int, int]]],
        pending: _Pending,
    ) -> None:
        book = self.books.get(event.symbol)
        if book is None:
            return
        key = (event.symbol, event.side)
        if key not in before:
            before[key] = book.top(event.side, L2_25_DEPTH)
        old = book.set(event.side, event.price, event.size, event.ts_ns)
        if old == 0 and event.size == 0:
            return
        action = "insert" if old == 0 else ("delete" if event.size == 0 else "update")
        spec = self.specs[event.symbol]
        row = {
            "symbol": event.symbol,
            "id": level_id(spec.index, event.price),
            "side": SIDE_NAMES[event.side],
            "size": event.size if event.size else old,
            "price": price(spec, event.price),
            "timestamp": iso_ms(event.ts_ns),
        }
        pending.add("orderBookL2", event.symbol, action, row)

    def _trade(self, event: Trade, pending: _Pending, direction: str = "") -> None:
        spec = self.specs[event.symbol]
        stats = self.stats[event.symbol]
        direction = direction or tick_direction(stats.tick_dir, stats.last_ticks, event.price)
        stats.tick_dir = direction
        stats.last_ticks = event.price
        stats.total_volume += event.qty
        stats.total_turnover += event.gross_value
        stats.ts_ns = max(stats.ts_ns, event.ts_ns)
        row = trade_row(spec, event, direction)
        home, foreign = row["homeNotional"], row["foreignNotional"]
        self.trades[event.symbol].append(row)
        pending.add("trade", event.symbol, "insert", row)
        for size in BIN_SIZES_NS:
            closed = self.bins[(size, event.symbol)].add(
                event.ts_ns, event.price, event.qty, event.gross_value, home, foreign
            )
            for bin_row in closed:
                pending.add(f"tradeBin{size}", event.symbol, "insert", bin_row)

    def _index(self, event: IndexUpdated) -> list[str]:
        value = (event.price_num, event.price_den)
        touched = [event.symbol] if event.symbol in self.stats else []
        if touched:
            stats = self.stats[event.symbol]
            stats.index = value
            stats.ts_ns = max(stats.ts_ns, event.ts_ns)
        for symbol in self.referrers.get(event.symbol, ()):
            stats = self.stats[symbol]
            stats.index = value
            stats.ts_ns = max(stats.ts_ns, event.ts_ns)
            touched.append(symbol)
        return touched

    def _premium(self, event: PremiumSampled) -> list[str]:
        """The funding series' rows the sample publishes, and the perpetual when its interest
        (``fundingQuoteRate``) moved."""
        touched = self._publish_rates(self.rates.on_sample(event), event.ts_ns)
        stats = self.stats.get(event.symbol)
        if stats is not None and stats.interest_ppb != event.interest_ppb:
            stats.interest_ppb = event.interest_ppb
            touched.append(event.symbol)
        return touched

    def _publish_rates(self, values: list[tuple[str, int]], ts_ns: int) -> list[str]:
        for symbol, value_ppb in values:
            stats = self.stats[symbol]
            stats.index = (value_ppb, RATE_DEN)
            stats.ts_ns = max(stats.ts_ns, ts_ns)
        return [symbol for symbol, _ in values]

    def _position(self, event: PositionChanged) -> bool:
        """Open interest follows positions; True if it changed."""
        key = (event.account, event.symbol)
        old = self.positions.get(key, 0)
        if old == event.current_qty:
            return False
        if event.current_qty:
            self.positions[key] = event.current_qty
        else:
            self.positions.pop(key, None)
        stats = self.stats.get(event.symbol)
        if stats is not None:
            stats.open_interest += max(event.current_qty, 0) - max(old, 0)
        return True

    def _transfer(self, seq: int, event: Transfer, pending: _Pending) -> None:
        row = self.risk.on_transfer(seq, event)
        if row is not None:
            pending.add("insurance", "", "insert", row)

    def _after(
        self,
        touched: set[str],
        before: dict[tuple[str, int], list[tuple[int, int]]],
        pending: _Pending,
    ) -> None:
        for symbol in sorted(touched):
            book = self.books.get(symbol)
            if book is not None and ((symbol, 1) in before or (symbol, -1) in before):
                if "orderBookL2_25" in self.wanted:
                    for side in (-1, 1):
                        if (symbol, side) in before:
                            self._diff_top(symbol, side, before[(symbol, side)], pending)
                if "orderBook10" in self.wanted:
                    old10 = [
                        before.get((symbol, s), book.top(s, BOOK10_DEPTH))[:BOOK10_DEPTH]
                        for s in (1, -1)
                    ]
                    if old10 != [book.top(1, BOOK10_DEPTH), book.top(-1, BOOK10_DEPTH)]:
                        pending.add("orderBook10", symbol, "update", self.book10_row(symbol))
                self._quote(symbol, book, pending)
            if "instrument" in self.wanted:
                self._instrument_delta(symbol, pending)

    def _quote(self, symbol: str, book: L2Book, pending: _Pending) -> None:
        bid = book.best(1)
        ask = book.best(-1)
        spec = self.specs[symbol]
        quotes = self.quotes[symbol]
        row = {
            "timestamp": iso_ms(book.ts_ns),
            "symbol": symbol,
            "bidSize": bid[1] if bid else None,
            "bidPrice": price(spec, bid[0]) if bid else None,
            "askPrice": price(spec, ask[0]) if ask else None,
            "askSize": ask[1] if ask else None,
        }
        if quotes:
            last = quotes[-1]
            if all(last[k] == row[k] for k in ("bidSize", "bidPrice", "askPrice", "askSize")):
                return
        quotes.append(row)
        pending.add("quote", symbol, "insert", row)

    def _diff_top(
        self, symbol: str, side: int, old: list[tuple[int, int]], pending: _Pending
    ) -> None:
        book = self.books[symbol]
        new = dict(book.top(side, L2_25_DEPTH))
        old_map = dict(old)
        spec = self.specs[symbol]
        ts = iso_ms(book.ts_ns)

        def row(px: int, size: int) -> dict[str, Any]:
            return {
                "symbol": symbol,
                "id": level_id(spec.index, px),
                "side": SIDE_NAMES[side],
                "size": size,
                "price": price(spec, px),
                "timestamp": ts,
            }

        for px, size in old_map.items():
            if px not in new:
                pending.add("orderBookL2_25", symbol, "delete", row(px, size))
        for px, size in new.items():
            if px not in old_map:
                pending.add("orderBookL2_25", symbol, "insert", row(px, size))
            elif old_map[px] != size:
                pending.add("orderBookL2_25", symbol, "update", row(px, size))

    def _instrument_delta(self, symbol: str, pending: _Pending) -> None:
        fresh = self.live(symbol)
        last = self.published.get(symbol)
        self.published[symbol] = fresh
        if last is None:
            return
        changed = {k: v for k, v in fresh.items() if last.get(k) != v and k != "timestamp"}
        if changed:
            changed["symbol"] = symbol
            changed["timestamp"] = fresh["timestamp"]
            pending.add("instrument", symbol, "update", changed)

    # Start-up ------------------------------------------------------------------------------------

    def seed(self, markets: Iterable[Any], ts_ns: int) -> None:
        """Load the recovered engine's public state (``gateway.bootstrap.MarketSeed``s)."""
        self.ts_ns = max(self.ts_ns, ts_ns)
        for seed in markets:
            spec = self.specs.get(seed.symbol)
            book = self.books.get(seed.symbol)
            if spec is None or book is None:
                continue
            stats = self.stats[seed.symbol]
            stats.state = seed.state
            stats.last_ticks = seed.last_price
            stats.ts_ns = max(stats.ts_ns, ts_ns)
            if seed.mark_fine is not None:
                stats.mark_fine = seed.mark_fine
                stats.index_fine = seed.index_fine
                stats.funding_rate_ppb = seed.funding_rate_ppb
                stats.indicative_rate_ppb = seed.indicative_rate_ppb
                stats.next_funding_ns = seed.next_funding_ns
            if seed.index_fine is not None:
                value = (seed.index_fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK)
                stats.index = value
                reference = self.stats.get(spec.reference_symbol)
                if reference is not None:
                    reference.index = value
                    reference.ts_ns = max(reference.ts_ns, ts_ns)
            for side, levels in ((1, seed.bids), (-1, seed.asks)):
                for level_price, size in levels:
                    book.set(side, level_price, size, ts_ns)
            self._quote(seed.symbol, book, _Pending())
            for account, qty in seed.positions.items():
                self.positions[(account, seed.symbol)] = qty
                stats.open_interest += max(qty, 0)
            if seed.mark_fine is not None and seed.symbol in self.rates.series:
                self._seed_rates(seed, ts_ns)

    def _seed_rates(self, seed: Any, ts_ns: int) -> None:
        """The funding series of a sampling perpetual from the engine's funding state (the
        premium index itself waits for the next sample: ``rate_indices``)."""
        self.stats[seed.symbol].interest_ppb = seed.interest_ppb
        self._publish_rates(
            self.rates.seed(
                seed.symbol, seed.interest_ppb, seed.premium_sum_ppb, seed.premium_count
            ),
            ts_ns,
        )

    def seed_risk(
        self,
        orders: Iterable[Any],
        fund: Iterable[tuple[str, int]],
        funding: Iterable[Any],
        settlement: Iterable[Any],
        ts_ns: int,
    ) -> None:
        """The liquidation engine's working orders, the fund's balances, recent funding and
        settlement rows (read-model rows)."""
        for order in orders:
            spec = self.specs.get(order.symbol)
            if spec is not None and order.account < 0:
                self.risk.seed_liquidation(order, spec)
        for currency, balance in fund:
            self.risk.seed_insurance(currency, ts_ns, balance)
        for row in funding:
            self.risk.funding.append(
                funding_wire(
                    row.timestamp_ns,
                    row.symbol,
                    row.funding_interval_ns,
                    row.funding_rate_num,
                    row.funding_rate_den,
                )
            )
        for row in settlement:
            self.risk.settlement.append(
                settlement_wire(
                    row.timestamp_ns,
                    row.symbol,
                    row.settlement_type,
                    row.settled_price_num,
                    row.settled_price_den,
                    row.bankrupt,
                    row.tax_base,
                    row.tax_rate_ppm,
                )
            )

    def seed_trades(self, trades: Iterable[tuple[Trade, str]]) -> None:
        """Replay recent prints (oldest first, with their stored tick directions) into the tape,
        the bins and the statistics; call before ``seed`` (the engine's last price wins)."""
        for trade, direction in trades:
            if trade.symbol in self.trades:
                self._trade(trade, _Pending(), direction)

    # Time ---------------------------------------------------------------------------------------

    def roll(self, now_ns: int) -> list[Delta]:
        """Close trade and quote bins that ended by ``now_ns``."""
        pending = _Pending()
        for (size, symbol), bins in self.bins.items():
            for row in bins.roll(now_ns):
                pending.add(f"tradeBin{size}", symbol, "insert", row)
                quote = self.quotes[symbol][-1] if self.quotes[symbol] else None
                if quote is not None:
                    qrow = dict(quote, timestamp=row["timestamp"])
                    self.quote_bins[(size, symbol)].append(qrow)
                    pending.add(f"quoteBin{size}", symbol, "insert", qrow)
        return pending.out

    # Views --------------------------------------------------------------------------------------

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
        book = self.books[symbol]
        spec = self.specs[symbol]
        ts = iso_ms(book.ts_ns or self.ts_ns)
        rows = []
        for side in (-1, 1):
            levels = book.top(side, depth)
            if side == -1:
                levels.reverse()
            for px, size in levels:
                rows.append(
                    {
                        "symbol": symbol,
                        "id": level_id(spec.index, px),
                        "side": SIDE_NAMES[side],
                        "size": size,
                        "price": price(spec, px),
                        "timestamp": ts,
                    }
                )
        return rows

    def book10_row(self, symbol: str) -> dict[str, Any]:
        book = self.books[symbol]
        spec = self.specs[symbol]
        return {
            "symbol": symbol,
            "bids": [[price(spec, p), s] for p, s in book.top(1, BOOK10_DEPTH)],
            "asks": [[price(spec, p), s] for p, s in book.top(-1, BOOK10_DEPTH)],
            "timestamp": iso_ms(book.ts_ns or self.ts_ns),
        }

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


# --- the handler table: one entry per event kind that changes a public view -----------------


def _on_book_level(md: MarketData, fold: _Fold, event: BookLevel) -> None:
    md._book_level(event, fold.before, fold.pending)
    fold.touched.add(event.symbol)


def _on_order(md: MarketData, fold: _Fold, event: OrderEvent) -> None:
    if event.account < 0:  # the insurance fund's orders: the public liquidation table
        md._fund_order(fold.seq, event, fold.pending)


def _on_trade(md: MarketData, fold: _Fold, event: Trade) -> None:
    md._trade(event, fold.pending)
    md.trade_seq = fold.seq
    fold.touched.add(event.symbol)


def _on_mark(md: MarketData, fold: _Fold, event: MarkUpdated) -> None:
    if md._mark(event):
        fold.touched.add(event.symbol)


def _on_index(md: MarketData, fold: _Fold, event: IndexUpdated) -> None:
    fold.touched.update(md._index(event))


def _on_state(md: MarketData, fold: _Fold, event: InstrumentStateChanged) -> None:
    stats = md.stats.get(event.symbol)
    if stats is not None:
        stats.state = event.state
        fold.touched.add(event.symbol)


def _on_position(md: MarketData, fold: _Fold, event: PositionChanged) -> None:
    if md._position(event):
        fold.touched.add(event.symbol)


def _on_transfer(md: MarketData, fold: _Fold, event: Transfer) -> None:
    md._transfer(fold.seq, event, fold.pending)


def _on_funding(md: MarketData, fold: _Fold, event: Funding) -> None:
    fold.pending.add("funding", event.symbol, "insert", md.risk.on_funding(fold.seq, event))


def _on_settled(md: MarketData, fold: _Fold, event: Settled) -> None:
    md._settled(fold.seq, event, fold.pending)


def _on_premium(md: MarketData, fold: _Fold, event: PremiumSampled) -> None:
    fold.touched.update(md._premium(event))


def _on_announcement(md: MarketData, fold: _Fold, event: AnnouncementPublished) -> None:
    fold.pending.add("announcement", "", "insert", md.announcements.publish(fold.seq, event))


def _on_announcement_withdrawn(md: MarketData, fold: _Fold, event: AnnouncementWithdrawn) -> None:
    row = md.announcements.withdraw(event.announcement_id)
    if row is not None:
        fold.pending.add("announcement", "", "delete", row)


_HANDLERS: dict[type, Callable[[MarketData, _Fold, Any], None]] = {
    BookLevel: _on_book_level,
    OrderEvent: _on_order,
    Trade: _on_trade,
    MarkUpdated: _on_mark,
    IndexUpdated: _on_index,
    InstrumentStateChanged: _on_state,
    PositionChanged: _on_position,
    Transfer: _on_transfer,
    Funding: _on_funding,
    Settled: _on_settled,
    PremiumSampled: _on_premium,
    AnnouncementPublished: _on_announcement,
    AnnouncementWithdrawn: _on_announcement_withdrawn,
}
