"""Clocks and the scheduler: Day boundaries at exactly 00:00 UTC, idle ticks, catch-up, and how
the sequencer journals them before anything stamped later."""

import time
from pathlib import Path

import pytest

from perpetua.core.calendar import utc_ns
from perpetua.core.commands import Command, Deposit, IndexPrice, PlaceOrder, Tick
from perpetua.core.enums import ExecType, Side, TimeInForce
from perpetua.core.events import OrderEvent
from perpetua.core.invariant import InvariantError
from perpetua.core.limits import DAY_NS
from perpetua.sequencer import clock as clock_module
from perpetua.sequencer.clock import SimulatedClock, SystemClock
from perpetua.sequencer.codec import decode_command
from perpetua.sequencer.journal import iter_records
from perpetua.sequencer.runner import Sequencer, SequencerConfig
from perpetua.sequencer.scheduler import (
    DayBoundary,
    IdleTick,
    Scheduler,
    default_scheduler,
)

S = 1_000_000_000
MIDNIGHT = utc_ns(2024, 3, 2)


# --- clocks -----------------------------------------------------------------------------------


def test_system_clock_never_goes_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([100, 200, 150, 120, 300])
    monkeypatch.setattr(clock_module.time, "time_ns", lambda: next(readings))
    clock = SystemClock()
    assert [clock.now_ns() for _ in range(5)] == [100, 200, 200, 200, 300]


def test_simulated_clock_moves_by_hand_and_by_speed() -> None:
    manual = SimulatedClock(1_000)
    assert manual.now_ns() == 1_000
    assert manual.advance(500) == 1_500
    assert manual.wait_s_until(1_400) == 0.0
    assert manual.wait_s_until(2_000) == float("inf")
    with pytest.raises(InvariantError):
        manual.advance(-1)
    fast = SimulatedClock(0, speed=1_000.0)
    time.sleep(0.02)
    assert fast.now_ns() >= 20 * S  # 20 ms real is >= 20 s simulated
    assert 0 < fast.wait_s_until(fast.now_ns() + 1_000 * S) <= 1.0


# --- the scheduler, pure ----------------------------------------------------------------------


def test_day_boundary_fires_at_exactly_midnight() -> None:
    scheduler = Scheduler([DayBoundary()])
    assert scheduler.due(MIDNIGHT - 5, MIDNIGHT - 1) == []
    assert scheduler.due(MIDNIGHT - 5, MIDNIGHT) == [Tick(MIDNIGHT)]
    assert scheduler.due(MIDNIGHT - 5, MIDNIGHT + 7 * S) == [Tick(MIDNIGHT)]
    assert scheduler.due(MIDNIGHT, MIDNIGHT + 7 * S) == []  # already fired at MIDNIGHT


def test_exact_timers_catch_up_in_order_and_idle_ticks_fire_once_at_now() -> None:
    scheduler = default_scheduler(tick_interval_ns=S)
    now = MIDNIGHT + 2 * DAY_NS + 5 * S
    due = scheduler.due(MIDNIGHT - S // 2, now)
    assert due == [Tick(MIDNIGHT), Tick(MIDNIGHT + DAY_NS), Tick(MIDNIGHT + 2 * DAY_NS), Tick(now)]


def test_idle_tick_is_due_an_interval_after_the_last_stamp() -> None:
    scheduler = Scheduler([IdleTick(S)])
    assert scheduler.next_due_ns(10) == 10 + S
    assert scheduler.due(10, 10 + S - 1) == []
    assert scheduler.due(10, 10 + S + 3) == [Tick(10 + S + 3)]


def test_equal_commands_from_two_sources_at_one_time_are_emitted_once() -> None:
    assert Scheduler([DayBoundary(), DayBoundary()]).due(MIDNIGHT - 1, MIDNIGHT) == [Tick(MIDNIGHT)]


def test_a_source_with_its_own_commands_fires_in_list_order() -> None:
    class IndexSample:
        name = "index_sample"
        exact = True

        def next_due_ns(self, after_ns: int) -> int:
            return (after_ns // DAY_NS + 1) * DAY_NS

        def commands_at(self, ts_ns: int) -> list[Command]:
            return [IndexPrice(ts_ns, ".BXBT", 50_000, 1)]

    due = Scheduler([DayBoundary(), IndexSample()]).due(MIDNIGHT - 1, MIDNIGHT + 1)
    assert due == [Tick(MIDNIGHT), IndexPrice(MIDNIGHT, ".BXBT", 50_000, 1)]


def test_a_source_that_does_not_move_forward_is_a_bug() -> None:
    class Stuck:
        name = "stuck"
        exact = True

        def next_due_ns(self, after_ns: int) -> int:
            return after_ns

        def commands_at(self, ts_ns: int) -> list[Command]:
            return []

    with pytest.raises(InvariantError):
        Scheduler([Stuck()]).due(0, 10)


# --- through the sequencer ---------------------------------------------------------------------


def journaled(data_dir: Path) -> list[Command]:
    return [decode_command(payload) for _, payload in iter_records(data_dir / "journal", 1)]


def test_day_tick_is_journaled_at_midnight_before_later_commands(tmp_path: Path) -> None:
    clock = SimulatedClock(MIDNIGHT - S // 2)
    sequencer = Sequencer.open(tmp_path, clock=clock, config=SequencerConfig())
    with sequencer:
        sequencer.execute(Deposit(0, 1, "XBt", 10**12, "d"))
        day_order = sequencer.execute(
            PlaceOrder(0, 1, "XBTUSD", Side.BUY, 100, price=400_000, time_in_force=TimeInForce.DAY)
        )
        clock.advance(S)  # 00:00:00.5: past midnight, and the next command waits for no tick
        after = sequencer.execute(PlaceOrder(0, 1, "XBTUSD", Side.BUY, 100, price=400_000))
    commands = journaled(tmp_path)
    names = [type(c).__name__ for c in commands]
    assert names == ["Deposit", "PlaceOrder", "Tick", "PlaceOrder"]
    assert commands[2] == Tick(MIDNIGHT)
    assert after.seq == 4 and after.ts_ns == MIDNIGHT + S // 2
    assert day_order.seq == 2
    expired = [e for e in _events_of(tmp_path, 3) if isinstance(e, OrderEvent)]
    assert [(e.exec_type, e.order_id) for e in expired] == [(ExecType.EXPIRED, 1)]


def _events_of(data_dir: Path, seq: int) -> list[object]:
    from perpetua.sequencer.recovery import recover

    found: list[object] = []

    def record(record_seq: int, command: object, events: list[object]) -> None:
        if record_seq == seq:
            found.extend(events)

    recover(data_dir, use_snapshot=False, read_only=True, on_record=record)
    return found


def test_stamps_are_monotonic_even_if_the_clock_is_behind(tmp_path: Path) -> None:
    class Behind:
        def now_ns(self) -> int:
            return 5  # far before the engine's last stamp

        def wait_s_until(self, ts_ns: int) -> float:
            return float("inf")

    sequencer = Sequencer.open(tmp_path, clock=SimulatedClock(MIDNIGHT))
    with sequencer:
        first = sequencer.execute(Deposit(0, 1, "XBt", 1, "a"))
    again = Sequencer.open(tmp_path, clock=Behind())  # type: ignore[arg-type]
    with again:
        second = again.execute(Deposit(0, 1, "XBt", 1, "b"))
    assert second.ts_ns == first.ts_ns and second.seq == first.seq + 1


def test_engine_timers_fire_at_their_exact_time(tmp_path: Path) -> None:
    """A cancelAllAfter deadline is the engine's own timer: its Tick is stamped at exactly the
    deadline, even though nothing else happens then."""
    from perpetua.core.commands import CancelAllAfter

    start = MIDNIGHT + 3_600 * S
    clock = SimulatedClock(start)
    sequencer = Sequencer.open(tmp_path, clock=clock)
    with sequencer:
        sequencer.execute(Deposit(0, 1, "XBt", 10**12, "d"))
        sequencer.execute(PlaceOrder(0, 1, "XBTUSD", Side.BUY, 100, price=400_000))
        armed = sequencer.execute(CancelAllAfter(0, 1, 700))
        clock.advance(900_000_000)  # past the deadline, short of an idle tick
        sequencer.wake()
        deadline = armed.ts_ns + 700_000_000
        wait = time.monotonic() + 10
        while sequencer.stats().durable_seq < 4 and time.monotonic() < wait:
            time.sleep(0.005)
    commands = journaled(tmp_path)
    assert commands[3] == Tick(deadline)
    canceled = [e for e in _events_of(tmp_path, 4) if isinstance(e, OrderEvent)]
    assert [e.exec_type for e in canceled] == [ExecType.CANCELED]


def test_engine_timers_source_waits_for_a_due_time_after_the_last_stamp() -> None:
    from perpetua.sequencer.scheduler import EngineTimers

    due = [0]
    scheduler = Scheduler([EngineTimers(lambda: due[0])])
    assert scheduler.due(10, 10**12) == []  # 0: the engine has no timer
    due[0] = 5_000
    assert scheduler.due(10, 4_999) == []
    assert scheduler.due(10, 9_000) == [Tick(5_000)]
    assert scheduler.due(5_000, 9_000) == []  # ran at its stamp; the engine reschedules


def test_quarterly_listings_fire_at_each_scheduled_listing() -> None:
    from perpetua.core.catalogue import quarterly_listing_ns
    from perpetua.core.commands import ListFuture
    from perpetua.sequencer.scheduler import QuarterlyListings

    source = QuarterlyListings(("XBT",))
    listing = quarterly_listing_ns(2027, 3)  # XBTU27 lists when XBTH27 expires
    assert source.next_due_ns(listing - 1) == listing
    assert source.commands_at(listing) == [ListFuture(listing, "XBT", 2027, 3)]
    assert source.next_due_ns(listing) > listing
    assert source.commands_at(listing + 1) == []


def test_a_listed_future_trades_and_survives_a_snapshot() -> None:
    from perpetua.core.catalogue import default_catalogue, quarterly_listing_ns
    from perpetua.core.commands import ListFuture
    from perpetua.core.engine import Engine
    from perpetua.core.events import Rejected

    listing = quarterly_listing_ns(2027, 3)
    engine = Engine(default_catalogue())
    events = engine.apply(ListFuture(listing, "XBT", 2027, 3))
    assert "XBTU27" in engine.state.markets and not any(isinstance(e, Rejected) for e in events)
    again = engine.apply(ListFuture(listing + 1, "XBT", 2027, 3))
    assert any(isinstance(e, Rejected) for e in again)  # listed once
    copy = Engine(default_catalogue())
    copy.restore(engine.snapshot())
    assert "XBTU27" in copy.state.markets and copy.state_hash() == engine.state_hash()


def test_snapshots_after_a_restart_over_a_listed_future_verify(tmp_path: Path) -> None:
    """A data dir whose journal lists a future at run time: after a restart the recovered
    engine has that future among its instruments, and the snapshots taken then must still
    verify (the snapshotter used to rebuild its check engine from those instruments, so the
    image's listing came twice and every snapshot after a restart failed, silently)."""
    from perpetua.core.catalogue import quarterly_listing_ns
    from perpetua.core.commands import ListFuture
    from perpetua.core.events import Rejected
    from perpetua.sequencer.snapshot import list_snapshots

    listing = quarterly_listing_ns(2027, 3)
    clock = SimulatedClock(listing)
    with Sequencer.open(tmp_path, clock=clock) as sequencer:
        result = sequencer.execute(ListFuture(0, "XBT", 2027, 3))
        assert not any(isinstance(e, Rejected) for e in result.events)
    for _ in range(2):  # each restart: recover, then snapshot at once
        with Sequencer.open(tmp_path, clock=clock) as sequencer:
            assert "XBTU27" in sequencer.engine.state.markets
            sequencer.execute(ListFuture(0, "XBT", 2027, 3))  # refused: listed once; a record
            path = sequencer.request_snapshot().result(timeout=30)
            assert path == list_snapshots(tmp_path / "snapshots")[-1].path
