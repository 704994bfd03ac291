"""The Sequencer: results only after commit, backpressure, failures, stop, snapshots."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from perpetua.core.audit import audit
from perpetua.core.commands import (
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Deposit,
    IndexPrice,
    PlaceOrder,
    Tick,
    WithdrawalRequest,
)
from perpetua.core.enums import Side
from perpetua.sequencer import journal as journal_module
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.journal import FsyncPolicy, JournalConfig, iter_records
from perpetua.sequencer.recovery import default_engine, recover
from perpetua.sequencer.runner import (
    Applied,
    CommandInvalid,
    NullJournal,
    Overloaded,
    Result,
    Sequencer,
    SequencerConfig,
    SequencerFailed,
    SequencerStopped,
)
from perpetua.sequencer.snapshot import list_snapshots
from tests.sequencer.journal_files import patch_journal
from tests.sequencer.workload import drive, workload

WAIT_S = 10.0
START_NS = 1_709_330_400_000_000_000  # 2024-03-01 22:00 UTC


def order(account: int = 1, price: int = 400_000, cl_ord_id: str = "") -> PlaceOrder:
    return PlaceOrder(0, account, "XBTUSD", Side.BUY, 100, price=price, cl_ord_id=cl_ord_id)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class GatedJournal:
    """A journal double: keeps records in memory; commit waits for the gate; logs in order."""

    def __init__(self, fail_on_commit: int = 0) -> None:
        self.records: list[tuple[int, bytes]] = []
        self.durable_seq = 0
        self.gate = threading.Event()
        self.gate.set()
        self.log: list[tuple[str, int]] = []
        self.commits_started = 0
        self.fail_on_commit = fail_on_commit  # the nth commit raises OSError (0: never)
        self.closed = False

    @property
    def next_seq(self) -> int:
        return (self.records[-1][0] if self.records else 0) + 1

    @property
    def fsync_stats(self) -> None:
        return None

    def append_batch(self, records: list[tuple[int, bytes]], start: int = 0) -> int:
        for seq, payload in records[start:]:
            assert seq == self.next_seq
            self.records.append((seq, payload))
        return len(records)

    def commit(self) -> int:
        self.commits_started += 1
        self.log.append(("commit-start", self.next_seq - 1))
        assert self.gate.wait(WAIT_S)
        if self.commits_started == self.fail_on_commit:
            raise OSError(5, "injected write error")
        self.durable_seq = self.next_seq - 1
        self.log.append(("durable", self.durable_seq))
        return self.durable_seq

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def funded_engine() -> Iterator[object]:
    engine = default_engine()
    engine.apply(Deposit(START_NS, 1, "XBt", 10**12, "fund-1"))
    engine.apply(Deposit(START_NS, 2, "XBt", 10**12, "fund-2"))
    yield engine


def make(engine: object, journal: object, **config: object) -> Sequencer:
    clock = SimulatedClock(START_NS + 1)
    return Sequencer(engine, journal, clock=clock, config=SequencerConfig(**config))  # type: ignore[arg-type]


# --- results only after the commit ----------------------------------------------------------


def test_results_and_events_are_released_only_after_their_batch_is_durable(
    funded_engine: object,
) -> None:
    journal = GatedJournal()
    journal.gate.clear()
    sequencer = make(funded_engine, journal, pipeline_batches_max=1)
    sequencer.subscribe_batches(
        lambda batch: journal.log.extend(("published", a.seq) for a in batch)
    )
    with sequencer:
        futures = [sequencer.submit_future(order(cl_ord_id=f"a{i}")) for i in range(5)]
        for future in futures:
            future.add_done_callback(lambda f: journal.log.append(("resolved", f.result().seq)))
        wait_until(lambda: journal.commits_started >= 1, "a commit to start")
        time.sleep(0.05)
        assert not any(future.done() for future in futures)
        assert not [entry for entry in journal.log if entry[0] != "commit-start"]
        journal.gate.set()
        results = [future.result(WAIT_S) for future in futures]
    assert [r.seq for r in results] == [1, 2, 3, 4, 5]
    durable = 0
    released = []
    for kind, seq in journal.log:
        if kind == "durable":
            durable = seq
        elif kind in ("resolved", "published"):
            assert seq <= durable, f"{kind} seq {seq} before it was durable ({journal.log})"
            released.append((kind, seq))
    assert sorted(released) == sorted(
        [("resolved", s) for s in range(1, 6)] + [("published", s) for s in range(1, 6)]
    )


def test_with_a_real_journal_results_follow_the_fsync_that_covers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[tuple[str, int]] = []
    real_sync = journal_module.sync_file
    journal_dir = tmp_path / "journal"

    def logging_sync(fd: int) -> None:
        real_sync(fd)
        last = 0
        for seq, _ in iter_records(journal_dir, 1):
            last = seq
        log.append(("synced", last))

    patch_journal(monkeypatch, "sync_file", logging_sync)
    sequencer = Sequencer.open(
        tmp_path, clock=SimulatedClock(START_NS), config=SequencerConfig(batch_commands_max=3)
    )
    with sequencer:
        sequencer.execute(Deposit(0, 1, "XBt", 10**12, "d"))
        for i in range(40):
            sequencer.submit_callback(
                order(cl_ord_id=f"o{i}"), lambda r: log.append(("resolved", r.seq))
            )  # type: ignore[union-attr]
        wait_until(lambda: sum(kind == "resolved" for kind, _ in log) == 40, "results")
    synced = 0
    for kind, seq in log:
        if kind == "synced":
            synced = max(synced, seq)
        else:
            assert seq <= synced, f"seq {seq} resolved before an fsync covered it"


# --- backpressure ---------------------------------------------------------------------------


def test_orders_and_amends_are_shed_when_full_and_cancels_never(funded_engine: object) -> None:
    journal = GatedJournal()
    journal.gate.clear()
    sequencer = make(
        funded_engine,
        journal,
        queue_depth_max=5,
        queue_depth_hard_max=8,
        batch_commands_max=1,
        pipeline_batches_max=1,
    )
    with sequencer:
        first = sequencer.submit_future(order(cl_ord_id="first"))
        wait_until(lambda: journal.commits_started == 1, "the first commit")
        queued = [sequencer.submit_future(order(cl_ord_id=f"q{i}")) for i in range(5)]
        for refused in (order(), AmendOrder(0, 1, 1, price=5), Batch(0, (order(),))):
            with pytest.raises(Overloaded):
                sequencer.submit_future(refused)
        never_shed = [CancelOrders(0, 1, (1,)), CancelAll(0, 1), CancelAllAfter(0, 1, 0)]
        queued += [sequencer.submit_future(command) for command in never_shed]
        assert sequencer.stats().queue_depth == 8

        # Past queue_depth_hard_max a never-shed submitter waits for room (the queue stays
        # bounded) instead of being refused.
        late: list[Future[Result]] = []
        waiting = threading.Thread(
            target=lambda: late.append(sequencer.submit_future(IndexPrice(0, ".BXBT", 5, 1)))
        )
        waiting.start()
        time.sleep(0.1)
        assert waiting.is_alive() and not late
        with pytest.raises(Overloaded):
            sequencer.submit_future(order())
        assert sequencer.stats().overloaded_count == 4

        journal.gate.set()
        waiting.join(WAIT_S)
        results = [f.result(WAIT_S) for f in [first, *queued, *late]]
    assert [r.seq for r in results] == list(range(1, 11))


def test_on_an_event_loop_submit_is_awaitable_and_never_sheds_cancels(
    funded_engine: object,
) -> None:
    journal = GatedJournal()
    journal.gate.clear()
    sequencer = make(
        funded_engine,
        journal,
        queue_depth_max=2,
        queue_depth_hard_max=3,
        batch_commands_max=1,
        pipeline_batches_max=1,
    )

    async def scenario() -> list[int]:
        first = sequencer.submit(order(cl_ord_id="first"))
        await asyncio.to_thread(wait_until, lambda: journal.commits_started == 1, "commit")
        futures = [sequencer.submit(order(cl_ord_id=f"q{i}")) for i in range(2)]
        with pytest.raises(Overloaded):
            sequencer.submit(order())
        # The first is admitted past queue_depth_max; the other two find the queue past
        # queue_depth_hard_max and wait for room in a worker thread (in either order).
        futures += [sequencer.submit(CancelAll(0, 1)) for _ in range(3)]
        abandoned = sequencer.submit(CancelAll(0, 2))
        abandoned.cancel()  # the submitter goes away; the command still runs
        journal.gate.set()
        results = [await first] + [await f for f in futures]  # type: ignore[misc]
        results.append(await sequencer.submit_async(Tick(0)))
        return [r.seq for r in results]

    with sequencer:
        seqs = asyncio.run(scenario())
    # The two cancels that waited for room, the abandoned one (its worker thread may still be
    # waiting for room when the Tick is submitted) and the Tick take 5..8 in some order.
    assert seqs[:4] == [1, 2, 3, 4] and len(set(seqs[4:])) == 3 and set(seqs[4:]) < {5, 6, 7, 8}
    assert sequencer.stats().durable_seq == 8  # the abandoned cancel ran too


# --- failures ---------------------------------------------------------------------------------


def test_a_command_that_crashes_the_engine_is_not_journaled_and_fails_the_sequencer(
    funded_engine: object,
) -> None:
    class CrashingEngine:
        """The engine with a bug on one command (a wrapper: a compiled Engine's methods
        cannot be replaced)."""

        def __getattr__(self, name: str) -> object:
            return getattr(funded_engine, name)

        def apply(self, command: object) -> list[object]:
            if isinstance(command, Deposit) and command.transfer_id == "boom":
                raise ZeroDivisionError("engine bug")
            return funded_engine.apply(command)  # type: ignore[attr-defined, no-any-return]

    journal = GatedJournal()
    failures: list[BaseException] = []
    sequencer = Sequencer(
        CrashingEngine(),
        journal,
        clock=SimulatedClock(START_NS + 1),  # type: ignore[arg-type]
        on_failure=failures.append,
    )
    sequencer.start()
    first = sequencer.execute(order(cl_ord_id="ok"))
    journal.gate.clear()
    held = sequencer.submit_future(order(cl_ord_id="held"))
    wait_until(lambda: journal.commits_started == 2, "the second commit")
    before = sequencer.submit_future(order(cl_ord_id="before"))
    poison = sequencer.submit_future(Deposit(0, 1, "XBt", 1, "boom"))
    after = sequencer.submit_future(order(cl_ord_id="after"))
    journal.gate.set()
    assert held.result(WAIT_S).seq == first.seq + 1
    assert before.result(WAIT_S).seq == first.seq + 2  # applied before the poison: committed
    for future in (poison, after):
        with pytest.raises(SequencerFailed):
            future.result(WAIT_S)
    with pytest.raises(SequencerFailed):
        sequencer.submit_future(order())
    sequencer.stop()
    assert [seq for seq, _ in journal.records] == [1, 2, 3]  # the poison never reached it
    assert isinstance(sequencer.failure, ZeroDivisionError)
    assert len(failures) == 1 and journal.closed


def test_a_journal_error_fails_the_batch_and_everything_after(funded_engine: object) -> None:
    journal = GatedJournal(fail_on_commit=2)
    failures: list[BaseException] = []
    sequencer = Sequencer(
        funded_engine,
        journal,
        clock=SimulatedClock(START_NS + 1),  # type: ignore[arg-type]
        on_failure=failures.append,
    )
    with sequencer:
        assert sequencer.execute(order(cl_ord_id="a")).seq == 1
        with pytest.raises(SequencerFailed):
            sequencer.execute(order(cl_ord_id="b"), WAIT_S)
        with pytest.raises(SequencerFailed):
            sequencer.submit_future(order(cl_ord_id="c"))
    assert journal.durable_seq == 1
    assert [type(f) for f in failures] == [OSError]


def test_unjournalable_commands_are_rejected_without_using_a_seq(funded_engine: object) -> None:
    sequencer = make(funded_engine, NullJournal())
    with sequencer:
        with pytest.raises(TypeError):
            sequencer.submit_future(("not", "a", "command"))  # type: ignore[arg-type]
        bad = sequencer.submit_future(order(price=2**70))
        with pytest.raises(CommandInvalid):
            bad.result(WAIT_S)
        assert sequencer.execute(order()).seq == 1
    with pytest.raises(SequencerStopped):
        sequencer.submit_future(order())


# --- stop, snapshots, pruning -----------------------------------------------------------------


def test_stop_drains_commits_and_snapshots(tmp_path: Path) -> None:
    sequencer = Sequencer.open(
        tmp_path, clock=SimulatedClock(START_NS), config=SequencerConfig(batch_commands_max=64)
    )
    outcomes: list[object] = []
    with sequencer:
        sequencer.execute(Deposit(0, 1, "XBt", 10**12, "d"))
        for i in range(2_000):
            sequencer.submit_callback(
                order(price=390_000 + i % 100, cl_ord_id=f"o{i}"), outcomes.append
            )
    assert len(outcomes) == 2_000 and all(isinstance(o, Result) for o in outcomes)
    last_seq = sequencer.stats().durable_seq
    assert [s.seq for s in list_snapshots(tmp_path / "snapshots")] == [last_seq]
    engine, info = recover(tmp_path)
    assert info.snapshot_seq == last_seq and info.commands_replayed == 0
    assert engine.state_hash() == sequencer.engine.state_hash()


def test_snapshots_prune_old_snapshots_and_the_journal_below_them(tmp_path: Path) -> None:
    config = SequencerConfig(
        snapshot_interval_commands=150, snapshots_kept=2, batch_commands_max=16,
        journal=JournalConfig(segment_bytes_max=8 * 1024, fsync_policy=FsyncPolicy.NONE),
    )  # fmt: skip
    clock = SimulatedClock(START_NS)
    sequencer = Sequencer.open(tmp_path, clock=clock, config=config)
    published: list[Applied] = []
    sequencer.subscribe_batches(published.extend)
    with sequencer:
        drive(sequencer, clock, workload(4, 1_500))
        requested = sequencer.request_snapshot().result(WAIT_S)
    snapshots = list_snapshots(tmp_path / "snapshots")
    assert 1 <= len(snapshots) <= 2
    assert requested in [s.path for s in snapshots] or snapshots[-1].seq >= published[-1].seq
    segments = sorted((tmp_path / "journal").glob("journal-*.log"))
    first_seq = int(segments[0].name[8:28])
    assert first_seq > 1, "old segments were pruned"
    assert first_seq <= snapshots[0].seq + 1, "nothing after the oldest snapshot was pruned"
    engine, info = recover(tmp_path, use_snapshot=snapshots[0].path)
    assert engine.state_hash() == sequencer.engine.state_hash()
    audit(engine.state)


def test_idle_ticks_and_subscriber_order(tmp_path: Path) -> None:
    clock = SimulatedClock(START_NS)
    sequencer = Sequencer.open(tmp_path, clock=clock)
    seen: list[tuple[int, str]] = []
    sequencer.subscribe(lambda seq, ts, command, events: seen.append((seq, type(command).__name__)))
    with sequencer:
        sequencer.execute(WithdrawalRequest(0, 1, "XBt", 5, 0, "w1"))
        clock.advance(2_500_000_000)
        sequencer.wake()
        wait_until(lambda: len(seen) == 2, "an idle tick")
    assert seen == [(1, "WithdrawalRequest"), (2, "Tick")]


def test_subscribers_have_the_batch_before_its_submitter_has_its_result(
    funded_engine: object,
) -> None:
    """Read-your-writes for views kept on an event loop (the gateway's): the subscriber's
    forward to the loop is queued before the result, so the awaiting request resumes after the
    views took the batch, even when the committer thread is slow between the two (here it
    sleeps in the subscriber; under load it is preempted)."""
    sequencer = make(funded_engine, NullJournal())

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        seen: list[int] = []

        def forward(batch: list[Applied]) -> None:
            time.sleep(0.05)  # the committer thread slow before it forwards
            loop.call_soon_threadsafe(seen.extend, [a.seq for a in batch])

        sequencer.subscribe_batches(forward)
        answered = []
        for i in range(3):
            result = await sequencer.submit(order(cl_ord_id=f"r{i}"))
            answered.append(result.seq in seen)  # what the views hold when the answer is read
        return [int(ok) for ok in answered]

    with sequencer:
        assert asyncio.run(main()) == [1, 1, 1]
    held: list[int] = []

    def slow(batch: list[Applied]) -> None:
        time.sleep(0.05)
        held.extend(a.seq for a in batch)

    other = make(funded_engine, NullJournal())
    other.subscribe_batches(slow)
    with other:
        result = other.execute(order(cl_ord_id="t"))
        assert result.seq in held  # a thread waiting on execute() likewise
