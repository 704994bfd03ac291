"""Catching up from the journal: a real sequencer over a data dir (seeded random workload,
a snapshot half way), then projectors that missed all, part or scattered pieces of the live
stream must end with exactly the rows of one that saw it all."""

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.journal import FsyncPolicy, JournalConfig
from perpetua.sequencer.recovery import recover
from perpetua.sequencer.runner import Sequencer, SequencerConfig
from perpetua.sequencer.snapshot import list_snapshots
from perpetua.store import Projector, ProjectorThread, catch_up
from perpetua.store.schema import (
    executions,
    orders,
    positions,
    trade_bins,
    trades,
    transactions,
    wallets,
)
from tests.sequencer.workload import drive, workload
from tests.store.databases import migrated_engine

START_NS = 1_767_225_600_000_000_000
TABLES = (orders, executions, trades, trade_bins, transactions, wallets, positions)


class Live:
    def __init__(self, data_dir: Path, records: list[Any], snapshot_seq: int) -> None:
        self.data_dir = data_dir
        self.records = records
        self.snapshot_seq = snapshot_seq


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    data_dir = tmp_path_factory.mktemp("live")
    clock = SimulatedClock(START_NS)
    config = SequencerConfig(
        journal=JournalConfig(fsync_policy=FsyncPolicy.NONE),
        snapshot_on_stop=False,
        snapshots_kept=10,
        snapshot_interval_commands=0,
        journal_prune=False,
    )
    sequencer = Sequencer.open(data_dir, clock=clock, config=config)
    records: list[Any] = []
    sequencer.subscribe(
        lambda seq, ts_ns, command, events: records.append((seq, ts_ns, command, list(events)))
    )
    steps = workload(11, 400)
    with sequencer:
        drive(sequencer, clock, steps[:200])
        sequencer.request_snapshot().result(30)
        drive(sequencer, clock, steps[200:])
    (snapshot,) = list_snapshots(data_dir / "snapshots")
    assert [r[0] for r in records] == list(range(1, len(records) + 1))
    return Live(data_dir, records, snapshot.seq)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all()) for t in TABLES}


@pytest.fixture(scope="module")
def reference(live: Live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The rows of a projector that saw the whole live stream."""
    with migrated_engine("sqlite", tmp_path_factory.mktemp("reference")) as engine:
        Projector(engine).project(live.records)
        return dump(engine)


def test_catch_up_from_nothing(engine: Engine, live: Live, reference: Any) -> None:
    projector = Projector(engine)
    assert catch_up(projector, live.data_dir) == len(live.records)
    assert projector.last_seq == len(live.records)
    assert dump(engine) == reference
    assert catch_up(projector, live.data_dir) == 0


def test_catch_up_after_the_snapshot_starts_from_it(
    engine: Engine, live: Live, reference: Any
) -> None:
    projector = Projector(engine)
    seen = live.snapshot_seq + 25
    projector.project(live.records[:seen])
    assert catch_up(projector, live.data_dir) == len(live.records) - seen
    assert dump(engine) == reference


def test_wallets_match_the_recovered_ledger(engine: Engine, live: Live) -> None:
    catch_up(Projector(engine), live.data_dir)
    core, _info = recover(live.data_dir, read_only=True, audit=False)
    ledger = {
        (account, currency): amount
        for currency, book in core.state.ledger.balances.items()
        for account, amount in book.items()
        if amount
    }
    with engine.connect() as conn:
        stored = {
            (r.account, r.currency): r.amount
            for r in conn.execute(select(wallets)).all()
            if r.amount
        }
    assert stored == ledger


def test_thread_catches_up_at_start_and_after_holes(
    engine: Engine, live: Live, reference: Any
) -> None:
    projector = Projector(engine)
    projector.project(live.records[:40])
    thread = ProjectorThread(projector, data_dir=live.data_dir)
    for record in live.records[100:180] + live.records[300:]:  # holes the queue dropped
        thread.publish(*record)
    thread.close()
    assert projector.last_seq == len(live.records)
    assert thread.catch_ups >= 1
    assert dump(engine) == reference


def test_full_queue_drops_instead_of_blocking(engine: Engine, live: Live, reference: Any) -> None:
    thread = ProjectorThread(Projector(engine), queue_max=2, data_dir=live.data_dir)
    for record in live.records:
        thread.publish(*record)  # never blocks the sequencer's thread
    thread.flush()
    thread.close()
    assert thread.projector.last_seq == len(live.records)
    assert dump(engine) == reference


def test_a_gap_in_the_live_stream_triggers_a_catch_up(
    engine: Engine, live: Live, reference: Any
) -> None:
    journal = list(live.records[:40])  # what the journal holds when the thread starts

    class JournalInMemory(ProjectorThread):
        def _catch_up(self) -> None:
            self.projector.project(list(journal))
            self.catch_ups += 1

    thread = JournalInMemory(Projector(engine), data_dir=live.data_dir)
    deadline = time.monotonic() + 30
    while thread.catch_ups < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert thread.projector.last_seq == 40
    journal.extend(live.records[40:])  # the sequencer went on; records 41..99 were dropped
    for record in live.records[99:]:
        thread.publish(*record)
    thread.close()
    assert thread.catch_ups == 2
    assert thread.projector.last_seq == len(live.records)
    assert dump(engine) == reference
