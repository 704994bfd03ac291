"""The writer: the one thread that stamps, numbers, encodes and applies commands to the engine.

It takes batches from the `intake.Intake`, runs the scheduler's timers due before each command,
applies each command, and hands each applied batch to the `committer.Committer`.

Invariants
    - Only this thread touches the engine while the sequencer runs.
    - ``ts_ns`` never goes back: each command is stamped with the clock, or the last stamp if
      the clock is behind it; timers are stamped at exactly their due time, never in the past.
    - Seqs are consecutive: a seq is taken only by a command that applied. A command whose
      ``apply`` raises is never journaled (replay does not meet it again); the commands
      before it in its batch are committed, the rest failed, and the sequencer fails.
    - At most ``pipeline_batches_max`` batches are applied and not yet durable: a permit is
      taken before each batch and given back at once when the batch holds no record.
    - A snapshot image is taken between batches, at the last applied seq; the committer
      passes it on only once that seq is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from perpetua.core.commands import Command
from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.sequencer.clock import Clock
from perpetua.sequencer.codec import encode_command
from perpetua.sequencer.delivery import (
    NO_WAITER,
    Applied,
    CommandInvalid,
    SequencerError,
    SequencerFailed,
    Waiter,
    settle,
)
from perpetua.sequencer.runner.committer import STOP, Committer, PendingBatch
from perpetua.sequencer.runner.config import SequencerConfig
from perpetua.sequencer.runner.intake import STOPPING, Intake
from perpetua.sequencer.scheduler import Scheduler
from perpetua.sequencer.snapshotter import SnapshotJob, Snapshotter

__all__ = ["Writer"]

_new_applied: Final = tuple.__new__  # Applied(...) without NamedTuple's Python-level __new__
NO_TIMER_NS: Final = 2**63  # the scheduler has nothing due


class Writer:
    """The writer thread's state and loop. See the module docstring."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        scheduler: Scheduler,
        config: SequencerConfig,
        intake: Intake,
        committer: Committer,
        snapshotter: Snapshotter | None,
        fail: Callable[[BaseException], None],
        next_seq: int,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._scheduler = scheduler
        self._config = config
        self._intake = intake
        self._committer = committer
        self._snapshotter = snapshotter
        self._fail = fail
        self.next_seq = next_seq
        self._last_ts_ns = engine.state.ts_ns
        self._next_due_ns = 0
        self._timer_floor_ns = 0  # timers fire only after this (set by arm for a new engine)
        self._commands_since_snapshot = 0

    def arm(self) -> None:
        """Before the thread starts: on a new exchange, no timer was missed before now."""
        if self._last_ts_ns == 0:
            self._timer_floor_ns = self._clock.now_ns()
        self._next_due_ns = self._due_after(max(self._last_ts_ns, self._timer_floor_ns))

    def _due_after(self, ts_ns: int) -> int:
        due = self._scheduler.next_due_ns(ts_ns)
        return due if due is not None else NO_TIMER_NS

    def _failed(self) -> SequencerFailed:
        return SequencerFailed(f"sequencer failed: {self._intake.failure!r}")

    def main(self) -> None:
        """The thread's body: until stopped and drained, or failed; always ends with STOP."""
        try:
            self._loop()
        except BaseException as error:  # a bug in the writer itself
            self._fail(error)
        finally:
            self._committer.put(STOP)

    def _loop(self) -> None:
        batch_max = self._config.batch_commands_max
        permits = self._committer.permits
        while True:
            permits.acquire()
            items, snapshot_wanted = self._intake.take(batch_max, self._clock, self._next_due_ns)
            if items is None:
                permits.release()
                break
            batch = PendingBatch([], [], [])
            try:
                poisoned = self._apply_batch(items, batch)
            except BaseException as error:  # a bug outside the engine: fail the whole batch
                self._fail(error)
                failed = SequencerFailed(f"sequencer failed: {error!r}")
                settle([waiter for _, waiter in items], [failed] * len(items))
                raise
            if batch.records:
                self._committer.put(batch)
            else:
                permits.release()
            if poisoned:
                return
            if snapshot_wanted or self._snapshot_due():
                self._take_snapshot()
        snapshotter = self._snapshotter
        if self._intake.state == STOPPING and (
            self._intake.snapshot_requests
            or (
                self._config.snapshot_on_stop
                and snapshotter is not None
                and snapshotter.last_seq != self.next_seq - 1
            )
        ):
            self._take_snapshot()

    def _apply_batch(self, items: list[tuple[Command, Waiter]], batch: PendingBatch) -> bool:
        """Stamp, encode, number and apply each command into batch; True if one raised."""
        clock = self._clock
        if not items:
            return not self._run_timers(clock.now_ns(), batch)
        for index, (command, waiter) in enumerate(items):
            now = clock.now_ns()
            ts_ns = now if now > self._last_ts_ns else self._last_ts_ns
            if ts_ns >= self._next_due_ns and not self._run_timers(ts_ns, batch):
                rest = items[index:]
                settle([waiter for _, waiter in rest], [self._failed()] * len(rest))
                return True
            stamped = tuple.__new__(type(command), (ts_ns, *command[1:]))
            try:
                payload = encode_command(stamped)
            except (TypeError, ValueError, OverflowError) as error:
                settle([waiter], [CommandInvalid(f"{type(command).__name__}: {error}")])
                continue
            if not self._apply_one(stamped, payload, waiter, batch):
                rest = items[index + 1 :]
                settle([waiter for _, waiter in rest], [self._failed()] * len(rest))
                return True
        return False

    def _apply_one(
        self, command: Command, payload: bytes, waiter: Waiter, batch: PendingBatch
    ) -> bool:
        """Apply one stamped command and add it to the batch; False (and fail) if apply raised.

        Records are added only for commands that applied: a command that crashes the engine
        is never journaled, so recovery does not meet it again.
        """
        seq = self.next_seq
        try:
            events = self._engine.apply(command)
        except BaseException as error:
            self._fail(error)
            settle([waiter], [SequencerFailed(f"command crashed the engine: {error!r}")])
            return False
        self.next_seq = seq + 1
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

    def _run_timers(self, now_ns: int, batch: PendingBatch) -> bool:
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
        requests = self._intake.take_snapshot_requests()
        if self._snapshotter is None:
            for request in requests:
                request.set_exception(SequencerError("no snapshot directory"))
            return
        self._commands_since_snapshot = 0
        engine = self._engine
        job = SnapshotJob(self.next_seq - 1, engine.state_hash(), engine.snapshot(), requests)
        self._committer.put(job)
