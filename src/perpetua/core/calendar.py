"""Trading hours for TradFi perpetuals, and integer UTC date arithmetic.

Time is an ``int`` of nanoseconds since the Unix epoch (1970-01-01T00:00Z, a Thursday). Days
are counted since the epoch with floor division, so instants before 1970 also map correctly.

Invariants:
- A ``WeeklySession`` is ``[open_minute, close_minute)`` of one UTC weekday (0 = Monday ...
  6 = Sunday), with ``0 <= open_minute < close_minute <= 1440``.
- ``TradingHours.sessions`` is non-empty, strictly ordered by (weekday, open_minute), and
  sessions of one day neither overlap nor touch (touching sessions must be written as one).
  A session closing at 1440 followed by one opening at minute 0 the next day is one continuous
  stretch: ``next_close_ns`` looks through midnight.
- ``holiday_days`` (days since the epoch) is strictly increasing; a holiday closes the whole
  UTC day, including any part of a session that crosses into or out of it.
- ``early_closes`` are ``(day, close_minute)`` pairs, strictly increasing by day, none on a
  holiday: on that day every session ends by ``close_minute`` (a half-day: US equities close at
  13:00 New York time the day after Thanksgiving). Holidays and early closes come from
  ``exchange-calendars`` outside the core (``services.calendars``) as plain data.
- A schedule that covers the whole week (``always_open``) carries no holidays; asking it for
  ``next_close_ns`` is a programmer error (it never closes: callers test ``always_open``).

Stated simplification: every time is fixed UTC. Exchanges that follow daylight saving (US
equities, CME metals) shift by an hour in summer; the presets here do not. An operator who needs
exact local hours lists them as a new ``TradingHours`` value.

There is no rounding: all arithmetic is exact integer arithmetic. Every loop is bounded by a
count derived from the schedule (a week per holiday, plus one).
"""

from bisect import bisect_left
from dataclasses import dataclass, field

from perpetua.core.invariant import fail, invariant

__all__ = [
    "ALWAYS_OPEN",
    "FX",
    "HOLIDAYS_MAX",
    "METALS",
    "MINUTES_PER_DAY",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "US_EQUITY",
    "TradingHours",
    "WeeklySession",
    "civil_from_days",
    "days_from_civil",
    "is_open",
    "next_close_ns",
    "next_open_ns",
    "utc_ns",
    "weekday_of_day",
]

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
MINUTES_PER_DAY = 1440
DAYS_PER_WEEK = 7
HOLIDAYS_MAX = 1024
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    invariant(1 <= month <= 12 and 1 <= day <= 31, f"bad date {year}-{month}-{day}")
    y = year - 1 if month <= 2 else year
    era = y // 400
    year_of_era = y - era * 400
    month_index = month - 3 if month > 2 else month + 9
    day_of_year = (153 * month_index + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01; the inverse of ``days_from_civil``."""
    z = days + 719468
    era = z // 146097
    day_of_era = z - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return (year, month, day)


def weekday_of_day(days: int) -> int:
    """Weekday of a day count since the epoch: 0 = Monday ... 6 = Sunday."""
    return (days + _EPOCH_WEEKDAY) % DAYS_PER_WEEK


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Nanoseconds since the epoch of a UTC wall time."""
    invariant(0 <= hour < 24 and 0 <= minute < 60, f"bad time {hour}:{minute}")
    return (
        days_from_civil(year, month, day) * NS_PER_DAY
        + hour * NS_PER_HOUR
        + (minute * NS_PER_MINUTE)
    )


@dataclass(frozen=True, slots=True)
class WeeklySession:
    """Open from ``open_minute`` to ``close_minute`` (exclusive) UTC on ``weekday``."""

    weekday: int
    open_minute: int
    close_minute: int

    def __post_init__(self) -> None:
        invariant(0 <= self.weekday < DAYS_PER_WEEK, f"weekday out of range: {self.weekday}")
        invariant(
            0 <= self.open_minute < self.close_minute <= MINUTES_PER_DAY,
            f"session minutes out of order: {self.open_minute}..{self.close_minute}",
        )


@dataclass(frozen=True, slots=True)
class TradingHours:
    """A named weekly schedule of UTC sessions plus whole-day holidays (days since epoch)."""

    name: str
    sessions: tuple[WeeklySession, ...]
    holiday_days: tuple[int, ...] = ()
    early_closes: tuple[tuple[int, int], ...] = ()
    by_weekday: tuple[tuple[WeeklySession, ...], ...] = field(init=False, repr=False, compare=False)
    always_open: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        invariant(self.name != "", "trading hours need a name")
        invariant(len(self.sessions) > 0, f"{self.name}: no sessions")
        _check_session_order(self.name, self.sessions)
        _check_holidays(self.name, self.holiday_days)
        _check_early_closes(self.name, self.early_closes, self.holiday_days)
        by_weekday = tuple(
            tuple(s for s in self.sessions if s.weekday == d) for d in range(DAYS_PER_WEEK)
        )
        full_week = sum(s.close_minute - s.open_minute for s in self.sessions)
        always_open = full_week == DAYS_PER_WEEK * MINUTES_PER_DAY
        invariant(
            not (always_open and (self.holiday_days or self.early_closes)),
            f"{self.name}: a schedule open all week cannot have holidays",
        )
        object.__setattr__(self, "by_weekday", by_weekday)
        object.__setattr__(self, "always_open", always_open)


def _check_session_order(name: str, sessions: tuple[WeeklySession, ...]) -> None:
    for earlier, later in zip(sessions, sessions[1:], strict=False):
        ordered = (earlier.weekday, earlier.open_minute) < (later.weekday, later.open_minute)
        invariant(ordered, f"{name}: sessions not ordered by weekday and open minute")
        if earlier.weekday == later.weekday:
            invariant(
                earlier.close_minute < later.open_minute,
                f"{name}: sessions on weekday {later.weekday} overlap or touch",
            )


def _check_holidays(name: str, holiday_days: tuple[int, ...]) -> None:
    invariant(len(holiday_days) <= HOLIDAYS_MAX, f"{name}: more than {HOLIDAYS_MAX} holidays")
    for earlier, later in zip(holiday_days, holiday_days[1:], strict=False):
        invariant(earlier < later, f"{name}: holidays not strictly increasing")


def _check_early_closes(
    name: str, early: tuple[tuple[int, int], ...], holiday_days: tuple[int, ...]
) -> None:
    invariant(len(early) <= HOLIDAYS_MAX, f"{name}: more than {HOLIDAYS_MAX} early closes")
    for earlier, later in zip(early, early[1:], strict=False):
        invariant(earlier[0] < later[0], f"{name}: early closes not strictly increasing")
    for day, minute in early:
        invariant(0 < minute < MINUTES_PER_DAY, f"{name}: early close minute {minute}")
        invariant(day not in holiday_days, f"{name}: day {day} is both a holiday and a half-day")


def _early_close_minute(hours: TradingHours, day: int) -> int:
    """The minute the day's sessions end by: ``MINUTES_PER_DAY`` unless a half-day."""
    early = hours.early_closes
    position = bisect_left(early, (day, 0))
    if position < len(early) and early[position][0] == day:
        return early[position][1]
    return MINUTES_PER_DAY


def _is_holiday(hours: TradingHours, day: int) -> bool:
    position = bisect_left(hours.holiday_days, day)
    return position < len(hours.holiday_days) and hours.holiday_days[position] == day


def _open_sessions_of_day(hours: TradingHours, day: int) -> tuple[WeeklySession, ...]:
    if _is_holiday(hours, day):
        return ()
    sessions = hours.by_weekday[weekday_of_day(day)]
    if not hours.early_closes:
        return sessions
    cut = _early_close_minute(hours, day)
    return tuple(
        WeeklySession(s.weekday, s.open_minute, min(s.close_minute, cut))
        for s in sessions
        if s.open_minute < cut
    )


def is_open(hours: TradingHours, ts_ns: int) -> bool:
    """True when ``ts_ns`` falls inside a session on a day that is not a holiday."""
    day = ts_ns // NS_PER_DAY
    offset_ns = ts_ns - day * NS_PER_DAY
    return any(
        s.open_minute * NS_PER_MINUTE <= offset_ns < s.close_minute * NS_PER_MINUTE
        for s in _open_sessions_of_day(hours, day)
    )


def next_open_ns(hours: TradingHours, ts_ns: int) -> int:
    """The earliest instant ``>= ts_ns`` at which the market is open (``ts_ns`` if open now)."""
    first_day = ts_ns // NS_PER_DAY
    # Each holiday-free week holds a session, so this many days always contain an opening.
    days_max = DAYS_PER_WEEK * (len(hours.holiday_days) + len(hours.early_closes) + 1) + 1
    for step in range(days_max):
        day = first_day + step
        day_start_ns = day * NS_PER_DAY
        for session in _open_sessions_of_day(hours, day):
            close_ns = day_start_ns + session.close_minute * NS_PER_MINUTE
            if close_ns > ts_ns:
                return max(ts_ns, day_start_ns + session.open_minute * NS_PER_MINUTE)
    fail(f"{hours.name}: no opening within {days_max} days of {ts_ns}")


def next_close_ns(hours: TradingHours, ts_ns: int) -> int:
    """The earliest instant ``>= ts_ns`` at which the market is closed (``ts_ns`` if closed now).

    Looks through midnight when a session ends at 1440 and the next day opens at minute 0.
    Calling it on an ``always_open`` schedule is a programmer error.
    """
    invariant(not hours.always_open, f"{hours.name}: never closes; test always_open first")
    if not is_open(hours, ts_ns):
        return ts_ns
    day = ts_ns // NS_PER_DAY
    close_minute = _session_at(hours, ts_ns).close_minute
    # A stretch of whole open days lasts at most six days when the week has a gap.
    for _ in range(DAYS_PER_WEEK + 1):
        if close_minute < MINUTES_PER_DAY:
            return day * NS_PER_DAY + close_minute * NS_PER_MINUTE
        day += 1
        sessions = _open_sessions_of_day(hours, day)
        if not sessions or sessions[0].open_minute != 0:
            return day * NS_PER_DAY
        close_minute = sessions[0].close_minute
    fail(f"{hours.name}: no close within a week of {ts_ns}")


def _session_at(hours: TradingHours, ts_ns: int) -> WeeklySession:
    """The session holding ``ts_ns``; the caller has checked ``is_open``."""
    day = ts_ns // NS_PER_DAY
    offset_ns = ts_ns - day * NS_PER_DAY
    for session in _open_sessions_of_day(hours, day):
        if session.open_minute * NS_PER_MINUTE <= offset_ns < session.close_minute * NS_PER_MINUTE:
            return session
    fail(f"{hours.name}: no session holds {ts_ns}")


def _weekly(weekdays: range, open_minute: int, close_minute: int) -> list[WeeklySession]:
    return [WeeklySession(d, open_minute, close_minute) for d in weekdays]


_MONDAY_TO_THURSDAY = range(0, 4)
_MONDAY_TO_FRIDAY = range(0, 5)
_FRIDAY = 4
_SUNDAY = 6

ALWAYS_OPEN = TradingHours(
    name="24x7", sessions=tuple(_weekly(range(DAYS_PER_WEEK), 0, MINUTES_PER_DAY))
)

US_EQUITY = TradingHours(
    name="US equity (14:30-21:00 UTC, Mon-Fri)",
    sessions=tuple(_weekly(_MONDAY_TO_FRIDAY, 14 * 60 + 30, 21 * 60)),
)

# Sunday 23:00 to Friday 22:00 UTC with a daily break from 22:00 to 23:00.
METALS = TradingHours(
    name="Metals (Sun 23:00 - Fri 22:00 UTC, daily break 22:00-23:00)",
    sessions=tuple(
        sorted(
            _weekly(_MONDAY_TO_THURSDAY, 0, 22 * 60)
            + _weekly(_MONDAY_TO_THURSDAY, 23 * 60, MINUTES_PER_DAY)
            + [
                WeeklySession(_FRIDAY, 0, 22 * 60),
                WeeklySession(_SUNDAY, 23 * 60, MINUTES_PER_DAY),
            ],
            key=lambda s: (s.weekday, s.open_minute),
        )
    ),
)

# Sunday 22:00 to Friday 22:00 UTC, continuous.
FX = TradingHours(
    name="FX (Sun 22:00 - Fri 22:00 UTC)",
    sessions=tuple(
        _weekly(_MONDAY_TO_THURSDAY, 0, MINUTES_PER_DAY)
        + [WeeklySession(_FRIDAY, 0, 22 * 60), WeeklySession(_SUNDAY, 22 * 60, MINUTES_PER_DAY)]
    ),
)
