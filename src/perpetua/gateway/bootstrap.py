"""Start-up: make the gateway's in-memory views equal the recovered engine before serving.

After a restart the views would otherwise start empty while the engine holds books, orders,
positions and balances. Two sources, each for what it holds exactly (docs/decisions.md §7):

* **public market state from the recovered engine**, read once in the serving process after
  ``Sequencer.open`` and before ``Sequencer.start`` (``sequencer.seed.engine_seed``, the
  ``EngineSeed``): L2 levels (visible sizes), last price, mark, index, funding rates and next
  funding time, instrument states and open interest, and the instruments themselves, with
  the futures listed at runtime.
* **private state from the read models**, once the projector has caught up to the recovered
  seq: open orders, positions with their margin figures, wallets (``seed_views``). Those views
  are folds of the same events the projector folds, so the two agree; the read models keep
  what the engine does not (deposit and withdrawal totals, the published margin figures).
  Recent trades, trade bins, the risk tables' recent rows and the operator's announcements
  come from the read models too.

The read models are always there (``--no-store`` keeps them in a temporary file), so this is
the one start-up path. ``tests/gateway/test_restart.py`` pins the contract.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row

from perpetua.core.events import OrderEvent, PositionChanged, Trade, UnstakingUpdated
from perpetua.core.ledger import INSURANCE
from perpetua.gateway.costs import UNSTAKING_RETAINED_MAX
from perpetua.gateway.surface import GatewaySurface
from perpetua.sequencer.seed import EngineSeed
from perpetua.store import queries
from perpetua.store.rows import (
    TICK_DIRECTION_NAMES,
    order_event_of,
    position_event_of,
    trade_of,
)

__all__ = ["StoreSeed", "seed_views"]

RECENT_TRADES_SEEDED_MAX = 1_000  # per symbol: the tape the hub keeps
RECENT_ROWS_SEEDED_MAX = 100  # funding and settlement rows for WebSocket partials


def _recent_trades(conn: Connection, symbols: Iterable[str]) -> list[tuple[Trade, str]]:
    trades: list[tuple[Trade, str]] = []
    for symbol in symbols:
        rows = queries.query_trades(
            conn, symbol=[symbol], count=RECENT_TRADES_SEEDED_MAX, reverse=True
        )
        trades.extend(
            (trade_of(row), TICK_DIRECTION_NAMES.get(row.tick_direction, ""))
            for row in reversed(rows)
        )
    return trades


class StoreSeed(NamedTuple):
    """What the read models give the views at start-up."""

    withdrawals: list[Row[Any]]  # the pending withdrawals' wallet history rows
    orders: list[OrderEvent]  # open orders, as the events that made them
    positions: list[PositionChanged]
    wallets: list[Row[Any]]
    trades: list[tuple[Trade, str]]  # recent prints with their tick directions, oldest first
    funding: list[Row[Any]]
    settlement: list[Row[Any]]
    announcements: list[Row[Any]]
    unstaking: list[Row[Any]]
    last_seq: int


def _store_reads(
    conn: Connection, symbols: list[str], withdrawals: tuple[tuple[int, str], ...]
) -> StoreSeed:
    return StoreSeed(
        withdrawals=queries.withdrawal_rows(conn, withdrawals),
        orders=[order_event_of(r) for r in queries.open_orders_of_all(conn)],
        positions=[position_event_of(r) for r in queries.positions_of_all(conn)],
        wallets=queries.wallets_of_all(conn),
        trades=_recent_trades(conn, symbols),
        funding=list(
            reversed(queries.query_funding(conn, count=RECENT_ROWS_SEEDED_MAX, reverse=True))
        ),
        settlement=list(
            reversed(queries.query_settlement(conn, count=RECENT_ROWS_SEEDED_MAX, reverse=True))
        ),
        announcements=queries.announcements_of_all(conn),
        unstaking=queries.unstaking_of_all(conn, UNSTAKING_RETAINED_MAX),
        last_seq=queries.last_projected_seq(conn),
    )


def _unstaking(rows: Iterable[Any], seed: EngineSeed) -> list[UnstakingUpdated]:
    """The requests as the views first saw them, oldest change first: the engine's pending
    ones (with the time the read models recorded for them; the engine keeps none) and the
    ended ones the read models keep (the engine forgets them)."""
    stored = {r.request_id: r for r in rows}
    pending = {u.request_id for u in seed.unstaking}
    events = [
        UnstakingUpdated(r.timestamp_ns, r.request_id, r.account, r.currency, r.amount,
                         r.release_ns, r.status)
        for r in stored.values()
        if r.status != "Pending" and r.request_id not in pending
    ]  # fmt: skip
    for request in seed.unstaking:
        row = stored.get(request.request_id)
        events.append(request if row is None else request._replace(ts_ns=row.timestamp_ns))
    events.sort(key=lambda e: (e.ts_ns, e.request_id))
    return events


def seed_views(gw: GatewaySurface, seed: EngineSeed) -> None:
    """Load ``gw``'s views: public state from ``seed``, private state from the read models
    (caught up to ``seed.seq``)."""
    for spec in seed.instruments:  # futures listed before the restart (the others are known)
        gw.add_instrument(spec)
    for series in seed.series:
        gw.series[series.key] = series
    market = gw.market
    reads = gw.history.read_now(_store_reads, list(market.books), seed.withdrawals)
    if max(reads.last_seq, 0) < seed.seq:
        raise RuntimeError(
            f"read models at seq {reads.last_seq}, engine at {seed.seq}: "
            "catch the projector up before seeding the gateway"
        )
    market.seed_trades(reads.trades)
    market.seed(seed.markets, seed.ts_ns)
    orders = reads.orders
    gw.private.seed(orders, reads.positions, reads.wallets, reads.withdrawals, seed.ranks)
    gw.private.costs.seed(seed.fees, seed.stakes, _unstaking(reads.unstaking, seed))
    fund = [(row.currency, row.amount) for row in reads.wallets if row.account == INSURANCE]
    market.seed_risk(orders, fund, reads.funding, reads.settlement, seed.ts_ns)
    market.announcements.seed(reads.announcements)
    gw.last_seq = max(gw.last_seq, seed.seq)
