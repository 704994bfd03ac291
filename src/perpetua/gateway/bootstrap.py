"""Start-up: make the gateway's in-memory views equal the recovered engine before serving.

After a restart the views would otherwise start empty while the engine holds books, orders,
positions and balances. Two sources, each for what it holds exactly (docs/decisions.md §7):

* **public market state from the recovered engine**, read once in the serving process after
  ``Sequencer.open`` and before ``Sequencer.start`` (while no thread touches the engine):
  L2 levels (visible sizes), last price, mark, index, funding rates and next funding time,
  instrument states and open interest (``engine_seed``), and the instruments themselves, with
  the futures listed at runtime. Nothing else knows the visible size of an iceberg tranche or
  the current mark: no event history re-derives them after a snapshot.
* **private state from the read models**, once the projector has caught up to the recovered
  seq: open orders, positions with their margin figures, wallets (``seed_views``). Those views
  are folds of the same events the projector folds, so the two agree; the read models keep
  what the engine does not (deposit and withdrawal totals, the published margin figures).
  Recent trades, trade bins, the risk tables' recent rows and the operator's announcements
  come from the read models too.

Without read models (``--no-store``), open orders and wallet balances come from the engine
(``engine_private``); positions start from their quantities and costs and get their margin
figures with their next change.

The engine is read by attribute (``state.markets``, ``market.book``, ...), never by importing
core internals: the layering rule holds. ``tests/gateway/test_restart.py`` pins the contract.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Connection

from perpetua.core.catalogue import FutureSeries
from perpetua.core.enums import ExecType
from perpetua.core.events import (
    AccountRestricted,
    OrderEvent,
    PositionChanged,
    StakingChanged,
    Trade,
    UnstakingUpdated,
)
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.ledger import INSURANCE
from perpetua.core.staking import staking_tier
from perpetua.gateway.costs import UNSTAKING_RETAINED_MAX
from perpetua.store import queries
from perpetua.store.rows import (
    TICK_DIRECTION_NAMES,
    order_event_of,
    position_event_of,
    trade_of,
)
from perpetua.wire.values import JsonRow

__all__ = ["EngineSeed", "MarketSeed", "engine_seed", "seed_views"]

RECENT_TRADES_SEEDED_MAX = 1_000  # per symbol: the tape the hub keeps
RECENT_ROWS_SEEDED_MAX = 100  # funding and settlement rows for WebSocket partials


class MarketSeed(NamedTuple):
    symbol: str
    state: str
    last_price: int | None
    mark_fine: int | None
    index_fine: int | None
    funding_rate_ppb: int
    indicative_rate_ppb: int
    next_funding_ns: int
    bids: list[tuple[int, int]]  # (price ticks, visible size), any order
    asks: list[tuple[int, int]]
    positions: dict[int, int]  # account -> signed quantity (open ones)
    # the funding series (.XBTUSDPI8H, .XBTBON8H, ...): the interval's samples, the interest
    premium_sum_ppb: int = 0
    premium_count: int = 0
    interest_ppb: int = 0


class EngineSeed(NamedTuple):
    seq: int  # the last command in the recovered state
    ts_ns: int
    markets: list[MarketSeed]
    orders: list[OrderEvent]  # live orders, for a gateway without read models
    balances: dict[tuple[int, str], int]  # (account, currency) -> ledger balance
    positions: list[PositionChanged]  # quantities and costs only (no margin figures)
    instruments: tuple[InstrumentSpec, ...] = ()  # the engine's: with futures listed at runtime
    restrictions: tuple[AccountRestricted, ...] = ()  # accounts' restrictions (core.restrictions)
    fees: dict[int, tuple[int, int]] = {}  # account -> (fee tier, effective discount ppm)
    stakes: tuple[StakingChanged, ...] = ()
    unstaking: tuple[UnstakingUpdated, ...] = ()  # pending requests
    series: tuple[FutureSeries, ...] = ()  # the futures series it defined (catalogue file)
    withdrawals: tuple[tuple[int, str], ...] = ()  # pending: (account, withdrawal id)


def _levels(side: Any) -> list[tuple[int, int]]:
    return [
        (price, level.visible_size)
        for price, level in side.levels.items()
        if level.visible_size > 0
    ]


def _market_seed(market: Any) -> MarketSeed:
    funding = market.funding
    return MarketSeed(
        market.spec.symbol,
        market.state,
        market.last_price,
        market.mark_fine,
        market.index_fine,
        funding.rate_ppb,
        funding.indicative_rate_ppb,
        funding.next_funding_ns,
        _levels(market.book.bids),
        _levels(market.book.asks),
        {account: pos.qty for account, pos in market.positions.items() if pos.qty},
        funding.premium_sum_ppb,
        funding.premium_count,
        funding.interest_ppb,
    )


def engine_seed(engine: Any, seq: int) -> EngineSeed:
    """Everything the views need from a recovered, not yet started engine (read once)."""
    state = engine.state
    markets = [_market_seed(m) for m in state.markets.values()]
    orders = [o.to_event(state.ts_ns, ExecType.NEW, 0) for _, o in sorted(state.orders.items())]
    balances = {
        (account, currency): amount
        for currency, book in state.ledger.balances.items()
        for account, amount in book.items()
        if amount
    }
    positions = [
        PositionChanged(
            state.ts_ns,
            pos.account,
            m.spec.symbol,
            pos.qty,
            pos.cost,
            pos.realised_pnl,
            0,
            pos.leverage_e2,
            pos.risk_limit,
            pos.deposit,
            open_comm=pos.open_comm,
        )
        for m in state.markets.values()
        for pos in m.positions.values()
    ]
    restrictions = tuple(
        AccountRestricted(
            state.ts_ns, account, r.trading, r.products_denied, r.deposits, r.withdrawals, r.cause
        )
        for account, r in sorted(state.restrictions.items())
    )
    return EngineSeed(
        seq,
        state.ts_ns,
        markets,
        orders,
        balances,
        positions,
        tuple(engine.instruments),
        restrictions,
        *_cost_seed(state),
        tuple(state.series.values()),
        tuple(
            (w.account, w.withdrawal_id)
            for _, w in sorted(state.withdrawals.items())
            if w.status == "Pending"
        ),
    )


def _cost_seed(
    state: Any,
) -> tuple[dict[int, tuple[int, int]], tuple[StakingChanged, ...], tuple[UnstakingUpdated, ...]]:
    """Fee settings, stakes and pending unstaking requests, as the events that made them."""
    fees = {
        account: (acct.fee_tier, max(acct.discount_ppm, acct.staking_discount_ppm))
        for account, acct in sorted(state.accounts.items())
        if acct.fee_tier or acct.discount_ppm or acct.staking_discount_ppm
    }
    stakes = tuple(
        StakingChanged(
            state.ts_ns,
            r.account,
            r.currency,
            r.staked,
            r.unstaking,
            r.eligible,
            staking_tier(r.eligible),
        )
        for _, r in sorted(state.stakes.items())
    )
    unstaking = tuple(
        UnstakingUpdated(state.ts_ns, u.request_id, u.account, u.currency, u.amount, u.release_ns,
                         u.status)
        for _, u in sorted(state.unstaking.items())
    )  # fmt: skip
    return fees, stakes, unstaking


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


def _store_reads(
    conn: Any, symbols: list[str], withdrawals: tuple[tuple[int, str], ...]
) -> JsonRow:
    return {
        "withdrawals": queries.withdrawal_rows(conn, withdrawals),
        "orders": [order_event_of(r) for r in queries.open_orders_of_all(conn)],
        "positions": [position_event_of(r) for r in queries.positions_of_all(conn)],
        "wallets": queries.wallets_of_all(conn),
        "trades": _recent_trades(conn, symbols),
        "funding": list(
            reversed(queries.query_funding(conn, count=RECENT_ROWS_SEEDED_MAX, reverse=True))
        ),
        "settlement": list(
            reversed(queries.query_settlement(conn, count=RECENT_ROWS_SEEDED_MAX, reverse=True))
        ),
        "announcements": queries.announcements_of_all(conn),
        "unstaking": queries.unstaking_of_all(conn, UNSTAKING_RETAINED_MAX),
        "last_seq": queries.last_projected_seq(conn),
    }


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


def seed_views(gw: Any, seed: EngineSeed) -> None:
    """Load ``gw``'s views: public state from ``seed``, private state from the read models
    (caught up to ``seed.seq``) or, without them, from ``seed``."""
    for spec in seed.instruments:  # futures listed before the restart (the others are known)
        gw.add_instrument(spec)
    for series in seed.series:
        gw.series[series.key] = series
    market = gw.market
    reads = gw.history.read_now(_store_reads, list(market.books), seed.withdrawals)
    if max(reads["last_seq"], 0) < seed.seq:
        raise RuntimeError(
            f"read models at seq {reads['last_seq']}, engine at {seed.seq}: "
            "catch the projector up before seeding the gateway"
        )
    market.seed_trades(reads["trades"])
    market.seed(seed.markets, seed.ts_ns)
    orders = reads["orders"]
    gw.private.seed(orders, reads["positions"], reads["wallets"], reads["withdrawals"])
    gw.private.costs.seed(seed.fees, seed.stakes, _unstaking(reads["unstaking"], seed))
    fund = [(row.currency, row.amount) for row in reads["wallets"] if row.account == INSURANCE]
    market.seed_risk(orders, fund, reads["funding"], reads["settlement"], seed.ts_ns)
    market.announcements.seed(reads["announcements"])
    gw.last_seq = max(gw.last_seq, seed.seq)
