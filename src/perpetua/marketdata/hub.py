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
At start-up ``seed`` loads what the recovered engine holds (``gateway.bootstrap``; the work is
in ``seeding``); ``add`` makes a future listed at runtime known (the gateway calls it when the
stream lists one). The state and its reads are ``views.MarketViews``; the book tables' rows
are built in ``book_rows``.

Invariants
    - Folding is deterministic and in event order: each event kind has one handler in
      ``_HANDLERS``; kinds without one change no public view.
    - The views are always current; deltas that cost work (``orderBookL2_25``,
      ``orderBook10``, ``instrument`` diffs) are computed only while ``wanted`` names them.
    - Derived rows (quotes, top-of-book tables, instrument diffs) are redone once per command
      per touched symbol, in symbol order, after all its events are folded.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from perpetua.core.commands import Command
from perpetua.core.events import (
    AnnouncementPublished,
    AnnouncementWithdrawn,
    BookLevel,
    Event,
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
from perpetua.marketdata.book import L2Book
from perpetua.marketdata.book_rows import (
    BOOK10_DEPTH,
    L2_25_DEPTH,
    diff_top,
    level_row,
    next_quote,
)
from perpetua.marketdata.deltas import Delta, PendingDeltas
from perpetua.marketdata.seeding import seed_markets, seed_risk
from perpetua.marketdata.trades import BIN_SIZES_NS, tick_direction, trade_row
from perpetua.marketdata.views import QUOTES_RETAINED_MAX, MarketViews
from perpetua.sequencer.seed import MarketSeed
from perpetua.wire.values import iso_ms

__all__ = ["QUOTES_RETAINED_MAX", "MarketData"]


class Fold:
    """What folding one command's events gathers: its deltas, the book levels as they were
    before it (for level ids and quotes) and the symbols whose derived rows must be redone."""

    __slots__ = ("before", "pending", "seq", "touched")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.pending = PendingDeltas()
        self.before: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self.touched: set[str] = set()


class MarketData(MarketViews):
    # Applying events ---------------------------------------------------------------------------

    def apply(self, seq: int, ts_ns: int, command: Command, events: Sequence[Event]) -> list[Delta]:
        """Fold one command's events (each through its entry in ``_HANDLERS``; kinds without
        one change no public view) and return the public deltas, merged per table."""
        self.seq = seq
        self.ts_ns = max(self.ts_ns, ts_ns)
        fold = Fold(seq)
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

    def _fund_order(self, seq: int, event: OrderEvent, pending: PendingDeltas) -> None:
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        change = self.risk.on_order(seq, event, spec)
        if change is not None:
            pending.add("liquidation", event.symbol, change[0], change[1])

    def _settled(self, seq: int, event: Settled, pending: PendingDeltas) -> None:
        spec = self.specs.get(event.symbol)
        if spec is not None:
            pending.add(
                "settlement", event.symbol, "insert", self.risk.on_settled(seq, event, spec)
            )

    def _book_level(
        self,
        event: BookLevel,
        before: dict[tuple[str, int], list[tuple[int, int]]],
        pending: PendingDeltas,
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
        size = event.size if event.size else old
        row = level_row(spec, event.side, event.price, size, iso_ms(event.ts_ns))
        pending.add("orderBookL2", event.symbol, action, row)

    def _trade(self, event: Trade, pending: PendingDeltas, direction: str = "") -> None:
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
        touched = self.publish_rates(self.rates.on_sample(event), event.ts_ns)
        stats = self.stats.get(event.symbol)
        if stats is not None and stats.interest_ppb != event.interest_ppb:
            stats.interest_ppb = event.interest_ppb
            touched.append(event.symbol)
        return touched

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

    def _transfer(self, seq: int, event: Transfer, pending: PendingDeltas) -> None:
        row = self.risk.on_transfer(seq, event)
        if row is not None:
            pending.add("insurance", "", "insert", row)

    def _after(
        self,
        touched: set[str],
        before: dict[tuple[str, int], list[tuple[int, int]]],
        pending: PendingDeltas,
    ) -> None:
        for symbol in sorted(touched):
            book = self.books.get(symbol)
            if book is not None and ((symbol, 1) in before or (symbol, -1) in before):
                if "orderBookL2_25" in self.wanted:
                    for side in (-1, 1):
                        if (symbol, side) in before:
                            diff_top(
                                self.specs[symbol], book, side, before[(symbol, side)], pending
                            )
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

    def _instrument_delta(self, symbol: str, pending: PendingDeltas) -> None:
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

    def _quote(self, symbol: str, book: L2Book, pending: PendingDeltas) -> None:
        row = next_quote(self.specs[symbol], book, self.quotes[symbol])
        if row is not None:
            pending.add("quote", symbol, "insert", row)

    # Start-up ------------------------------------------------------------------------------------

    def seed(self, markets: Iterable[MarketSeed], ts_ns: int) -> None:
        """Load the recovered engine's public state (``sequencer.seed.MarketSeed``s)."""
        seed_markets(self, markets, ts_ns)

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
        seed_risk(self, orders, fund, funding, settlement, ts_ns)

    def seed_trades(self, trades: Iterable[tuple[Trade, str]]) -> None:
        """Replay recent prints (oldest first, with their stored tick directions) into the tape,
        the bins and the statistics; call before ``seed`` (the engine's last price wins)."""
        for trade, direction in trades:
            if trade.symbol in self.trades:
                self._trade(trade, PendingDeltas(), direction)

    # Time ---------------------------------------------------------------------------------------

    def roll(self, now_ns: int) -> list[Delta]:
        """Close trade and quote bins that ended by ``now_ns``."""
        pending = PendingDeltas()
        for (size, symbol), bins in self.bins.items():
            for row in bins.roll(now_ns):
                pending.add(f"tradeBin{size}", symbol, "insert", row)
                quote = self.quotes[symbol][-1] if self.quotes[symbol] else None
                if quote is not None:
                    qrow = dict(quote, timestamp=row["timestamp"])
                    self.quote_bins[(size, symbol)].append(qrow)
                    pending.add(f"quoteBin{size}", symbol, "insert", qrow)
        return pending.out


# --- the handler table: one entry per event kind that changes a public view -----------------


def _on_book_level(md: MarketData, fold: Fold, event: BookLevel) -> None:
    md._book_level(event, fold.before, fold.pending)
    fold.touched.add(event.symbol)


def _on_order(md: MarketData, fold: Fold, event: OrderEvent) -> None:
    if event.account < 0:  # the insurance fund's orders: the public liquidation table
        md._fund_order(fold.seq, event, fold.pending)


def _on_trade(md: MarketData, fold: Fold, event: Trade) -> None:
    md._trade(event, fold.pending)
    md.trade_seq = fold.seq
    fold.touched.add(event.symbol)


def _on_mark(md: MarketData, fold: Fold, event: MarkUpdated) -> None:
    if md._mark(event):
        fold.touched.add(event.symbol)


def _on_index(md: MarketData, fold: Fold, event: IndexUpdated) -> None:
    fold.touched.update(md._index(event))


def _on_state(md: MarketData, fold: Fold, event: InstrumentStateChanged) -> None:
    stats = md.stats.get(event.symbol)
    if stats is not None:
        stats.state = event.state
        fold.touched.add(event.symbol)


def _on_position(md: MarketData, fold: Fold, event: PositionChanged) -> None:
    if md._position(event):
        fold.touched.add(event.symbol)


def _on_transfer(md: MarketData, fold: Fold, event: Transfer) -> None:
    md._transfer(fold.seq, event, fold.pending)


def _on_funding(md: MarketData, fold: Fold, event: Funding) -> None:
    fold.pending.add("funding", event.symbol, "insert", md.risk.on_funding(fold.seq, event))


def _on_settled(md: MarketData, fold: Fold, event: Settled) -> None:
    md._settled(fold.seq, event, fold.pending)


def _on_premium(md: MarketData, fold: Fold, event: PremiumSampled) -> None:
    fold.touched.update(md._premium(event))


def _on_announcement(md: MarketData, fold: Fold, event: AnnouncementPublished) -> None:
    fold.pending.add("announcement", "", "insert", md.announcements.publish(fold.seq, event))


def _on_announcement_withdrawn(md: MarketData, fold: Fold, event: AnnouncementWithdrawn) -> None:
    row = md.announcements.withdraw(event.announcement_id)
    if row is not None:
        fold.pending.add("announcement", "", "delete", row)


_HANDLERS: dict[type, Callable[[MarketData, Fold, Any], None]] = {
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
