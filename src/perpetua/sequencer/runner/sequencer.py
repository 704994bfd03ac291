"""The `Sequencer`: builds the intake, writer and committer of one engine and journal, starts
and stops their threads, and is what submitters and subscribers call.

Invariants
    - Started once; ``stop`` is idempotent: it refuses new commands, lets the writer apply and
      the committer commit every queued one, takes the final snapshot, then closes the journal.
    - A failure (engine, journal, or a bug in either thread) is reported once: logged at
      CRITICAL and passed to ``on_failure``; every queued command and snapshot request fails
      with `SequencerFailed`, and the process must restart (snapshot + replay).
    - Submitting on an event loop never blocks the loop: a never-shed command that finds the
      queue past its hard limit waits for room in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from perpetua.core.commands import Command
from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.sequencer.clock import Clock, SystemClock
from perpetua.sequencer.delivery import (
    NO_WAITER,
    WAIT_ASYNC,
    WAIT_CALLBACK,
    WAIT_FUTURE,
    BatchSubscriber,
    CommandSubscriber,
    Result,
    ResultCallback,
    SequencerError,
    SequencerFailed,
    Waiter,
    settle,
)
from perpetua.sequencer.recovery import (
    EngineFactory,
    RecoveryInfo,
    data_paths,
    default_engine,
    open_data_dir,
)
from perpetua.sequencer.runner.committer import Committer
from perpetua.sequencer.runner.config import (
    DEFAULT_SEQUENCER_CONFIG,
    THREAD_JOIN_TIMEOUT_S,
    JournalLike,
    SequencerConfig,
    SequencerStats,
)
from perpetua.sequencer.runner.intake import RUNNING, Intake
from perpetua.sequencer.runner.writer import Writer
from perpetua.sequencer.scheduler import Scheduler, default_scheduler
from perpetua.sequencer.snapshotter import Snapshotter

__all__ = ["Sequencer", "SubmitFuture"]

_log = logging.getLogger("perpetua.sequencer.runner")
# The running loop or None, without raising (asyncio.get_running_loop raises off-loop, and a
# raise costs more than the whole check on the submit path of a producer thread).
asyncio_get_running_loop: Final = asyncio._get_running_loop
SubmitFuture = concurrent.futures.Future[Result] | asyncio.Future[Result]


def _forward_failure(target: asyncio.Future[Result], admission: asyncio.Future[object]) -> None:
    """If a command waiting for room was refused (the sequencer stopped), say so to its
    submitter; once admitted, the committer settles target as usual."""
    error = admission.exception()
    if error is not None and not target.done():
        target.set_exception(error)


class Sequencer:
    """The single writer over one engine and one journal. See the package docstring.

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
        engine_factory: EngineFactory | None = None,
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._config = config
        self.recovery = recovery
        self._on_failure = on_failure
        self._started = False
        self._snapshotter: Snapshotter | None = None
        if snapshot_dir is not None:
            self._snapshotter = Snapshotter(
                snapshot_dir, journal_dir if config.journal_prune else None,
                engine_factory or functools.partial(Engine, engine.instruments),
                config.snapshots_kept,
                None if recovery is None else recovery.snapshot_seq,
            )  # fmt: skip
        self._intake = Intake(config)
        self._admit = self._intake.admit
        self._committer = Committer(
            journal, self._snapshotter, config.pipeline_batches_max, self._fail,
            lambda: self._intake.failure,
        )  # fmt: skip
        self._writer = Writer(
            engine, self._clock,
            scheduler if scheduler is not None
            else default_scheduler(engine_timers=self._engine_next_timer_ns),
            config, self._intake, self._committer, self._snapshotter, self._fail,
            journal.next_seq,
        )  # fmt: skip
        self._threads: list[threading.Thread] = []

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
            on_failure=on_failure, engine_factory=engine_factory,
        )  # fmt: skip

    def start(self) -> None:
        """Start the threads; commands are taken from now on. Once only."""
        invariant(not self._started, "a Sequencer starts once")
        self._started = True
        self._intake.state = RUNNING
        self._writer.arm()
        for name, target in (("writer", self._writer.main), ("committer", self._committer.main)):
            thread = threading.Thread(target=target, name=f"perpetua-sequencer-{name}", daemon=True)
            self._threads.append(thread)
        if self._snapshotter is not None:
            self._threads.append(self._snapshotter.thread)
        for thread in self._threads:
            thread.start()
        self._intake.thread_ids = frozenset(t.ident for t in self._threads if t.ident is not None)

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
            if not self._admit(command, waiter, False):
                admission = loop.run_in_executor(None, self._admit, command, waiter, True)
                admission.add_done_callback(functools.partial(_forward_failure, async_future))
            return async_future
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self._admit(command, (WAIT_FUTURE, future), True)
        return future

    def submit_future(self, command: Command) -> concurrent.futures.Future[Result]:
        """`submit` that always returns a ``concurrent.futures.Future``, on any thread."""
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self._admit(command, (WAIT_FUTURE, future), True)
        return future

    def submit_callback(self, command: Command, on_done: ResultCallback | None = None) -> None:
        """Queue a command; on_done(Result or exception) runs on the committer thread once it
        is durable (it must be quick and must not raise). The cheapest way to submit."""
        waiter = NO_WAITER if on_done is None else (WAIT_CALLBACK, on_done)
        self._admit(command, waiter, True)

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

    # --- other controls --------------------------------------------------------------------

    def subscribe(self, callback: CommandSubscriber) -> None:
        """Call ``callback(seq, ts_ns, command, events)`` for every durable command, in seq
        order, on the committer thread, from the next batch on. Must not raise or block."""
        committer = self._committer
        with self._intake.lock:
            committer.command_subscribers = (*committer.command_subscribers, callback)

    def subscribe_batches(self, callback: BatchSubscriber) -> None:
        """Call ``callback(list[Applied])`` once per durable batch, in seq order, on the
        committer thread. Cheaper than `subscribe` when the callback hops threads: one
        ``call_soon_threadsafe`` per batch instead of per command. Must not raise or block."""
        committer = self._committer
        with self._intake.lock:
            committer.batch_subscribers = (*committer.batch_subscribers, callback)

    def request_snapshot(self) -> concurrent.futures.Future[Path]:
        """Take a snapshot at the next batch boundary; resolves with its path once verified."""
        future: concurrent.futures.Future[Path] = concurrent.futures.Future()
        if self._snapshotter is None:
            future.set_exception(SequencerError("this sequencer has no snapshot directory"))
            return future
        self._intake.request_snapshot(future)
        return future

    def wake(self) -> None:
        """Make an idle writer re-read the clock now (after a SimulatedClock.advance)."""
        self._intake.wake()

    def stop(self, timeout_s: float = THREAD_JOIN_TIMEOUT_S) -> None:
        """Refuse new commands, apply and commit every queued one, release their results,
        take a final snapshot (``snapshot_on_stop``), close the journal. Idempotent."""
        self._intake.begin_stop()
        for thread in self._threads:
            thread.join(timeout_s)
            invariant(not thread.is_alive(), f"{thread.name} did not stop in {timeout_s} s")
        self._intake.end_stop()
        self._journal.close()

    @property
    def failure(self) -> BaseException | None:
        """Why the sequencer failed, if it did (then the process must restart)."""
        return self._intake.failure

    @property
    def engine(self) -> Engine:
        """The engine. Only the writer thread may touch it while running: read it after stop."""
        return self._engine

    def stats(self) -> SequencerStats:
        fsync_stats = self._journal.fsync_stats
        committer = self._committer
        return SequencerStats(
            self._writer.next_seq - 1, committer.durable_seq, len(self._intake.queue),
            self._intake.overloaded_count, committer.batch_count, committer.command_count,
            committer.largest_batch_commands, fsync_stats,
            None if self._snapshotter is None else self._snapshotter.last_seq,
        )  # fmt: skip

    def commit_latencies_ns(self) -> list[int]:
        """The most recent commit latencies (write + sync), oldest first."""
        return list(self._committer.commit_latencies_ns)

    # --- failure ---------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        """Stop taking commands and fail every queued one; the process must restart.

        The first failure is logged and reported to on_failure; later ones (the other
        thread noticing) only fail what is still queued.
        """
        first, queued, requests = self._intake.fail(error)
        failed = SequencerFailed(f"sequencer failed: {self._intake.failure!r}")
        settle([waiter for _, waiter in queued], [failed] * len(queued))
        for request in requests:
            request.set_exception(failed)
        if not first:
            return
        _log.critical("sequencer failed; restart the process to recover: %r", error, exc_info=error)
        if self._on_failure is not None:
            self._on_failure(error)

    def _engine_next_timer_ns(self) -> int:
        """When the engine's own next timer is due (writer thread only)."""
        return self._engine.state.next_timer_ns
