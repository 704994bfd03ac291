"""The committer: makes each batch durable, then releases its results and publishes it.

The writer hands over, in order, batches it has applied (`PendingBatch`), snapshot images
(`SnapshotJob`) and finally `STOP`; this thread alone touches the journal.

Invariants
    - A batch is published, and then its results settled, only after ``journal.commit()``
      returned a durable seq equal to the batch's last seq (under FsyncPolicy.ALWAYS: synced).
      Publishing comes first so that whoever a result reaches can read views that hold it.
      Batches are committed and published one after another, in seq order.
    - ``permits`` bounds the batches applied but not yet durable (``pipeline_batches_max``):
      the writer takes one per batch, and each batch gives it back exactly once, committed or
      failed.
    - A snapshot image reaches the snapshotter only when its seq is durable and the journal
      has not failed; otherwise its requests fail.
    - After a journal error every later batch is failed, never committed (the file state is
      unknown: the process must restart).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Final, NamedTuple

from perpetua.core.invariant import invariant
from perpetua.sequencer.delivery import (
    Applied,
    BatchSubscriber,
    CommandSubscriber,
    SequencerFailed,
    Waiter,
    settle,
)
from perpetua.sequencer.runner.config import COMMIT_LATENCY_SAMPLES_MAX, JournalLike
from perpetua.sequencer.snapshotter import SnapshotJob, Snapshotter

__all__ = ["STOP", "Committer", "PendingBatch"]

STOP: Final = object()  # the writer's last hand-over


class PendingBatch(NamedTuple):
    """What flows from the writer to the committer: one batch, applied, not yet durable."""

    records: list[tuple[int, bytes]]  # (seq, payload), seq consecutive
    applied: list[Applied]
    waiters: list[Waiter]


class Committer:
    """The committer thread's state and loop. See the module docstring.

    ``fail`` fails the whole sequencer; ``failure`` says why it failed (for the messages of
    the batches failed afterwards).
    """

    def __init__(
        self,
        journal: JournalLike,
        snapshotter: Snapshotter | None,
        pipeline_batches_max: int,
        fail: Callable[[BaseException], None],
        failure: Callable[[], BaseException | None],
    ) -> None:
        self._journal = journal
        self._snapshotter = snapshotter
        self._fail = fail
        self._failure = failure
        self._handoff: collections.deque[object] = collections.deque()
        self._handoff_ready = threading.Condition(threading.Lock())
        self.permits = threading.Semaphore(pipeline_batches_max)
        # Committer-owned (read racily by stats()).
        self.durable_seq = journal.next_seq - 1
        self._journal_failed = False
        self.batch_count = 0
        self.command_count = 0
        self.largest_batch_commands = 0
        self.commit_latencies_ns: collections.deque[int] = collections.deque(
            maxlen=COMMIT_LATENCY_SAMPLES_MAX
        )
        self.batch_subscribers: tuple[BatchSubscriber, ...] = ()
        self.command_subscribers: tuple[CommandSubscriber, ...] = ()

    def put(self, item: object) -> None:
        """Hand over a PendingBatch, a SnapshotJob or STOP (writer thread)."""
        with self._handoff_ready:
            self._handoff.append(item)
            self._handoff_ready.notify()

    def _get(self) -> object:
        with self._handoff_ready:
            while not self._handoff:
                self._handoff_ready.wait()
            return self._handoff.popleft()

    def main(self) -> None:
        """The thread's body: until STOP."""
        try:
            while True:  # bounded by the writer, which ends with STOP
                item = self._get()
                if item is STOP:
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
        if job.seq <= self.durable_seq and not self._journal_failed:
            if self._snapshotter is not None:
                self._snapshotter.put(job)
            return
        error = SequencerFailed(f"snapshot at seq {job.seq} dropped: its batch is not durable")
        for request in job.requests:
            request.set_exception(error)

    def _commit_batch(self, batch: PendingBatch) -> None:
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
        self.commit_latencies_ns.append(time.perf_counter_ns() - started_ns)
        last_seq = batch.records[-1][0]
        invariant(durable_seq == last_seq, f"durable seq {durable_seq}, batch ends {last_seq}")
        self.durable_seq = last_seq
        self.batch_count += 1
        self.command_count += len(batch.records)
        self.largest_batch_commands = max(self.largest_batch_commands, len(batch.records))
        # Subscribers first, results second (read-your-writes): a subscriber that forwards to
        # an event loop (the gateway's views) queues its batch there before the submitter's
        # result is queued on the same loop, so a request answered from this result is never
        # followed by a read of views that do not hold it yet. Settling first let the loop run
        # the result (and the next request) while this thread was preempted before forwarding.
        applied = batch.applied
        for batch_subscriber in self.batch_subscribers:
            batch_subscriber(applied)
        for command_subscriber in self.command_subscribers:
            for item in applied:
                command_subscriber(item.seq, item.ts_ns, item.command, item.events)
        settle(batch.waiters, batch.applied)
        self.permits.release()

    def _fail_batch(self, batch: PendingBatch) -> None:
        failed = SequencerFailed(f"sequencer failed: {self._failure()!r}")
        settle(batch.waiters, [failed] * len(batch.waiters))
        self.permits.release()

    def _drain_failed(self) -> None:
        """After a committer failure: fail what the writer still hands over, until STOP."""
        while True:  # bounded by the writer, which ends with STOP
            item = self._get()
            if item is STOP:
                return
            if isinstance(item, PendingBatch):
                self._fail_batch(item)
            elif isinstance(item, SnapshotJob):
                for request in item.requests:
                    request.set_exception(SequencerFailed("sequencer failed"))
