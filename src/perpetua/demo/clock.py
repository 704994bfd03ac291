"""``DemoClock``: the sequencer's clock for the demo, held still until the bots are ready.

``begin_at(start_ns)`` sets where simulated time starts (the demo learns it only after the
data dir is recovered, so after the sequencer holding this clock was built; the sequencer first
reads its clock in ``start()``). Until ``release()`` the clock reads its start and never moves,
so setting up accounts (a few real seconds) costs no simulated time at ``--speed 720``. From
``release()`` on it is a ``SimulatedClock`` starting where it stood, running ``speed`` times real
time. Non-decreasing throughout. Thread-safe: the inner clock is swapped in one assignment.
"""

from perpetua.sequencer import SimulatedClock

__all__ = ["DemoClock"]


class DemoClock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._inner: SimulatedClock | None = None
        self.released = False

    def begin_at(self, start_ns: int) -> None:
        if self._inner is not None:
            raise RuntimeError("the demo clock has begun already")
        self._inner = SimulatedClock(start_ns, 0.0)

    def _clock(self) -> SimulatedClock:
        if self._inner is None:
            raise RuntimeError("read the demo clock only after begin_at")
        return self._inner

    def now_ns(self) -> int:
        return self._clock().now_ns()

    def wait_s_until(self, ts_ns: int) -> float:
        return self._clock().wait_s_until(ts_ns)

    def release(self) -> None:
        """Start running at ``speed`` from the current reading. Once."""
        if not self.released:
            self._inner = SimulatedClock(self._clock().now_ns(), self.speed)
            self.released = True
