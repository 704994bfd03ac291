"""Clocks: where the sequencer's ``ts_ns`` comes from. The core never reads one.

Every clock here is non-decreasing: ``now_ns()`` never returns less than it returned before
(the engine refuses time that goes backwards, and the sequencer additionally stamps
``max(clock, last stamp)``). Times are integer nanoseconds since the Unix epoch, UTC.

- `SystemClock`: wall time (``time.time_ns``), held at its last reading if the system clock
  steps back (NTP), so stamps stay monotonic; it catches up when real time passes that point.
- `SimulatedClock`: starts at a given time; moves when told (``advance``) and, if ``speed`` is
  positive, with real elapsed time multiplied by ``speed`` (the demo's ``--speed``: 60 makes a
  real second a simulated minute). ``speed == 0`` is a purely manual clock for tests.

``wait_s_until(ts_ns)`` tells a waiter how many real seconds until the clock reads ``ts_ns``
(``math.inf`` when only ``advance`` can get it there), so the sequencer can sleep until the next
timer without polling.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Final, Protocol

from perpetua.core.invariant import invariant

__all__ = ["NS_PER_S", "Clock", "SimulatedClock", "SystemClock"]

NS_PER_S: Final = 1_000_000_000
SPEED_MAX: Final = 1_000_000.0  # simulated seconds per real second


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the epoch, never less than any earlier reading."""
        ...

    def wait_s_until(self, ts_ns: int) -> float:
        """Real seconds until ``now_ns()`` reaches ts_ns (0 if it has; inf if never alone)."""
        ...


class SystemClock:
    """Wall-clock time that never goes backwards. Thread-safe."""

    __slots__ = ("_last_ns", "_lock")

    def __init__(self) -> None:
        self._last_ns = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        now = time.time_ns()
        with self._lock:
            if now < self._last_ns:
                return self._last_ns
            self._last_ns = now
            return now

    def wait_s_until(self, ts_ns: int) -> float:
        return max(0, ts_ns - self.now_ns()) / NS_PER_S


class SimulatedClock:
    """A clock for tests and demos: manual ``advance`` plus, optionally, scaled real time.

    Reading: ``start_ns + advanced_ns + (real elapsed since creation) * speed``, floored, and
    never less than an earlier reading. Thread-safe.
    """

    __slots__ = ("_advanced_ns", "_last_ns", "_lock", "_real_start_ns", "_speed", "_start_ns")

    def __init__(self, start_ns: int, speed: float = 0.0) -> None:
        invariant(start_ns >= 0, f"start_ns {start_ns} must be >= 0")
        invariant(0.0 <= speed <= SPEED_MAX, f"speed {speed} outside 0..{SPEED_MAX}")
        self._start_ns = start_ns
        self._speed = speed
        self._advanced_ns = 0
        self._real_start_ns = time.monotonic_ns()
        self._last_ns = start_ns
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def advance(self, ns: int) -> int:
        """Move the clock forward by ns >= 0; returns the new reading."""
        invariant(ns >= 0, f"a clock advances by ns >= 0, not {ns}")
        with self._lock:
            self._advanced_ns += ns
        return self.now_ns()

    def now_ns(self) -> int:
        with self._lock:
            now = self._start_ns + self._advanced_ns
            if self._speed:
                now += int((time.monotonic_ns() - self._real_start_ns) * self._speed)
            if now > self._last_ns:
                self._last_ns = now
            return self._last_ns

    def wait_s_until(self, ts_ns: int) -> float:
        remaining_ns = ts_ns - self.now_ns()
        if remaining_ns <= 0:
            return 0.0
        if not self._speed:
            return math.inf
        return remaining_ns / self._speed / NS_PER_S
