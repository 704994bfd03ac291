"""Start-up: the public views loaded from what the recovered engine and the read models hold.

The gateway's bootstrap calls these through `hub.MarketData` (``seed``, ``seed_risk``) before
the first durable batch is folded, so a client's first partial equals what the engine holds.

Invariants
    - Seeding only fills views of known instruments; an unknown symbol is skipped, not added.
    - Marks, indices and funding state are the engine's own values (millionths of a tick, parts
      per billion): nothing is recomputed here; the funding series' premium index waits for
      the next sample (`rate_indices`).
    - Open interest is the sum of the long positions, as the fold keeps it afterwards.
    - Seeding publishes no delta: a quote built here only enters the quote tape.
"""

from collections.abc import Iterable
from typing import Any

from perpetua.core.units import PRICE_FINE_PER_TICK
from perpetua.marketdata.book_rows import next_quote
from perpetua.marketdata.risk_tables import funding_wire, settlement_wire
from perpetua.marketdata.views import MarketViews
from perpetua.sequencer.seed import MarketSeed

__all__ = ["seed_markets", "seed_risk"]


def seed_markets(views: MarketViews, markets: Iterable[MarketSeed], ts_ns: int) -> None:
    """Load the recovered engine's public state (``sequencer.seed.MarketSeed``s)."""
    views.ts_ns = max(views.ts_ns, ts_ns)
    for seed in markets:
        spec = views.specs.get(seed.symbol)
        book = views.books.get(seed.symbol)
        if spec is None or book is None:
            continue
        stats = views.stats[seed.symbol]
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
            reference = views.stats.get(spec.reference_symbol)
            if reference is not None:
                reference.index = value
                reference.ts_ns = max(reference.ts_ns, ts_ns)
        for side, levels in ((1, seed.bids), (-1, seed.asks)):
            for level_price, size in levels:
                book.set(side, level_price, size, ts_ns)
        next_quote(spec, book, views.quotes[seed.symbol])
        for account, qty in seed.positions.items():
            views.positions[(account, seed.symbol)] = qty
            stats.open_interest += max(qty, 0)
        if seed.mark_fine is not None and seed.symbol in views.rates.series:
            _seed_rates(views, seed, ts_ns)


def _seed_rates(views: MarketViews, seed: MarketSeed, ts_ns: int) -> None:
    """The funding series of a sampling perpetual from the engine's funding state (the
    premium index itself waits for the next sample: ``rate_indices``)."""
    views.stats[seed.symbol].interest_ppb = seed.interest_ppb
    views.publish_rates(
        views.rates.seed(seed.symbol, seed.interest_ppb, seed.premium_sum_ppb, seed.premium_count),
        ts_ns,
    )


def seed_risk(
    views: MarketViews,
    orders: Iterable[Any],
    fund: Iterable[tuple[str, int]],
    funding: Iterable[Any],
    settlement: Iterable[Any],
    ts_ns: int,
) -> None:
    """The liquidation engine's working orders, the fund's balances, recent funding and
    settlement rows (read-model rows)."""
    for order in orders:
        spec = views.specs.get(order.symbol)
        if spec is not None and order.account < 0:
            views.risk.seed_liquidation(order, spec)
    for currency, balance in fund:
        views.risk.seed_insurance(currency, ts_ns, balance)
    for row in funding:
        views.risk.funding.append(
            funding_wire(
                row.timestamp_ns,
                row.symbol,
                row.funding_interval_ns,
                row.funding_rate_num,
                row.funding_rate_den,
            )
        )
    for row in settlement:
        views.risk.settlement.append(
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
