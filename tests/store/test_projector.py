"""The projector over a real engine stream, on SQLite and PostgreSQL: every table it writes,
exact balances, idempotent re-projection, gaps, conflicts, failures and the thread."""

import logging
import time
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from perpetua.core.enums import ExecType, OrdStatus
from perpetua.core.events import (
    DepositCredited,
    OrderEvent,
    PositionChanged,
    Trade,
    Transfer,
)
from perpetua.core.ledger import CLEARING, EXTERNAL, INSURANCE, TransferCode
from perpetua.store import ProjectionConflict, ProjectionGap, Projector, ProjectorThread
from perpetua.store.limits import PROJECT_COMMANDS_PER_TRANSACTION_MAX
from perpetua.store.rows import (
    MINUS_TICK,
    PLUS_TICK,
    ZERO_PLUS_TICK,
    order_event_of,
    trade_of,
)
from perpetua.store.schema import (
    executions,
    insurance,
    orders,
    positions,
    projector_state,
    trade_bins,
    trades,
    transactions,
    wallets,
)
from tests.store.stream import DAY, T0, run


def rows(engine: Engine, table: Any, *order: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(*order)).all())


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def events_of(records: list[Any], kind: type) -> list[Any]:
    return [ev for record in records for ev in record[3] if type(ev) is kind]


def test_wallets_equal_the_ledger_exactly(engine: Engine, projected: Any) -> None:
    core, _records, _p = projected
    ledger = {
        (account, currency): amount
        for currency, book in core.state.ledger.balances.items()
        for account, amount in book.items()
        if amount
    }
    stored = {(r.account, r.currency): r.amount for r in rows(engine, wallets) if r.amount}
    assert stored == ledger
    one = {r.currency: r for r in rows(engine, wallets) if r.account == 1}
    assert one["XBt"].deposited == 10 * 100_000_000
    assert one["XBt"].withdrawn == 1_010_000
    assert one["XBt"].pending_debit == 0
    two = {r.currency: r for r in rows(engine, wallets) if r.account == 2}
    assert two["XBt"].withdrawn == 0 and two["XBt"].pending_debit == 0


def test_wallet_history_is_an_exact_running_balance(engine: Engine, projected: Any) -> None:
    history = rows(engine, transactions, transactions.c.transact_id)
    balance: dict[tuple[int, str], int] = defaultdict(int)
    for row in history:
        assert row.account > 0
        if row.transact_status == "Canceled":
            continue
        key = (row.account, row.currency)
        balance[key] += row.amount
        assert row.wallet_balance == balance[key], row
    final = {(r.account, r.currency): r.amount for r in rows(engine, wallets) if r.account > 0}
    assert dict(balance) == final


def test_wallet_history_rows_by_kind(engine: Engine, projected: Any) -> None:
    history = rows(engine, transactions, transactions.c.transact_id)
    kinds = defaultdict(list)
    for row in history:
        kinds[row.transact_type].append(row)
    assert [r.ref for r in kinds["Deposit"]] == ["dep-1x", "dep-2x", "dep-3x", "dep-1u", "dep-2u"]
    w1, w2 = kinds["Withdrawal"]
    assert (w1.ref, w1.transact_status, w1.amount, w1.fee) == (
        "w1",
        "Completed",
        -1_010_000,
        10_000,
    )
    assert w1.transact_ts_ns == T0 + 200 * 10**9 and w1.timestamp_ns == T0 + 210 * 10**9
    assert (w2.ref, w2.transact_status) == ("w2", "Canceled")
    spot = kinds["SpotTrade"]
    assert {(r.account, r.currency) for r in spot} == {
        (1, "USDt"),
        (1, "XBt"),
        (2, "USDt"),
        (2, "XBt"),
    }
    assert all(r.text == "XBT_USDT" for r in spot)
    pnl = kinds["RealisedPNL"]
    assert all(r.text == "XBTUSD" and r.currency == "XBt" for r in pnl)
    fees = sum(r.fee for r in pnl)
    assert fees == sum(
        ev.exec_comm for ev in events_of(projected[1], OrderEvent) if ev.symbol == "XBTUSD"
    )
    loss = [r for r in pnl if r.account == 3 and r.amount < -r.fee]
    assert loss, "account 3 closed its long at a loss: a RealisedPNL row beyond the fee"


def test_orders_hold_the_latest_state(engine: Engine, projected: Any) -> None:
    last: dict[int, OrderEvent] = {}
    first_ts: dict[int, int] = {}
    for ev in events_of(projected[1], OrderEvent):
        last[ev.order_id] = ev
        first_ts.setdefault(ev.order_id, ev.ts_ns)
    stored = {r.order_id: r for r in rows(engine, orders)}
    assert set(stored) == set(last)
    for order_id, ev in last.items():
        row = stored[order_id]
        assert (row.ord_status, row.leaves_qty, row.cum_qty, row.order_qty, row.cl_ord_id) == (
            ev.ord_status,
            ev.leaves_qty,
            ev.cum_qty,
            ev.order_qty,
            ev.cl_ord_id,
        )
        assert row.created_ns == first_ts[order_id] and row.timestamp_ns == ev.ts_ns
    b1 = next(r for r in stored.values() if r.cl_ord_id == "b1")
    assert (b1.ord_status, b1.order_qty, b1.cum_qty) == (OrdStatus.CANCELED, 300, 200)


def test_one_execution_per_order_event(engine: Engine, projected: Any) -> None:
    events = events_of(projected[1], OrderEvent)
    stored = rows(engine, executions, executions.c.exec_id)
    assert [r.exec_id for r in stored] == sorted(ev.exec_id for ev in events)
    kinds = {r.exec_type for r in stored}
    assert {ExecType.NEW, ExecType.TRADE, ExecType.REPLACED, ExecType.CANCELED} <= kinds
    fill = next(r for r in stored if r.exec_type == ExecType.TRADE)
    source = next(ev for ev in events if ev.exec_id == fill.exec_id)
    assert (fill.last_qty, fill.last_px, fill.exec_cost, fill.exec_comm, fill.trd_match_id) == (
        source.last_qty,
        source.last_px,
        source.exec_cost,
        source.exec_comm,
        source.trd_match_id,
    )


def test_trades_with_tick_directions(engine: Engine, projected: Any) -> None:
    prints = events_of(projected[1], Trade)
    stored = rows(engine, trades, trades.c.timestamp_ns, trades.c.trd_match_id)
    assert [r.trd_match_id for r in stored] == [ev.trd_match_id for ev in prints]
    xbt = [r for r in stored if r.symbol == "XBTUSD"]
    # P (first), P (unchanged after a first print), P-10 (down), P+20 (up)
    assert [r.tick_direction for r in xbt] == [PLUS_TICK, ZERO_PLUS_TICK, MINUS_TICK, PLUS_TICK]
    assert all(r.gross_value > 0 and r.size > 0 for r in stored)


def test_trade_bins_end_time_and_open_at_previous_close(engine: Engine, projected: Any) -> None:
    minute = 60 * 10**9
    m1 = [
        r
        for r in rows(engine, trade_bins, trade_bins.c.timestamp_ns)
        if r.bin_size == "1m" and r.symbol == "XBTUSD"
    ]
    assert [r.timestamp_ns for r in m1] == [
        T0 + minute,
        T0 + 2 * minute,
        T0 + 3 * minute,
        T0 + DAY + minute,
    ]
    assert [r.volume for r in m1] == [100, 100, 100, 100]
    for before, after in zip(m1, m1[1:], strict=False):
        assert after.open == before.close
    d1 = [
        r
        for r in rows(engine, trade_bins, trade_bins.c.timestamp_ns)
        if r.bin_size == "1d" and r.symbol == "XBTUSD"
    ]
    assert [r.timestamp_ns for r in d1] == [T0 + DAY, T0 + 2 * DAY]
    day_one = d1[0]
    assert (day_one.trades, day_one.volume, day_one.high, day_one.low, day_one.close) == (
        3,
        300,
        200_000,
        199_990,
        199_990,
    )
    assert day_one.px_qty_sum == 100 * (200_000 + 200_000 + 199_990)
    assert d1[1].open == day_one.close


def test_positions_hold_the_latest_change(engine: Engine, projected: Any) -> None:
    last = {(ev.account, ev.symbol): ev for ev in events_of(projected[1], PositionChanged)}
    stored = {(r.account, r.symbol): r for r in rows(engine, positions)}
    assert set(stored) == set(last)
    for key, ev in last.items():
        assert (stored[key].current_qty, stored[key].current_cost, stored[key].realised_pnl) == (
            ev.current_qty,
            ev.current_cost,
            ev.realised_pnl,
        )


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = (orders, executions, trades, trade_bins, transactions, wallets, positions)
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all()) for t in tables}


def test_reprojection_is_skipped(engine: Engine, projected: Any) -> None:
    _core, records, projector = projected
    before = _dump(engine)
    assert projector.project(records) == 0
    assert Projector(engine).project(records) == 0  # a restarted projector too
    assert _dump(engine) == before
    assert Projector(engine).last_seq == len(records)


def test_restart_mid_stream_replays_the_overlap(engine: Engine) -> None:
    core, records = run()
    Projector(engine).project(records[:9])
    assert Projector(engine).project(records) == len(records) - 9
    ledger = {
        (a, c): v for c, book in core.state.ledger.balances.items() for a, v in book.items() if v
    }
    assert {(r.account, r.currency): r.amount for r in rows(engine, wallets) if r.amount} == ledger
    assert count(engine, executions) == len(events_of(records, OrderEvent))


def test_a_gap_in_seq_stops_the_projector(engine: Engine) -> None:
    _core, records = run()
    projector = Projector(engine)
    projector.project(records[:3])
    with pytest.raises(ProjectionGap):
        projector.project(records[5:])
    assert projector.last_seq == 3


def test_a_second_writer_is_detected(engine: Engine) -> None:
    _core, records = run()
    first, second = Projector(engine), Projector(engine)
    first.project(records[:3])
    with pytest.raises(ProjectionConflict):
        second.project(records[:5])


def test_a_failed_transaction_leaves_no_trace(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, records = run()
    projector = Projector(engine)
    projector.project(records[:6])
    real_write = Projector._write

    def broken(self: Projector, conn: Any, chunk: Any) -> None:
        real_write(self, conn, chunk)  # caches now hold the uncommitted balances
        raise RuntimeError("disk full")

    monkeypatch.setattr(Projector, "_write", broken)
    with pytest.raises(RuntimeError):
        projector.project(records[6:])
    monkeypatch.setattr(Projector, "_write", real_write)
    assert projector.last_seq == 6
    projector.project(records[6:])
    ledger = {
        (a, c): v for c, book in core.state.ledger.balances.items() for a, v in book.items() if v
    }
    assert {(r.account, r.currency): r.amount for r in rows(engine, wallets) if r.amount} == ledger
    history = rows(engine, transactions, transactions.c.transact_id)
    assert len({r.transact_id for r in history}) == len(history)


def test_long_catch_up_runs_in_bounded_transactions(engine: Engine) -> None:
    n = PROJECT_COMMANDS_PER_TRANSACTION_MAX * 2 + 7
    records = []
    for seq in range(1, n + 1):
        ts = T0 + seq
        records.append(
            (
                seq,
                ts,
                None,
                [
                    Transfer(ts, EXTERNAL, 1, "XBt", 1, TransferCode.DEPOSIT, 0),
                    DepositCredited(ts, f"d{seq}", 1, "XBt", 1),
                ],
            )
        )
    projector = Projector(engine)
    assert projector.project(iter(records)) == n
    with engine.connect() as conn:
        assert conn.execute(select(projector_state.c.last_seq)).scalar() == n
    assert count(engine, transactions) == n
    assert next(r.amount for r in rows(engine, wallets) if r.account == 1) == n


def test_insurance_rows_follow_the_fund(engine: Engine) -> None:
    ts = T0
    records = [
        (1, ts, None, [Transfer(ts, CLEARING, INSURANCE, "XBt", 500, TransferCode.INSURANCE, 7)]),
        (
            2,
            ts + 1,
            None,
            [Transfer(ts + 1, INSURANCE, CLEARING, "XBt", 200, TransferCode.BANKRUPTCY_COVER, 8)],
        ),
    ]
    Projector(engine).project(records)
    stored = rows(engine, insurance, insurance.c.timestamp_ns)
    assert [(r.currency, r.timestamp_ns, r.wallet_balance) for r in stored] == [
        ("XBt", ts, 500),
        ("XBt", ts + 1, 300),
    ]
    assert count(engine, transactions) == 0  # system accounts have no wallet history


def test_unknown_event_types_are_logged_once_and_skipped(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    class FutureEvent:
        pass

    caplog.set_level(logging.WARNING, logger="perpetua.store.projector")
    projector = Projector(engine)
    projector.project([(1, T0, None, [FutureEvent()]), (2, T0, None, [FutureEvent()])])
    assert projector.last_seq == 2
    assert sum("FutureEvent" in r.message for r in caplog.records) == 1


def test_projector_thread(engine: Engine) -> None:
    core, records = run()
    thread = ProjectorThread(Projector(engine), queue_max=4)
    for record in records:
        thread.publish(*record)
    thread.flush()
    assert thread.projector.last_seq == len(records)
    thread.close()
    assert count(engine, executions) == len(events_of(records, OrderEvent))


def test_projector_thread_reports_a_failure(engine: Engine) -> None:
    _core, records = run()
    thread = ProjectorThread(Projector(engine))
    thread.publish(*records[0])
    thread.publish(*records[3])  # a gap
    with pytest.raises(Exception, match="projector thread stopped"):
        thread.flush()
    with pytest.raises(Exception, match="projector thread stopped"):
        thread.close()


def test_rows_give_back_their_events(engine: Engine, projected: Any) -> None:
    events = {ev.exec_id: ev for ev in events_of(projected[1], OrderEvent)}
    for row in rows(engine, executions):
        assert order_event_of(row) == events[row.exec_id]
    prints = {ev.trd_match_id: ev for ev in events_of(projected[1], Trade)}
    for row in rows(engine, trades):
        assert trade_of(row) == prints[row.trd_match_id]
    last = {ev.order_id: ev for ev in events_of(projected[1], OrderEvent)}
    for row in rows(engine, orders):
        state = order_event_of(row)
        assert state.exec_id == 0
        assert state.ord_status == last[row.order_id].ord_status
        assert state.cum_px_qty == last[row.order_id].cum_px_qty


def test_projector_thread_puts_records_of_one_linger_in_one_transaction(engine: Engine) -> None:
    """Records that arrive within the linger go into one SQL transaction (decisions §31)."""
    _core, records = run()
    projector = Projector(engine)
    batches: list[int] = []
    project = projector.project

    def counting(batch: list[Any]) -> int:
        batches.append(len(batch))
        return project(batch)

    projector.project = counting  # type: ignore[method-assign]
    thread = ProjectorThread(projector, linger_s=0.5)
    for record in records[:3]:
        thread.publish(*record)
        time.sleep(0.01)  # each later than the worker's wake-up, all within the linger
    thread.flush()
    thread.close()
    assert batches == [3]
    assert projector.last_seq == 3
