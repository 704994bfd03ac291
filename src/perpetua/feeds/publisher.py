"""The index publisher: a thread that brings the sources up to the clock every publish interval
and submits their values to the sequencer as ``IndexPrice`` commands.

Timing: it wakes at each multiple of ``step_ns`` (5 s) of the sequencer's clock, so with a
``SimulatedClock`` sped up by ``--speed`` the indices follow simulated time. It never wakes more
often than ``real_interval_min_s`` of real time: at high speeds the simulator computes every 5 s
step (the path does not depend on the speed) but only the latest value of each index is
published per wake. Published values also go to the ``IndexBoard``, with the readings that are
not published (stale, closed).

Commands go through ``submit_callback`` (never shed by the sequencer; ``ts_ns`` stamped there).
A rejection from the core (an index no instrument references) is logged once per symbol. If the
sink refuses (the sequencer stopped or failed) the publisher stops. A source that raises is a
programmer error: the publisher logs it, records it in ``failure`` and stops.
"""

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from perpetua.core.commands import Command
from perpetua.core.events import Rejected
from perpetua.feeds.board import IndexBoard
from perpetua.feeds.config import PUBLISH_INTERVAL_NS
from perpetua.feeds.source import IndexSource, to_command
from perpetua.sequencer.delivery import Result, ResultCallback

__all__ = ["CommandSink", "IndexPublisher", "PublisherClock"]

log = logging.getLogger("perpetua.feeds")
WAIT_MAX_S = 1.0  # re-read the clock at least this often
JOIN_TIMEOUT_S = 10.0


class CommandSink(Protocol):
    def submit_callback(self, command: Command, on_done: ResultCallback | None = None) -> None: ...


class PublisherClock(Protocol):
    def now_ns(self) -> int: ...

    def wait_s_until(self, ts_ns: int) -> float: ...


class IndexPublisher:
    def __init__(
        self,
        sources: Sequence[IndexSource],
        sink: CommandSink,
        clock: PublisherClock,
        board: IndexBoard | None = None,
        step_ns: int = PUBLISH_INTERVAL_NS,
        real_interval_min_s: float = 0.2,
    ) -> None:
        seen: set[str] = set()
        for source in sources:
            overlap = seen.intersection(source.symbols())
            if overlap:
                raise ValueError(f"two sources publish {sorted(overlap)}")
            seen.update(source.symbols())
        self.sources = tuple(sources)
        self.sink = sink
        self.clock = clock
        self.board = board if board is not None else IndexBoard()
        self.step_ns = step_ns
        self.real_interval_min_s = real_interval_min_s
        self.published_count = 0
        self.failure: BaseException | None = None
        self._rejected: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_once(self, now_ns: int) -> int:
        """Advance every source to ``now_ns``; submit what is to be published. Returns how
        many commands were submitted."""
        submitted = 0
        for source in self.sources:
            for reading in source.advance(now_ns):
                self.board.update(reading)
                if reading.publish:
                    self.sink.submit_callback(to_command(reading), self._on_done)
                    submitted += 1
        self.published_count += submitted
        return submitted

    def _on_done(self, outcome: Result | BaseException) -> None:
        """Runs on the sequencer's committer thread: quick, never raises."""
        if isinstance(outcome, BaseException):
            return  # the sink failed: the next submit_callback refuses and stops the publisher
        for event in outcome.events:
            if type(event) is Rejected and event.command == "IndexPrice":
                key = str(event.reason)
                if key not in self._rejected:
                    self._rejected.add(key)
                    log.warning("an index price was rejected by the core: %s", event.reason)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock.now_ns()
            try:
                self.publish_once(now)
            except Exception as error:  # the sink stopped, or a source bug: stop publishing
                self.failure = error
                log.error("index publisher stopped: %r", error, exc_info=error)
                return
            next_ns = (now // self.step_ns + 1) * self.step_ns
            wait_s = min(
                max(self.clock.wait_s_until(next_ns), self.real_interval_min_s), WAIT_MAX_S
            )
            self._stop.wait(wait_s)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("an IndexPublisher starts once")
        self._thread = threading.Thread(
            target=self._run, name="perpetua-index-publisher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
