"""The scheduler: turns the passing of time into commands, so replay needs no clock.

Timers are commands (architecture §1). The sequencer asks the scheduler, before it stamps any
command with time ``now`` and whenever it is idle, for the commands due in ``(last, now]``
(``last`` being the last time it stamped); it journals and applies them like any other command.
Replay reads them back from the journal and never consults a clock or this module.

A scheduler is an ordered list of timer sources. Each source is pure: two functions of time.

- ``next_due_ns(after_ns)``: the first time > after_ns at which the source fires. It must be
  non-decreasing in after_ns (the sequencer caches it as a lower bound).
- ``commands_at(ts_ns)``: the commands it emits when firing at ts_ns, each stamped ts_ns.

A source is *exact* or not. An exact source (Day expiry at 00:00 UTC; later: funding times,
futures settlement) fires at each of its due times, in order, catching up after a pause: a
command stamped at exactly 00:00 UTC is always emitted before anything stamped later. An inexact
source (the idle `Tick`; later: index samples) fires once, at ``now``, however long it was
overdue: catching up on a day of one-second ticks would help nobody. Within one pass, exact
sources fire first (by due time, ties in list order), then inexact ones (in list order); equal
consecutive commands (say, two sources each asking for a ``Tick`` at the same time) are emitted
once.

`EngineTimers` asks the engine for its next own timer (funding, expiry, deadlines: the core
keeps those schedules itself) and fires a Tick exactly then; the sequencer's default scheduler
is DayBoundary, EngineTimers, IdleTick. Later sources (index samples from feeds, say) are added
by passing a longer list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

from perpetua.core.catalogue import quarterly_listing_ns
from perpetua.core.commands import Command, ListFuture, Tick
from perpetua.core.invariant import fail, invariant
from perpetua.core.limits import DAY_NS

__all__ = [
    "DEFAULT_TICK_INTERVAL_NS",
    "FIRES_PER_PASS_MAX",
    "DayBoundary",
    "EngineTimers",
    "IdleTick",
    "QuarterlyListings",
    "Scheduler",
    "TimerSource",
    "default_scheduler",
]

DEFAULT_TICK_INTERVAL_NS: Final = 1_000_000_000  # one second
FIRES_PER_PASS_MAX: Final = 100_000  # exact firings one pass may catch up (274 years of days)
COMMANDS_PER_FIRE_MAX: Final = 10_000
NEVER_NS: Final = 2**63  # a due time after every real one


class TimerSource(Protocol):
    """One kind of timer; see the module docstring for the contract."""

    @property
    def name(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def next_due_ns(self, after_ns: int) -> int: ...

    def commands_at(self, ts_ns: int) -> list[Command]: ...


class IdleTick:
    """A `Tick` when nothing was stamped for ``interval_ns``: time keeps moving in the core
    (cancelAllAfter deadlines, Day expiry, trailing stops) even when no client speaks."""

    __slots__ = ("interval_ns",)
    name = "idle_tick"
    exact = False

    def __init__(self, interval_ns: int = DEFAULT_TICK_INTERVAL_NS) -> None:
        invariant(interval_ns > 0, f"tick interval_ns {interval_ns} must be > 0")
        self.interval_ns = interval_ns

    def next_due_ns(self, after_ns: int) -> int:
        return after_ns + self.interval_ns

    def commands_at(self, ts_ns: int) -> list[Command]:
        return [Tick(ts_ns)]


class DayBoundary:
    """A `Tick` at exactly 00:00 UTC each day: Day orders expire at that stamp."""

    __slots__ = ()
    name = "day_boundary"
    exact = True

    def next_due_ns(self, after_ns: int) -> int:
        return (after_ns // DAY_NS + 1) * DAY_NS

    def commands_at(self, ts_ns: int) -> list[Command]:
        return [Tick(ts_ns)]


class EngineTimers:
    """A `Tick` at exactly the engine's next own timer (funding samples and payments,
    cancelAllAfter deadlines, futures expiry, Day expiry), so they happen at their stamp and
    not at whatever command comes next.

    ``next_timer_ns`` reads the engine's next due time; only the sequencer's writer thread may
    call it. The engine runs everything due at or before its last command, so a due time not
    after ``after_ns`` means nothing is pending: one Tick per pass, and the sequencer asks
    again once the Tick was applied and the engine rescheduled.
    """

    __slots__ = ("_next_timer_ns",)
    name = "engine_timers"
    exact = True

    def __init__(self, next_timer_ns: Callable[[], int]) -> None:
        self._next_timer_ns = next_timer_ns

    def next_due_ns(self, after_ns: int) -> int:
        due = self._next_timer_ns()
        return due if due > after_ns else NEVER_NS

    def commands_at(self, ts_ns: int) -> list[Command]:
        return [Tick(ts_ns)]


class QuarterlyListings:
    """A `ListFuture` at each quarterly future's scheduled listing time (the expiry of the
    quarterly two quarters before it: a six-month life), for each root. Already listed ones
    (the default catalogue's) are refused by the engine as duplicates, harmlessly."""

    __slots__ = ("_roots",)
    name = "quarterly_listings"
    exact = True

    def __init__(self, roots: Sequence[str] = ("XBT",)) -> None:
        self._roots = tuple(roots)

    @staticmethod
    def _quarters_from(after_ns: int) -> list[tuple[int, int, int]]:
        """(listing_ns, year, quarter) of the next few quarterlies listed after ``after_ns``."""
        year = 1970 + after_ns // (365 * DAY_NS)
        found = []
        for y in range(year - 1, year + 3):
            for q in range(1, 5):
                listing = quarterly_listing_ns(y, q)
                if listing > after_ns:
                    found.append((listing, y, q))
        return sorted(found)

    def next_due_ns(self, after_ns: int) -> int:
        upcoming = self._quarters_from(after_ns)
        return upcoming[0][0] if upcoming else NEVER_NS

    def commands_at(self, ts_ns: int) -> list[Command]:
        return [
            ListFuture(ts_ns, root, year, quarter)
            for listing, year, quarter in self._quarters_from(ts_ns - 1)
            if listing == ts_ns
            for root in self._roots
        ]


class Scheduler:
    """An ordered list of timer sources; pure (no clock, no state)."""

    __slots__ = ("_exact", "_inexact", "sources")

    def __init__(self, sources: Sequence[TimerSource]) -> None:
        self.sources = tuple(sources)
        self._exact = tuple(s for s in self.sources if s.exact)
        self._inexact = tuple(s for s in self.sources if not s.exact)

    def next_due_ns(self, after_ns: int) -> int | None:
        """The earliest time > after_ns at which some source fires; None without sources."""
        dues = [source.next_due_ns(after_ns) for source in self.sources]
        return min(dues) if dues else None

    def due(self, after_ns: int, now_ns: int) -> list[Command]:
        """The commands due in (after_ns, now_ns], in the order to apply them."""
        out: list[Command] = []
        if now_ns <= after_ns:
            return out
        at = after_ns
        for _ in range(FIRES_PER_PASS_MAX):
            dues = [source.next_due_ns(at) for source in self._exact]
            due = min(dues, default=now_ns + 1)
            if due > now_ns:
                break
            invariant(due > at, f"a timer source is due at {due}, not after {at}")
            for source, source_due in zip(self._exact, dues, strict=True):
                if source_due == due:
                    self._fire(source, due, out)
            at = due
        else:
            fail(f"more than {FIRES_PER_PASS_MAX} timer firings in one pass")
        for source in self._inexact:
            due = source.next_due_ns(at)
            invariant(due > at, f"timer source {source.name} is due at {due}, not after {at}")
            if due <= now_ns:
                self._fire(source, now_ns, out)
        return out

    @staticmethod
    def _fire(source: TimerSource, ts_ns: int, out: list[Command]) -> None:
        commands = source.commands_at(ts_ns)
        invariant(len(commands) <= COMMANDS_PER_FIRE_MAX, f"{source.name}: too many commands")
        for command in commands:
            invariant(command.ts_ns == ts_ns, f"{source.name} stamped {command.ts_ns}, not {ts_ns}")
            last = out[-1] if out else None
            if last is not None and type(last) is type(command) and last == command:
                continue
            out.append(command)


def default_scheduler(
    tick_interval_ns: int = DEFAULT_TICK_INTERVAL_NS,
    engine_timers: Callable[[], int] | None = None,
) -> Scheduler:
    """Day expiry at 00:00 UTC, quarterly listings, the engine's own timers when given, then an
    idle Tick every ``tick_interval_ns``."""
    sources: list[TimerSource] = [DayBoundary(), QuarterlyListings()]
    if engine_timers is not None:
        sources.append(EngineTimers(engine_timers))
    sources.append(IdleTick(tick_interval_ns))
    return Scheduler(sources)
