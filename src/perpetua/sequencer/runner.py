"""The sequencer: the single writer that numbers, journals, applies and releases commands.

Threads (all daemon threads named ``perpetua-sequencer-*``):
    writer      takes commands from the bounded input queue in batches; for each command runs
                the timers due by now (scheduler), stamps ``ts_ns`` (monotonic), encodes it,
                assigns the next seq and applies it to the engine. It alone touches the engine.
    committer   appends each batch's records to the journal, commits (one write, one fsync under
                FsyncPolicy.ALWAYS), then publishes the batch to the subscribers and only then
                resolves its results (so whoever a result reaches can read views that hold it),
                batch after batch in seq order. It alone touches the journal.
    snapshotter writes snapshots handed over by the committer, verifies them by restoring
                them, then prunes old snapshots and the journal segments they cover
                (`snapshotter`).

Pipelining: the writer may apply up to ``pipeline_batches_max`` batches ahead of the last
durable one (2: it applies batch N+1 while N is being synced, which is where a Python writer
gets its time back from fsync, as fsync releases the GIL). 1 disables pipelining.

Crash safety (the invariant: nothing that depends on a command leaves the process before the
command is durable)
    - A result is resolved and a batch published only by the committer, after
      ``journal.commit()`` returned for every record in it. Under FsyncPolicy.ALWAYS that means
      synced (see `journal`); results of batch N+1 wait for N+1's own commit.
    - The engine may run ahead of the journal by the pipelined batches. That state is visible
      to nobody (no result, no event, no snapshot) until its records are durable: the writer
      takes a snapshot image between batches, but the committer hands it to the snapshotter
      only after the batch that ends at its seq is durable.
    - Journal segments are pruned only below the oldest kept snapshot, and only after the new
      snapshot was read back and restored to its recorded state hash.
    - A command whose ``apply`` raises is a programmer error: it is not journaled (so replay does
      not crash on it again), the commands before it in its batch are committed and released,
      everything after it is failed with `SequencerFailed`, and the sequencer stops. A journal
      error fails the sequencer the same way (the file state is unknown: restart and recover).
      Either way ``on_failure`` is called and the failure logged at CRITICAL: the process must
      restart (snapshot + replay), as architecture §7 says.

Backpressure (architecture §7): at ``queue_depth_max`` waiting commands, new PlaceOrder,
AmendOrder and Batch commands are refused at once with `Overloaded` (the gateway answers 503).
Cancels, CancelAllAfter and internal commands (deposits, withdrawals, index prices, ...) are
never refused for load: they are admitted up to ``queue_depth_hard_max``, and past that their
submitter waits for room (the queue stays bounded). Commands keep their arrival order.

Results: ``submit`` returns a future of ``Result(seq, ts_ns, events)`` (an asyncio future when
called on an event loop, so the gateway writes ``await sequencer.submit(cmd)``). Subscribers
get ``(seq, ts_ns, command, events)`` per durable command (`subscribe`) or ``list[Applied]`` per
durable batch (`subscribe_batches`), in seq order, on the committer thread. They must be quick
and must not raise or block (hand work to your own queue): a subscriber that raises fails the
sequencer, one that blocks stalls every result behind it. Events lists are shared: never mutate.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple, Protocol

from perpetua.core.commands import COMMAND_TYPES, AmendOrder, Batch, Command, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.sequencer.clock import Clock, SystemClock
from perpetua.sequencer.codec import encode_command
from perpetua.sequencer.delivery import (
    NO_WAITER,
    WAIT_ASYNC,
    WAIT_CALLBACK,
    WAIT_FUTURE,
    Applied,
    BatchSubscriber,
    CommandInvalid,
    CommandSubscriber,
    Overloaded,
    Result,
    ResultCallback,
    SequencerError,
    SequencerFailed,
    SequencerStopped,
    Waiter,
    settle,
)
from perpetua.sequencer.journal import (
    DEFAULT_JOURNAL_CONFIG,
    FsyncStats,
    JournalConfig,
)
from perpetua.sequencer.recovery import (
    EngineFactory,
    RecoveryInfo,
    data_paths,
    default_engine,
    open_data_dir,
)
from perpetua.sequencer.scheduler import Scheduler, default_scheduler
from perpetua.sequencer.snapshotter import SnapshotJob, Snapshotter

__all__ = [
    "DEFAULT_SEQUENCER_CONFIG",
    "SHEDDABLE_COMMAND_TYPES",
    "Applied",
    "CommandInvalid",
    "JournalLike",
    "NullJournal",
    "Overloaded",
    "Result",
    "Sequencer",
    "SequencerConfig",
    "SequencerError",
    "SequencerFailed",
    "SequencerStats",
    "SequencerStopped",
]

_log = logging.getLogger(__name__)
# The running loop or None, without raising (asyncio.get_running_loop raises off-loop, and a
# raise costs more than the whole check on the submit path of a producer thread).
asyncio_get_running_loop: Final = asyncio._get_running_loop
SubmitFuture = concurrent.futures.Future[Result] | asyncio.Future[Result]
_new_applied: Final = tuple.__new__  # Applied(...) without NamedTuple's Python-level __new__

# Refused with Overloaded when the queue is at queue_depth_max; every other type is never shed.
SHEDDABLE_COMMAND_TYPES: Final = frozenset({PlaceOrder, AmendOrder, Batch})
_COMMAND_TYPES: Final = frozenset(COMMAND_TYPES)
COMMIT_LATENCY_SAMPLES_MAX: Final = 65_536  # most recent commit latencies kept for percentiles
THREAD_JOIN_TIMEOUT_S: Final = 60.0


class SequencerStats(NamedTuple):
    applied_seq: int  # last seq applied to the engine
    durable_seq: int  # last seq committed and released
    queue_depth: int  # commands waiting now
    overloaded_count: int  # commands refused with Overloaded
    batch_count: int  # batches committed
    command_count: int  # commands committed (internal ones included)
    largest_batch_commands: int  # largest batch committed
    fsync: FsyncStats | None  # from the journal, when it has them
    snapshot_seq: int | None  # last snapshot written and verified


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    """Limits of one sequencer (units in the names)."""

    queue_depth_max: int = 10_000  # waiting commands before orders and amends are refused
    queue_depth_hard_max: int = 20_000  # waiting commands before never-shed submitters wait
    batch_commands_max: int = 4_096  # commands in one journal batch (one fsync)
    pipeline_batches_max: int = 2  # batches applied but not yet durable; 1: no pipelining
    snapshot_interval_commands: int = 1_000_000  # periodic snapshots; 0: only on demand/stop
    snapshots_kept: int = 2  # verified snapshots kept; the journal is pruned below the oldest
    journal_prune: bool = True  # False keeps every journal segment (full history for replay)
    snapshot_on_stop: bool = True
    idle_wait_ms_max: int = 100  # the writer re-reads the clock at least this often when idle
    # Exact timers (Day boundaries, later funding) missed for longer than this are not caught
    # up one by one after a pause: the core catches up on its own at the next command.
    timer_catch_up_ns_max: int = 7 * 86_400 * 1_000_000_000
    journal: JournalConfig = DEFAULT_JOURNAL_CONFIG

    def __post_init__(self) -> None:
        invariant(self.queue_depth_max >= 1, "queue_depth_max must be >= 1")
        invariant(
            self.queue_depth_hard_max >= self.queue_depth_max,
            "queue_depth_hard_max must be >= queue_depth_max",
        )
        invariant(self.batch_commands_max >= 1, "batch_commands_max must be >= 1")
        invariant(self.pipeline_batches_max >= 1, "pipeline_batches_max must be >= 1")
        invariant(self.snapshot_interval_commands >= 0, "snapshot_interval_commands >= 0")
        invariant(self.snapshots_kept >= 1, "snapshots_kept must be >= 1")
        invariant(self.idle_wait_ms_max >= 1, "idle_wait_ms_max must be >= 1")
        invariant(self.timer_catch_up_ns_max >= 0, "timer_catch_up_ns_max must be >= 0")


DEFAULT_SEQUENCER_CONFIG: Final = SequencerConfig()


class JournalLike(Protocol):
    """What the sequencer needs of a journal (`journal.Journal`, `NullJournal`, test doubles)."""

    @property
    def next_seq(self) -> int: ...

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int: ...

    def commit(self) -> int: ...

    def close(self) -> None: ...


class NullJournal:
    """A journal that keeps nothing: for benchmarks (the "journal off" reference) and tests.

    UNSAFE: nothing survives a restart.
    """

    __slots__ = ("_next_seq",)

    def __init__(self, first_seq: int = 1) -> None:
        self._next_seq = first_seq

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int:
        for seq, _ in records[start:]:
            invariant(seq == self._next_seq, f"append of seq {seq}, expected {self._next_seq}")
            self._next_seq = seq + 1
        return len(records)

    def commit(self) -> int:
        return self._next_seq - 1

    def close(self) -> None:
        pass


# --- what flows from the writer to the committer ---------------------------------------------


class _Batch(NamedTuple):
    records: list[tuple[int, bytes]]  # (seq, payload), seq consecutive
    applied: list[Applied]
    waiters: list[Waiter]


_STOP: Final = object()

_RUNNING: Final = "running"
_STOPPING: Final = "stopping"
_STOPPED: Final = "stopped"
_FAILED: Final = "failed"


def _forward_failure(target: asyncio.Future[Result], admission: asyncio.Future[object]) -> None:
    """If a command waiting for room was refused (the sequencer stopped), say so to its
    submitter; once admitted, the committer settles target as usual."""
    error = admission.exception()
    if error is not None and not target.done():
        target.set_exception(error)


class Sequencer:
    """The single writer over one engine and one journal. See the module docstring.

    Build with `Sequencer.open(data_dir)` (recovers the data dir) or directly with an engine
    and a journal (tests, benchmarks); then `start()`. Submit from any thread: `submit`
    (``await`` it on an event loop; ``.result()`` elsewhere), `submit_future`, `execute`
    (submit and wait) or `submit_callback` (cheapest). Subscribe with `subscribe` (per command)
    or `subscribe_batches` (per durable batch).
    """

    def __init__(
        self,
        engine: Engine,
        journal: JournalLike,
        *,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        config: SequencerConfig = DEFAULT_SEQUENCER_CONFIG,
        snapshot_dir: Path | None = None,
        journal_dir: Path | None = None,
        recovery: RecoveryInfo | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._scheduler = (
            scheduler
            if scheduler is not None
            else default_scheduler(engine_timers=self._engine_next_timer_ns)
        )
        self._config = config
        self.recovery = recovery
        self._on_failure = on_failure
        # Input queue, guarded by _lock.
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._queue: collections.deque[tuple[Command, Waiter]] = collections.deque()
        self._writer_waiting = False
        self._full_waiters = 0
        self._state = _STOPPED
        self._started = False
        self._failure: BaseException | None = None
        self._overloaded_count = 0
        self._snapshot_requests: list[concurrent.futures.Future[Path]] = []
        # Writer-owned.
        self._next_seq = journal.next_seq
        self._last_ts_ns = engine.state.ts_ns
        self._next_due_ns = 0
        self._timer_floor_ns = 0  # timers fire only after this (set at start for a new engine)
        self._commands_since_snapshot = 0
        # Writer -> committer; _permits bounds the batches in flight.
        self._handoff: collections.deque[object] = collections.deque()
        self._handoff_ready = threading.Condition(threading.Lock())
        self._permits = threading.Semaphore(config.pipeline_batches_max)
        # Committer-owned (read racily by stats()).
        self._durable_seq = journal.next_seq - 1
        self._journal_failed = False
        self._batch_count = 0
        self._command_count = 0
        self._largest_batch_commands = 0
        self._commit_latencies_ns: collections.deque[int] = collections.deque(
            maxlen=COMMIT_LATENCY_SAMPLES_MAX
        )
        self._batch_subscribers: tuple[BatchSubscriber, ...] = ()
        self._command_subscribers: tuple[CommandSubscriber, ...] = ()
        self._snapshotter: Snapshotter | None = None
        if snapshot_dir is not None:
            self._snapshotter = Snapshotter(
                snapshot_dir, journal_dir if config.journal_prune else None,
                engine.instruments, config.snapshots_kept,
                None if recovery is None else recovery.snapshot_seq,
            )  # fmt: skip
        self._threads: list[threading.Thread] = []
        self._thread_ids: frozenset[int] = frozenset()

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        engine_factory: EngineFactory = default_engine,
        *,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        config: SequencerConfig = DEFAULT_SEQUENCER_CONFIG,
        audit: bool = True,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> Sequencer:
        """Recover ``data_dir`` (see `recovery`) and return a sequencer over it, not started.

        Raises what recovery raises (JournalLockedError, JournalCorruptError, RecoveryError).
        """
        engine, info, journal = open_data_dir(
            data_dir, engine_factory, journal_config=config.journal, audit=audit
        )
        paths = data_paths(data_dir)
        return cls(
            engine, journal, clock=clock, scheduler=scheduler, config=config,
            snapshot_dir=paths.snapshots, journal_dir=paths.journal, recovery=info,
            on_failure=on_failure,
        )  # fmt: skip

    def start(self) -> None:
        """Start the threads; commands are taken from now on. Once only."""
        invariant(not self._started, "a Sequencer starts once")
        self._started = True
        self._state = _RUNNING
        if self._last_ts_ns == 0:
            # A new exchange: no timer was missed before its first moment.
            self._timer_floor_ns = self._clock.now_ns()
        self._next_due_ns = self._due_after(max(self._last_ts_ns, self._timer_floor_ns))
        for name, target in (("writer", self._writer_main), ("committer", self._committer_main)):
            thread = threading.Thread(target=target, name=f"perpetua-sequencer-{name}", daemon=True)
            self._threads.append(thread)
        if self._snapshotter is not None:
            self._threads.append(self._snapshotter.thread)
        for thread in self._threads:
            thread.start()
        self._thread_ids = frozenset(t.ident for t in self._threads if t.ident is not None)

    def __enter__(self) -> Sequencer:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- submitting ------------------------------------------------------------------------

    def submit(self, command: Command) -> SubmitFuture:
        """Queue a command; the returned future resolves with its Result once it is durable.

        Called on a thread running an asyncio event loop, it returns an ``asyncio.Future`` of
        that loop (``await sequencer.submit(cmd)``); elsewhere a ``concurrent.futures.Future``
        (``sequencer.submit(cmd).result()``). Raises at once: Overloaded (orders and amends
        past queue_depth_max), SequencerStopped or SequencerFailed, TypeError for a
        non-command. The future may fail with CommandInvalid or SequencerFailed. Callers leave
        ``ts_ns`` at 0; it is stamped here. On an event loop, a never-shed command that finds
        the queue past queue_depth_hard_max waits for room in a worker thread, not on the loop.
        """
        loop = asyncio_get_running_loop()
        if loop is not None:
            async_future: asyncio.Future[Result] = loop.create_future()
            waiter: Waiter = (WAIT_ASYNC, (loop, async_future))
            if not self._enqueue(command, waiter, block=False):
                admission = loop.run_in_executor(None, self._enqueue, command, waiter, True)
                admission.add_done_callback(functools.partial(_forward_failure, async_future))
            return async_future
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self._enqueue(command, (WAIT_FUTURE, future), block=True)
        return future

    def submit_future(self, command: Command) -> concurrent.futures.Future[Result]:
        """`submit` that always returns a ``concurrent.futures.Future``, on any thread."""
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self._enqueue(command, (WAIT_FUTURE, future), block=True)
        return future

    def submit_callback(self, command: Command, on_done: ResultCallback | None = None) -> None:
        """Queue a command; on_done(Result or exception) runs on the committer thread once it
        is durable (it must be quick and must not raise). The cheapest way to submit."""
        waiter = NO_WAITER if on_done is None else (WAIT_CALLBACK, on_done)
        self._enqueue(command, waiter, block=True)

    async def submit_async(self, command: Command) -> Result:
        """``await sequencer.submit(cmd)`` as a coroutine: raises like `submit`. Cancelling the
        await does not withdraw the command."""
        future = self.submit(command)
        if isinstance(future, asyncio.Future):
            return await future
        return await asyncio.wrap_future(future)  # not reached: a coroutine runs on a loop

    def execute(self, command: Command, timeout_s: float | None = None) -> Result:
        """Submit and wait, from a thread without an event loop: for tests, tools, the CLI."""
        return self.submit_future(command).result(timeout_s)

    def _enqueue(self, command: Command, waiter: Waiter, block: bool) -> bool:
        """Admit a command to the input queue; False only when block is False and it must wait."""
        command_type = type(command)
        if command_type not in _COMMAND_TYPES:
            raise TypeError(f"not a command: {command_type.__name__}")
        config = self._config
        with self._lock:
            self._raise_unless_running()
            depth = len(self._queue)
            if depth >= config.queue_depth_max:
                if command_type in SHEDDABLE_COMMAND_TYPES:
                    self._overloaded_count += 1
                    raise Overloaded(
                        f"sequencer queue holds {depth} commands (queue_depth_max"
                        f" {config.queue_depth_max}): retry later"
                    )
                if depth >= config.queue_depth_hard_max:
                    if not block:
                        return False
                    invariant(
                        threading.get_ident() not in self._thread_ids,
                        "a sequencer thread would wait for its own queue",
                    )
                    self._full_waiters += 1
                    try:
                        while (
                            len(self._queue) >= config.queue_depth_hard_max
                            and self._state == _RUNNING
                        ):
                            self._not_full.wait()
                    finally:
                        self._full_waiters -= 1
                    self._raise_unless_running()
            self._queue.append((command, waiter))
            if self._writer_waiting:
                self._not_empty.notify()
        return True

    def _raise_unless_running(self) -> None:
        if self._state == _RUNNING:
            return
        if self._state == _FAILED:
            raise SequencerFailed(f"sequencer failed: {self._failure!r}")
        raise SequencerStopped("sequencer is not running")

    # --- other controls --------------------------------------------------------------------

    def subscribe(self, callback: CommandSubscriber) -> None:
        """Call ``callback(seq, ts_ns, command, events)`` for every durable command, in seq
        order, on the committer thread, from the next batch on. Must not raise or block."""
        with self._lock:
            self._command_subscribers = (*self._command_subscribers, callback)

    def subscribe_batches(self, callback: BatchSubscriber) -> None:
        """Call ``callback(list[Applied])`` once per durable batch, in seq order, on the
        committer thread. Cheaper than `subscribe` when the callback hops threads: one
        ``call_soon_threadsafe`` per batch instead of per command. Must not raise or block."""
        with self._lock:
            self._batch_subscribers = (*self._batch_subscribers, callback)

    def request_snapshot(self) -> concurrent.futures.Future[Path]:
        """Take a snapshot at the next batch boundary; resolves with its path once verified."""
        future: concurrent.futures.Future[Path] = concurrent.futures.Future()
        if self._snapshotter is None:
            future.set_exception(SequencerError("this sequencer has no snapshot directory"))
            return future
        with self._lock:
            self._raise_unless_running()
            self._snapshot_requests.append(future)
            if self._writer_waiting:
                self._not_empty.notify()
        return future

    def wake(self) -> None:
        """Make an idle writer re-read the clock now (after a SimulatedClock.advance)."""
        with self._lock:
            if self._writer_waiting:
                self._not_empty.notify()

    def stop(self, timeout_s: float = THREAD_JOIN_TIMEOUT_S) -> None:
        """Refuse new commands, apply and commit every queued one, release their results,
        take a final snapshot (``snapshot_on_stop``), close the journal. Idempotent."""
        with self._lock:
            if self._state == _RUNNING:
                self._state = _STOPPING
            self._not_empty.notify_all()
            self._not_full.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
            invariant(not thread.is_alive(), f"{thread.name} did not stop in {timeout_s} s")
        with self._lock:
            if self._state != _FAILED:
                self._state = _STOPPED
        self._journal.close()

    @property
    def failure(self) -> BaseException | None:
        """Why the sequencer failed, if it did (then the process must restart)."""
        return self._failure

    @property
    def engine(self) -> Engine:
        """The engine. Only the writer thread may touch it while running: read it after stop."""
        return self._engine

    def stats(self) -> SequencerStats:
        fsync_stats = getattr(self._journal, "fsync_stats", None)
        return SequencerStats(
            self._next_seq - 1, self._durable_seq, len(self._queue), self._overloaded_count,
            self._batch_count, self._command_count, self._largest_batch_commands, fsync_stats,
            None if self._snapshotter is None else self._snapshotter.last_seq,
        )  # fmt: skip

    def commit_latencies_ns(self) -> list[int]:
        """The most recent commit latencies (write + sync), oldest first."""
        return list(self._commit_latencies_ns)

    # --- failure ---------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        """Stop taking commands and fail every queued one; the process must restart.

        The first failure is logged and reported to on_failure; later ones (the other
        thread noticing) only fail what is still queued.
        """
        with self._lock:
            first = self._failure is None
            if first:
                self._failure = error
            self._state = _FAILED
            queued = list(self._queue)
            self._queue.clear()
            requests = self._snapshot_requests
            self._snapshot_requests = []
            self._not_empty.notify_all()
            self._not_full.notify_all()
        failed = SequencerFailed(f"sequencer failed: {self._failure!r}")
        settle([waiter for _, waiter in queued], [failed] * len(queued))
        for request in requests:
            request.set_exception(failed)
        if not first:
            return
        _log.critical("sequencer failed; restart the process to recover: %r", error, exc_info=error)
        if self._on_failure is not None:
            self._on_failure(error)

    # --- writer ----------------------------------------------------------------------------

    def _engine_next_timer_ns(self) -> int:
        """When the engine's own next timer is due (writer thread only)."""
        return self._engine.state.next_timer_ns

    def _due_after(self, ts_ns: int) -> int:
        due = self._scheduler.next_due_ns(ts_ns)
        return due if due is not None else 2**63

    def _writer_main(self) -> None:
        try:
            self._writer_loop()
        except BaseException as error:  # a bug in the writer itself
            self._fail(error)
        finally:
            self._handoff_put(_STOP)

    def _writer_loop(self) -> None:
        batch_max = self._config.batch_commands_max
        while True:
            self._permits.acquire()
            items, snapshot_wanted = self._take(batch_max)
            if items is None:
                self._permits.release()
                break
            batch = _Batch([], [], [])
            try:
                poisoned = self._apply_batch(items, batch)
            except BaseException as error:  # a bug outside the engine: fail the whole batch
                self._fail(error)
                failed = SequencerFailed(f"sequencer failed: {error!r}")
                settle([waiter for _, waiter in items], [failed] * len(items))
                raise
            if batch.records:
                self._handoff_put(batch)
            else:
                self._permits.release()
            if poisoned:
                return
            if snapshot_wanted or self._snapshot_due():
                self._take_snapshot()
        snapshotter = self._snapshotter
        if self._state == _STOPPING and (
            self._snapshot_requests
            or (
                self._config.snapshot_on_stop
                and snapshotter is not None
                and snapshotter.last_seq != self._next_seq - 1
            )
        ):
            self._take_snapshot()

    def _take(self, batch_max: int) -> tuple[list[tuple[Command, Waiter]] | None, bool]:
        """(up to batch_max queued commands, snapshot requested); None once stopping and
        drained. Returns an empty list when only timers (or a snapshot request) are due."""
        idle_wait_s = self._config.idle_wait_ms_max / 1000
        clock = self._clock
        with self._lock:
            while True:  # bounded: each pass waits, and returns once anything is due
                queue = self._queue
                if queue:
                    count = min(batch_max, len(queue))
                    items = [queue.popleft() for _ in range(count)]
                    if self._full_waiters:
                        self._not_full.notify_all()
                    return items, self._snapshot_wanted()
                if self._state != _RUNNING:
                    return None, False
                if self._snapshot_requests:
                    return [], True
                if clock.now_ns() >= self._next_due_ns:
                    return [], False
                wait_s = min(clock.wait_s_until(self._next_due_ns), idle_wait_s)
                self._writer_waiting = True
                self._not_empty.wait(wait_s)
                self._writer_waiting = False

    def _snapshot_wanted(self) -> bool:
        return bool(self._snapshot_requests)

    def _apply_batch(self, items: list[tuple[Command, Waiter]], batch: _Batch) -> bool:
        """Stamp, encode, number and apply each command into batch; True if one raised."""
        clock = self._clock
        if not items:
            return not self._run_timers(clock.now_ns(), batch)
        for index, (command, waiter) in enumerate(items):
            now = clock.now_ns()
            ts_ns = now if now > self._last_ts_ns else self._last_ts_ns
            if ts_ns >= self._next_due_ns and not self._run_timers(ts_ns, batch):
                rest = items[index:]
                failed = SequencerFailed(f"sequencer failed: {self._failure!r}")
                settle([waiter for _, waiter in rest], [failed] * len(rest))
                return True
            stamped = tuple.__new__(type(command), (ts_ns, *command[1:]))
            try:
                payload = encode_command(stamped)
            except (TypeError, ValueError, OverflowError) as error:
                settle([waiter], [CommandInvalid(f"{type(command).__name__}: {error}")])
                continue
            if not self._apply_one(stamped, payload, waiter, batch):
                rest = items[index + 1 :]
                failed = SequencerFailed(f"sequencer failed: {self._failure!r}")
                settle([waiter for _, waiter in rest], [failed] * len(rest))
                return True
        return False

    def _apply_one(self, command: Command, payload: bytes, waiter: Waiter, batch: _Batch) -> bool:
        """Apply one stamped command and add it to the batch; False (and fail) if apply raised.

        Records are added only for commands that applied: a command that crashes the engine
        is never journaled, so recovery does not meet it again.
        """
        seq = self._next_seq
        try:
            events = self._engine.apply(command)
        except BaseException as error:
            self._fail(error)
            settle([waiter], [SequencerFailed(f"command crashed the engine: {error!r}")])
            return False
        self._next_seq = seq + 1
        self._last_ts_ns = command.ts_ns
        self._commands_since_snapshot += 1
        # A command may bring the engine's next timer (a deadline, a funding clock) forward:
        # wake the scheduler for it, so its Tick is stamped at exactly that time.
        engine_due = self._engine.state.next_timer_ns
        if command.ts_ns < engine_due < self._next_due_ns:
            self._next_due_ns = engine_due
        batch.records.append((seq, payload))
        batch.applied.append(_new_applied(Applied, (seq, command.ts_ns, command, events)))
        batch.waiters.append(waiter)
        return True

    def _run_timers(self, now_ns: int, batch: _Batch) -> bool:
        """Apply the scheduler's commands due in (last stamp, now_ns], then re-arm; False if
        one crashed the engine (the sequencer has failed).

        After a pause longer than timer_catch_up_ns_max, exact timers are caught up only over
        the last timer_catch_up_ns_max; on a new engine, only from the moment it started.
        """
        after_ns = max(
            self._last_ts_ns, self._timer_floor_ns, now_ns - self._config.timer_catch_up_ns_max
        )
        for command in self._scheduler.due(after_ns, now_ns):
            invariant(command.ts_ns >= self._last_ts_ns, "a timer fired in the past")
            if not self._apply_one(command, encode_command(command), NO_WAITER, batch):
                return False
        self._next_due_ns = self._due_after(max(self._last_ts_ns, after_ns))
        return True

    def _snapshot_due(self) -> bool:
        interval = self._config.snapshot_interval_commands
        snapshotter = self._snapshotter
        return (
            snapshotter is not None
            and interval > 0
            and self._commands_since_snapshot >= interval
            and not snapshotter.busy
        )

    def _take_snapshot(self) -> None:
        """Image the engine at the last applied seq; the committer passes it on once durable."""
        with self._lock:
            requests = self._snapshot_requests
            self._snapshot_requests = []
        if self._snapshotter is None:
            for request in requests:
                request.set_exception(SequencerError("no snapshot directory"))
            return
        self._commands_since_snapshot = 0
        engine = self._engine
        job = SnapshotJob(self._next_seq - 1, engine.state_hash(), engine.snapshot(), requests)
        self._handoff_put(job)

    # --- committer -------------------------------------------------------------------------

    def _handoff_put(self, item: object) -> None:
        with self._handoff_ready:
            self._handoff.append(item)
            self._handoff_ready.notify()

    def _handoff_get(self) -> object:
        with self._handoff_ready:
            while not self._handoff:
                self._handoff_ready.wait()
            return self._handoff.popleft()

    def _committer_main(self) -> None:
        try:
            while True:  # bounded by the writer, which ends with _STOP
                item = self._handoff_get()
                if item is _STOP:
                    break
                if isinstance(item, SnapshotJob):
                    self._pass_snapshot(item)
                elif self._journal_failed:
                    self._fail_batch(item)  # type: ignore[arg-type]
                else:
                    self._commit_batch(item)  # type: ignore[arg-type]
        except BaseException as error:
            self._fail(error)
            self._drain_failed()
        finally:
            if self._snapshotter is not None:
                self._snapshotter.put(None)

    def _pass_snapshot(self, job: SnapshotJob) -> None:
        """Hand a snapshot to the snapshotter once its seq is durable, else drop it."""
        if job.seq <= self._durable_seq and not self._journal_failed:
            if self._snapshotter is not None:
                self._snapshotter.put(job)
            return
        error = SequencerFailed(f"snapshot at seq {job.seq} dropped: its batch is not durable")
        for request in job.requests:
            request.set_exception(error)

    def _commit_batch(self, batch: _Batch) -> None:
        journal = self._journal
        started_ns = time.perf_counter_ns()
        records = batch.records
        try:
            done = journal.append_batch(records)
            for _ in range(len(records)):  # bounded: each pass commits, then buffers >= 1
                if done == len(records):
                    break
                journal.commit()  # the buffer is full: write it, then go on
                done = journal.append_batch(records, done)
            durable_seq = journal.commit()
        except BaseException as error:
            self._journal_failed = True
            self._fail(error)
            self._fail_batch(batch)
            return
        self._commit_latencies_ns.append(time.perf_counter_ns() - started_ns)
        last_seq = batch.records[-1][0]
        invariant(durable_seq == last_seq, f"durable seq {durable_seq}, batch ends {last_seq}")
        self._durable_seq = last_seq
        self._batch_count += 1
        self._command_count += len(batch.records)
        self._largest_batch_commands = max(self._largest_batch_commands, len(batch.records))
        # Subscribers first, results second (read-your-writes): a subscriber that forwards to
        # an event loop (the gateway's views) queues its batch there before the submitter's
        # result is queued on the same loop, so a request answered from this result is never
        # followed by a read of views that do not hold it yet. Settling first let the loop run
        # the result (and the next request) while this thread was preempted before forwarding.
        applied = batch.applied
        for batch_subscriber in self._batch_subscribers:
            batch_subscriber(applied)
        for command_subscriber in self._command_subscribers:
            for item in applied:
                command_subscriber(item.seq, item.ts_ns, item.command, item.events)
        settle(batch.waiters, batch.applied)
        self._permits.release()

    def _fail_batch(self, batch: _Batch) -> None:
        failed = SequencerFailed(f"sequencer failed: {self._failure!r}")
        settle(batch.waiters, [failed] * len(batch.waiters))
        self._permits.release()

    def _drain_failed(self) -> None:
        """After a committer failure: fail what the writer still hands over, until _STOP."""
        while True:  # bounded by the writer, which ends with _STOP
            item = self._handoff_get()
            if item is _STOP:
                return
            if isinstance(item, _Batch):
                self._fail_batch(item)
            elif isinstance(item, SnapshotJob):
                for request in item.requests:
                    request.set_exception(SequencerFailed("sequencer failed"))
