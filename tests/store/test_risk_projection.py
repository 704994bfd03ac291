"""The risk engine's events in the read models, on SQLite and PostgreSQL: funding rows, funding,
liquidation, deleverage and settlement executions, the liquidation engine's orders, settlement
rows, positions with their margin figures, and the start-up reads."""

from typing import Any

import pytest
from sqlalchemy import Engine, select

from perpetua.core.catalogue import by_symbol, default_catalogue, quarterly_expiry_ns
from perpetua.core.commands import DefineFutureSeries, Deposit, IndexPrice, ListFuture, Tick
from perpetua.core.enums import ExecType, OrdStatus, Side
from perpetua.core.events import (
    Deleveraged,
    FundingPaid,
    OrderEvent,
    PositionChanged,
    PositionLiquidated,
    Transfer,
)
from perpetua.core.ledger import CLEARING, INSURANCE, TransferCode
from perpetua.store import Projector, queries
from perpetua.store.risk_rows import (
    SYNTHETIC_EXEC_ID_BASE,
    risk_executions,
    synthetic_exec_id,
)
from perpetua.store.rows import order_event_of, position_event_of
from perpetua.store.schema import executions, funding, liquidations, settlement
from perpetua.wire.vocabulary import (
    EXEC_TYPE_BANKRUPTCY,
    EXEC_TYPE_DELEVERAGE,
    EXEC_TYPE_LIQUIDATION,
)
from tests.store.risk_stream import EXPIRY, HOUR, XBT, Stream, run

SPECS = by_symbol(default_catalogue())


@pytest.fixture
def risk(engine: Engine) -> tuple[Any, list[Any]]:
    core, records = run()
    assert Projector(engine).project(records) == len(records)
    return core, records


def _rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def _executions(engine: Engine, account: int, exec_type: int) -> list[Any]:
    return [
        r for r in _rows(engine, executions) if r.account == account and r.exec_type == exec_type
    ]


def test_funding_rows_and_executions(engine: Engine, risk: Any) -> None:
    rows = [r for r in _rows(engine, funding) if r.symbol == "XBTUSD"]
    assert rows and all((r.funding_rate_num, r.funding_rate_den) == (100_000, 10**9) for r in rows)
    paid = [r for r in _executions(engine, 5, ExecType.FUNDING)]
    received = _executions(engine, 6, ExecType.FUNDING)
    assert len(paid) == len(received) == len(rows)
    first = paid[0]
    assert first.exec_id >= SYNTHETIC_EXEC_ID_BASE and first.order_id == 0
    assert (first.last_qty, first.exec_comm, first.ord_status) == (1000, 167, OrdStatus.FILLED)
    assert first.last_px == 600_000  # the mark, 60 000.0
    assert first.exec_cost == -1_666_666  # an inverse long is worth a negative value
    # floor of 166.67 received, ceil paid: the unit left goes to the residue account
    assert received[0].exec_comm == -166 and received[0].exec_cost == 1_666_666
    assert first.fee_rate_ppm == 100  # 0.01%
    with engine.connect() as conn:
        history = queries.query_executions(conn, 5, exec_types=queries.TRADE_HISTORY_EXEC_TYPES)
        assert ExecType.FUNDING in {r.exec_type for r in history}
        by_name = queries.query_executions(conn, 5, filter={"execType": "Funding"})
        assert len(by_name) == len(paid)
        wallet = queries.query_transactions(conn, 5, "XBt")
        assert any(r.transact_type == "RealisedPNL" and r.amount == -167 for r in wallet)


def test_liquidation_deleverage_and_the_liquidation_table(engine: Engine, risk: Any) -> None:
    _core, records = risk
    taken = [ev for r in records for ev in r[3] if isinstance(ev, PositionLiquidated)]
    first = _executions(engine, 1, EXEC_TYPE_LIQUIDATION)
    assert len(first) == 1
    row = first[0]
    assert (row.side, row.last_qty, row.last_px, row.exec_comm) == (
        -1,
        2000,
        taken[0].price,
        taken[0].fee,
    )
    assert row.exec_cost == -2000 * 10 * taken[0].price // 20  # value of selling 2000 at Pb
    adl = _executions(engine, 2, EXEC_TYPE_DELEVERAGE)
    source = next(ev for r in records for ev in r[3] if isinstance(ev, Deleveraged))
    assert [(r.side, r.last_qty, r.last_px) for r in adl] == [(1, 2000, source.price)]
    fund_orders = [
        ev for r in records for ev in r[3] if isinstance(ev, OrderEvent) and ev.account == INSURANCE
    ]
    stored = {r.order_id: r for r in _rows(engine, liquidations)}
    assert set(stored) == {ev.order_id for ev in fund_orders}
    assert not any(r.working for r in stored.values())  # filled or cancelled by the end
    with engine.connect() as conn:
        assert queries.query_liquidations(conn) == []
        assert queries.query_executions(conn, 1, filter={"execType": "Liquidation"}) == first
        assert queries.query_executions(conn, 2, filter={"execType": "Deleverage"}) == adl


def test_a_liquidation_the_fund_covers_is_a_bankruptcy() -> None:
    ts = 5
    covered = [
        Transfer(ts, 7, CLEARING, "USDt", 10, TransferCode.REALISED_PNL, 1),
        Transfer(ts, INSURANCE, CLEARING, "USDt", 5, TransferCode.BANKRUPTCY_COVER, 1),
        PositionLiquidated(ts, 7, "ETHUSDT", -100, 40_000, -15, 0),
    ]
    clean = [covered[0], covered[2]]
    assert [e.exec_type for e in risk_executions(3, covered, SPECS)] == [EXEC_TYPE_BANKRUPTCY]
    (row,) = risk_executions(3, clean, SPECS)
    assert (row.exec_type, row.exec_id, row.side) == (
        EXEC_TYPE_LIQUIDATION,
        synthetic_exec_id(3, 1),
        1,
    )
    # the price funding was paid at travels with the event, known instrument or not
    assert (
        risk_executions(3, [FundingPaid(ts, 7, "NOPE", 1, 5, 100, 0, 42)], SPECS)[0].last_px == 42
    )


def test_settlement_rows_and_executions(engine: Engine, risk: Any) -> None:
    (row,) = _rows(engine, settlement)
    assert (row.symbol, row.timestamp_ns, row.settlement_type) == ("XBTH27", EXPIRY, "Settlement")
    assert row.settled_price_num / row.settled_price_den == 60_000
    longs = _executions(engine, 5, ExecType.SETTLEMENT)
    shorts = _executions(engine, 6, ExecType.SETTLEMENT)
    assert [(r.side, r.last_qty, r.last_px, r.exec_comm) for r in longs] == [
        (-1, 6000, 600_000, 5000)
    ]
    assert [(r.side, r.last_qty) for r in shorts] == [(1, 6000)]


def test_positions_carry_the_latest_margin_figures(engine: Engine, risk: Any) -> None:
    _core, records = risk
    latest: dict[tuple[int, str], PositionChanged] = {}
    for record in records:
        for ev in record[3]:
            if isinstance(ev, PositionChanged):
                latest[(ev.account, ev.symbol)] = ev
    with engine.connect() as conn:
        stored = {
            (r.account, r.symbol): position_event_of(r) for r in queries.positions_of_all(conn)
        }
    assert stored == latest
    isolated = [ev for ev in latest.values() if ev.leverage_e2]
    assert isolated and all(ev.pos_init > 0 or ev.current_qty == 0 for ev in isolated)


def test_start_up_reads_equal_the_engine(engine: Engine, risk: Any) -> None:
    core, _records = risk
    with engine.connect() as conn:
        live = {r.order_id: order_event_of(r) for r in queries.open_orders_of_all(conn)}
        wallets = {
            (r.account, r.currency): r.amount for r in queries.wallets_of_all(conn) if r.amount
        }
    assert set(live) == set(core.state.orders)
    for order_id, ev in live.items():
        order = core.state.orders[order_id]
        assert (ev.leaves_qty, ev.price, ev.account) == (
            order.leaves_qty,
            order.price,
            order.account,
        )
    ledger = {
        (account, currency): amount
        for currency, book in core.state.ledger.balances.items()
        for account, amount in book.items()
        if amount
    }
    assert wallets == ledger


def test_a_future_listed_at_runtime_settles_in_the_read_models(engine: Engine) -> None:
    """XBTU27 is not in the catalogue: the projector learns its spec from the ListFuture
    record, so its settlement row and settlement executions are written at expiry."""
    expiry = quarterly_expiry_ns(2027, 3)
    s = Stream()
    for account in (5, 6):
        s.apply(Deposit(0, account, "XBt", 10 * XBT, f"d{account}"))
    s.apply(ListFuture(0, "XBT", 2027, 3))
    s.apply(IndexPrice(0, ".BXBT", 60_000, 1), at=expiry - 2 * HOUR)
    s.order(6, "XBTU27", Side.SELL, 6000, 600_000)
    s.order(5, "XBTU27", Side.BUY, 6000, 600_000)
    s.apply(Tick(0), at=expiry)
    projector = Projector(engine)
    assert projector.project(s.records) == len(s.records)
    assert projector.specs["XBTU27"] == s.engine.instruments[-1]
    (row,) = [r for r in _rows(engine, settlement) if r.symbol == "XBTU27"]
    assert (row.timestamp_ns, row.settlement_type) == (expiry, "Settlement")
    longs = [r for r in _executions(engine, 5, ExecType.SETTLEMENT) if r.symbol == "XBTU27"]
    assert [(r.side, r.last_qty, r.last_px) for r in longs] == [(-1, 6000, 600_000)]


def test_a_restarted_projector_relearns_series_defined_before_its_offset(engine: Engine) -> None:
    """Cluster mode replays the stream from the start into a restarted projector: a future
    listed on a series defined at runtime (both at or below the stored offset) must still get
    its spec, and nothing at or below the offset is written twice. (A restarted projector once
    died here: "no quarterly futures on root 'XBTUSDT'".)"""
    from tests.core.test_future_series import XBTUSDT

    s = Stream()
    for account in (5, 6):
        s.apply(Deposit(0, account, "USDt", 100_000 * 10**6, f"d{account}"))
    s.apply(DefineFutureSeries(0, *XBTUSDT))
    s.apply(ListFuture(0, "XBTUSDT", 2027, 1))
    half = len(s.records)
    s.order(6, "XBTUSDTH27", Side.SELL, 1000, 600_000)
    s.order(5, "XBTUSDTH27", Side.BUY, 1000, 600_000)
    assert Projector(engine).project(s.records[:half]) == half
    restarted = Projector(engine)
    assert restarted.project(s.records) == len(s.records) - half
    assert restarted.specs["XBTUSDTH27"] == s.engine.instruments[-1]
    fills = [r for r in _executions(engine, 5, ExecType.TRADE) if r.symbol == "XBTUSDTH27"]
    assert [(r.last_qty, r.last_px) for r in fills] == [(1000, 600_000)]
