"""IndexPublisher and IndexBoard: readings to IndexPrice commands through a real sequencer,
compositeIndex rows, and the 30-minute TWAP."""

import threading
import time
from decimal import Decimal
from typing import Any

from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import IndexPrice
from perpetua.core.engine import Engine
from perpetua.core.events import IndexUpdated, Rejected
from perpetua.feeds import (
    IndexBoard,
    IndexPublisher,
    IndexReading,
    IndexSimulator,
    IndexStatus,
    ReplaySource,
    default_config,
    parse_replay,
)
from perpetua.feeds.board import twap_units
from perpetua.sequencer import NullJournal, Sequencer, SimulatedClock

START_NS = utc_ns(2026, 11, 30, 15, 0)
S = 10**9


class FakeSink:
    def __init__(self) -> None:
        self.commands: list[Any] = []

    def submit_callback(self, command: Any, on_done: Any = None) -> None:
        self.commands.append(command)


def test_publish_once_submits_every_published_reading() -> None:
    sim = IndexSimulator(default_config(), 1, START_NS)
    sink = FakeSink()
    board = IndexBoard({".BXBT": ".BXBT30M"})
    publisher = IndexPublisher([sim], sink, SimulatedClock(START_NS), board)
    assert publisher.publish_once(START_NS) == 8
    assert {c.symbol for c in sink.commands} == set(sim.symbols())
    assert all(type(c) is IndexPrice and c.ts_ns == 0 for c in sink.commands)
    assert publisher.publish_once(START_NS + 1) == 0  # nothing new before the next 5 s


def test_two_sources_may_not_publish_one_index() -> None:
    sim = IndexSimulator(default_config(), 1, START_NS)
    replay = ReplaySource(parse_replay(["timestamp,symbol,price", "1,.BXBT,1"]))
    try:
        IndexPublisher([replay, sim], FakeSink(), SimulatedClock(START_NS))
    except ValueError as error:
        assert ".BXBT" in str(error)
    else:
        raise AssertionError("overlapping sources accepted")


def test_through_a_real_sequencer_on_a_sped_up_clock() -> None:
    clock = SimulatedClock(START_NS, speed=600.0)  # 5 s of index time every ~8 ms
    sequencer = Sequencer(Engine(default_catalogue()), NullJournal(), clock=clock)
    seen: list[object] = []
    lock = threading.Lock()

    def collect(seq: int, ts_ns: int, command: object, events: Any) -> None:
        with lock:
            seen.extend(events)

    sequencer.subscribe(collect)
    sequencer.start()
    sim = IndexSimulator(default_config(), 5, START_NS)
    publisher = IndexPublisher([sim], sequencer, clock, real_interval_min_s=0.05)
    publisher.start()
    time.sleep(1.0)
    publisher.stop()
    sequencer.stop()
    with lock:
        updates = [e for e in seen if type(e) is IndexUpdated]
        rejected = [e for e in seen if type(e) is Rejected]
    assert publisher.failure is None and not rejected
    assert {e.symbol for e in updates} == set(sim.symbols())
    assert len(updates) >= 8 * 5  # several wakes, every index each time
    # at most one publish per real_interval_min_s: far fewer than the 5 s steps simulated
    steps = (clock.now_ns() - START_NS) // (5 * S)
    assert len(updates) // 8 < steps


def test_publisher_stops_when_the_sink_refuses() -> None:
    class Refusing(FakeSink):
        def submit_callback(self, command: Any, on_done: Any = None) -> None:
            raise RuntimeError("sequencer is not running")

    publisher = IndexPublisher(
        [IndexSimulator(default_config(), 1, START_NS)], Refusing(), SimulatedClock(START_NS)
    )
    publisher.start()
    publisher.stop()
    assert isinstance(publisher.failure, RuntimeError)


def _reading(
    symbol: str, ts_ns: int, units: int, status: IndexStatus = IndexStatus.LIVE
) -> IndexReading:
    return IndexReading(symbol, ts_ns, units, 2, status, status == IndexStatus.LIVE)


def test_twap_is_time_weighted_over_the_trailing_window() -> None:
    window = 1800 * S
    assert twap_units([(0, 100)], 0, window) == 100
    # 100 for 10 minutes then 200 for 20 minutes: (100*10 + 200*20) / 30 = 166.67 -> 166
    assert twap_units([(0, 100), (600 * S, 200)], 1800 * S, window) == 166
    # samples older than the window count only from its start
    assert twap_units([(0, 100), (600 * S, 200)], 3600 * S, window) == 200
    board = IndexBoard({".BXBT": ".BXBT30M"})
    board.update(_reading(".BXBT", 0, 100))
    board.update(_reading(".BXBT", 600 * S, 200))
    board.update(_reading(".BXBT", 1800 * S, 300, IndexStatus.STALE))  # held, not a sample
    assert board.twap(".BXBT") == (166, 2)
    rows = {r["symbol"]: r for r in board.index_rows()}
    assert rows[".BXBT30M"]["lastPrice"] == Decimal("1.66")
    assert rows[".BXBT"]["stale"] is True


def test_composite_rows_have_bitmex_shape() -> None:
    sim = IndexSimulator(default_config(), 1, START_NS)
    board = IndexBoard()
    for reading in sim.advance(START_NS):
        board.update(reading)
    sim.halt_venue(".BXBT", "Gemini", START_NS + 3600 * S)
    for reading in sim.advance(START_NS + 1000 * S):
        board.update(reading)
    rows = board.composite_rows(".BXBT")
    assert [r["reference"] for r in rows] == ["Bitstamp", "Coinbase", "Kraken", "Gemini", "BMI"]
    by_ref = {r["reference"]: r for r in rows}
    assert by_ref["BMI"]["weight"] is None
    assert by_ref["Gemini"]["weight"] == 0
    assert by_ref["Gemini"]["logged"] == "2026-11-30T15:00:00.000Z"
    assert sum(r["weight"] for r in rows if r["weight"] is not None) > Decimal("0.99999")
    assert set(rows[0]) == {
        "timestamp",
        "symbol",
        "indexSymbol",
        "indexMultiplier",
        "reference",
        "lastPrice",
        "sourcePrice",
        "conversionIndex",
        "conversionIndexPrice",
        "weight",
        "logged",
    }
    assert board.composite_rows(".NOPE") == []
