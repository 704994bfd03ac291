"""The sequencer's input: a bounded queue of commands, its run state, and snapshot requests.

Submitters on any thread `admit` commands; the writer thread alone `take`s them, in arrival
order, in batches.

Invariants
    - Everything here is guarded by one lock; the writer waits on ``not_empty`` (only when it
      said so with ``writer_waiting``), blocked never-shed submitters on ``not_full``.
    - The queue never holds more than ``queue_depth_hard_max`` commands. At ``queue_depth_max``
      a sheddable command (`config.SHEDDABLE_COMMAND_TYPES`) is refused at once with
      `Overloaded`; any other waits for room (or, with ``block=False``, is told to).
    - A sequencer thread never waits for room in its own queue (it would deadlock).
    - State moves stopped -> running -> stopping -> stopped, or to failed from anywhere; a
      command is admitted only while running. Failing empties the queue and hands every
      queued command and snapshot request back to be failed, once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
from pathlib import Path
from typing import Final

from perpetua.core.commands import COMMAND_TYPES, Command
from perpetua.core.invariant import invariant
from perpetua.sequencer.clock import Clock
from perpetua.sequencer.delivery import Overloaded, SequencerFailed, SequencerStopped, Waiter
from perpetua.sequencer.runner.config import SHEDDABLE_COMMAND_TYPES, SequencerConfig

__all__ = ["FAILED", "RUNNING", "STOPPED", "STOPPING", "Intake"]

_COMMAND_TYPES: Final = frozenset(COMMAND_TYPES)

RUNNING: Final = "running"
STOPPING: Final = "stopping"
STOPPED: Final = "stopped"
FAILED: Final = "failed"


class Intake:
    """The input queue and run state of one sequencer. See the module docstring."""

    def __init__(self, config: SequencerConfig) -> None:
        self._config = config
        self.lock = threading.Lock()
        self._not_empty = threading.Condition(self.lock)
        self._not_full = threading.Condition(self.lock)
        self.queue: collections.deque[tuple[Command, Waiter]] = collections.deque()
        self._writer_waiting = False
        self._full_waiters = 0
        self.state = STOPPED
        self.failure: BaseException | None = None
        self.overloaded_count = 0
        self.snapshot_requests: list[concurrent.futures.Future[Path]] = []
        self.thread_ids: frozenset[int] = frozenset()

    def admit(self, command: Command, waiter: Waiter, block: bool) -> bool:
        """Admit a command to the input queue; False only when block is False and it must wait."""
        command_type = type(command)
        if command_type not in _COMMAND_TYPES:
            raise TypeError(f"not a command: {command_type.__name__}")
        config = self._config
        with self.lock:
            self.raise_unless_running()
            depth = len(self.queue)
            if depth >= config.queue_depth_max:
                if command_type in SHEDDABLE_COMMAND_TYPES:
                    self.overloaded_count += 1
                    raise Overloaded(
                        f"sequencer queue holds {depth} commands (queue_depth_max"
                        f" {config.queue_depth_max}): retry later"
                    )
                if depth >= config.queue_depth_hard_max:
                    if not block:
                        return False
                    invariant(
                        threading.get_ident() not in self.thread_ids,
                        "a sequencer thread would wait for its own queue",
                    )
                    self._full_waiters += 1
                    try:
                        while (
                            len(self.queue) >= config.queue_depth_hard_max and self.state == RUNNING
                        ):
                            self._not_full.wait()
                    finally:
                        self._full_waiters -= 1
                    self.raise_unless_running()
            self.queue.append((command, waiter))
            if self._writer_waiting:
                self._not_empty.notify()
        return True

    def raise_unless_running(self) -> None:
        """Raise SequencerFailed or SequencerStopped unless running (hold the lock)."""
        if self.state == RUNNING:
            return
        if self.state == FAILED:
            raise SequencerFailed(f"sequencer failed: {self.failure!r}")
        raise SequencerStopped("sequencer is not running")

    def take(
        self, batch_max: int, clock: Clock, next_due_ns: int
    ) -> tuple[list[tuple[Command, Waiter]] | None, bool]:
        """For the writer: (up to batch_max queued commands, snapshot requested); None once
        stopping and drained. Returns an empty list when only timers (due at ``next_due_ns``)
        or a snapshot request are due."""
        idle_wait_s = self._config.idle_wait_ms_max / 1000
        with self.lock:
            while True:  # bounded: each pass waits, and returns once anything is due
                queue = self.queue
                if queue:
                    count = min(batch_max, len(queue))
                    items = [queue.popleft() for _ in range(count)]
                    if self._full_waiters:
                        self._not_full.notify_all()
                    return items, bool(self.snapshot_requests)
                if self.state != RUNNING:
                    return None, False
                if self.snapshot_requests:
                    return [], True
                if clock.now_ns() >= next_due_ns:
                    return [], False
                wait_s = min(clock.wait_s_until(next_due_ns), idle_wait_s)
                self._writer_waiting = True
                self._not_empty.wait(wait_s)
                self._writer_waiting = False

    def request_snapshot(self, future: concurrent.futures.Future[Path]) -> None:
        """Queue a snapshot request for the writer's next batch boundary (raises unless
        running)."""
        with self.lock:
            self.raise_unless_running()
            self.snapshot_requests.append(future)
            if self._writer_waiting:
                self._not_empty.notify()

    def take_snapshot_requests(self) -> list[concurrent.futures.Future[Path]]:
        with self.lock:
            requests = self.snapshot_requests
            self.snapshot_requests = []
        return requests

    def wake(self) -> None:
        """Make an idle writer re-read the clock now."""
        with self.lock:
            if self._writer_waiting:
                self._not_empty.notify()

    def begin_stop(self) -> None:
        """Refuse new commands; the writer drains the queue and ends."""
        with self.lock:
            if self.state == RUNNING:
                self.state = STOPPING
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def end_stop(self) -> None:
        with self.lock:
            if self.state != FAILED:
                self.state = STOPPED

    def fail(
        self, error: BaseException
    ) -> tuple[bool, list[tuple[Command, Waiter]], list[concurrent.futures.Future[Path]]]:
        """Enter the failed state: (first failure?, the queued commands, the snapshot
        requests), all taken out for the caller to fail."""
        with self.lock:
            first = self.failure is None
            if first:
                self.failure = error
            self.state = FAILED
            queued = list(self.queue)
            self.queue.clear()
            requests = self.snapshot_requests
            self.snapshot_requests = []
            self._not_empty.notify_all()
            self._not_full.notify_all()
        return first, queued, requests
